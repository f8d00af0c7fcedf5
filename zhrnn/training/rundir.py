"""Run directories: where a run keeps its checkpoint, samples and log; found again by --resume;
locked so that two trainings never write into the same one."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..checkpoint import FILENAME
from ..text.decoding import COMPRESSED
from ..errors import ConfigError

RUN_INFO = "run.json"  # the corpus files the run trains on, for --resume to find it
LOCK = ".lock"  # holds the pid of the training that writes here


def sources(corpus_paths) -> list[str]:
    return [str(Path(p).resolve()) for p in corpus_paths]


def corpus_name(path: str) -> str:
    """唐诗 for 唐诗.txt and for 唐诗.txt.gz alike."""
    path = Path(path)
    if path.suffix.lower() in COMPRESSED:
        path = path.with_suffix("")
    return path.stem or "corpus"


def new_run_dir(corpus_paths, root: Path = Path("runs")) -> Path:
    """runs/<name of the first corpus>, else <name>-2, -3, ...: the first that does not exist yet.
    Created here and now (mkdir is atomic), so two runs started together never share one."""
    stem = corpus_name(sources(corpus_paths)[0])
    n = 1
    while True:
        candidate = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1


def write_info(run_dir: Path, corpus_paths) -> None:
    (run_dir / RUN_INFO).write_text(json.dumps({"sources": sources(corpus_paths)}, ensure_ascii=False), encoding="utf-8")


def find_resume(corpus_paths, root: Path = Path("runs")) -> Path:
    """The newest checkpoint of a run under root that trained on these same files."""
    wanted, found = sources(corpus_paths), []
    for info in root.glob(f"*/{RUN_INFO}"):
        try:
            same = json.loads(info.read_text(encoding="utf-8")).get("sources") == wanted
        except (OSError, ValueError, AttributeError):
            continue
        if same and (info.parent / FILENAME).is_file():
            found.append(info.parent / FILENAME)
    if not found:
        raise ConfigError(f"--resume: no earlier run on {', '.join(map(str, corpus_paths))} under {root}/; "
                          "pass the checkpoint: --resume PATH")
    return max(found, key=lambda p: p.stat().st_mtime)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold run_dir/.lock for the duration of a training. A lock left by a process that no
    longer exists (killed, crashed) is stale and taken over."""
    path = run_dir / LOCK
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise ConfigError(f"another training (process {pid}) is writing to {run_dir}; "
                                  "wait for it, or use another --out-dir") from None
            path.unlink(missing_ok=True)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
