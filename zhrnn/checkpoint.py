"""One self-contained checkpoint file: weights, tokenizer, configs, training state.

Only plain containers, numbers, strings and tensors go in, so it loads with
torch.load(weights_only=True): a crafted file cannot run code. Writes are atomic
(temporary file + fsync + os.replace), so a crash mid-write leaves the previous checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError

FORMAT = "zhrnn"
VERSION = 1
FILENAME = "ckpt.pt"  # a run's latest checkpoint: what --resume goes on from
BEST = "best.pt"  # its best by validation: what sampling and loading a run directory take
REQUIRED = ("model", "model_config", "tokenizer")
_UMASK = os.umask(0o22)  # read once (os.umask can only be read by setting it), then put back
os.umask(_UMASK)


def _to_cpu(obj, moved: dict | None = None):
    """Every tensor moved to the CPU (optimizer state included), so that even a plain
    torch.load without map_location opens a GPU-trained checkpoint on a CPU-only machine. A
    tensor met twice (a tied embedding and output weight) is moved once and stays one tensor:
    .cpu() copies, and two copies would be saved twice and load untied."""
    moved = {} if moved is None else moved
    if isinstance(obj, torch.Tensor):
        if obj.numel() == 0:  # empty tensors share a null data pointer
            return obj.detach().cpu()
        key = (obj.untyped_storage().data_ptr(), obj.storage_offset(), tuple(obj.shape), tuple(obj.stride()),
               obj.dtype, obj.device)
        if key not in moved:
            moved[key] = obj.detach().cpu()
        return moved[key]
    if isinstance(obj, dict):
        return {k: _to_cpu(v, moved) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v, moved) for v in obj)
    return obj


@contextlib.contextmanager
def _replacing(path: Path):
    """(fd, name) of a temporary file beside path, which replaces path atomically when the block
    succeeds and is removed when it fails: a crash mid-write leaves the previous file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(state: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _to_cpu({"format": FORMAT, "version": VERSION, **state})
    with _replacing(path) as (fd, tmp):
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a checkpoint gets the usual permissions
    return path


def keep(path: Path, as_path: Path) -> Path:
    """as_path becomes the checkpoint at path as it is now, atomically: a hard link (no copy: the
    next save() of path writes a new file and leaves this one), or a copy where links fail."""
    with _replacing(as_path) as (fd, tmp):
        os.close(fd)
        os.unlink(tmp)  # the name is what is wanted: the link takes it
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
    return as_path


def remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files of writes that never finished (the writer was killed). Call only
    while holding the run's lock, so no live writer's file is removed."""
    for name in (FILENAME, BEST):
        for tmp in Path(directory).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def resolve(path: str | Path, last: bool = False) -> Path:
    """A checkpoint file, or a run directory: its best.pt (best by validation), or with last
    (or when it has none: no validation part) its latest ckpt.pt."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME if last or not (path / BEST).is_file() else path / BEST
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def _is_torch_archive(path: Path) -> bool:
    """torch.save writes a zip holding <name>/data.pkl; random bytes, a cut-off file or another
    zip are not one (and are corrupt, not unsafe)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load(path: str | Path, last: bool = False) -> dict:
    """Load safely onto the CPU (a GPU-trained checkpoint loads on a machine without one). A run
    directory gives its best checkpoint, or its latest with last (resolve)."""
    path = resolve(path, last)
    if not _is_torch_archive(path):
        raise CheckpointError(f"{path} is corrupt or not a checkpoint (not a complete PyTorch file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only met something other than plain data: possibly a file built to run code
        raise CheckpointError(f"{path} is not a safe zhrnn checkpoint: it holds objects other than plain data, "
                              "which zhrnn never loads") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a zhrnn checkpoint")
    version = state.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has format version {version}, newer than this zhrnn reads ({VERSION}); upgrade zhrnn")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete (missing {', '.join(missing)})")
    return state


SAMPLING = ("model", "model_config", "tokenizer", "layout", "corpus_config", "train_config", "corpus", "step", "best",
            "best_val_bpc", "counts", "credits")


def export(source: str | Path, path: str | Path, half: bool = True, last: bool = False, change=None) -> Path:
    """A sampling-only copy: no optimizer or RNG state, float16 weights unless half=False (the
    loader widens them back to float32). What pretrained/ ships. change(state), if given, may
    add to the state first (counting.add_counts)."""
    state = load(source, last)
    if change is not None:
        change(state)
    kept = {k: state[k] for k in SAMPLING if k in state}
    if half:  # one half copy per tensor: a tied embedding and output stay one matrix in the file
        halves: dict[tuple, torch.Tensor] = {}  # by storage: a loaded file gives shared tensors as two objects
        kept["model"] = {k: halves.setdefault((v.data_ptr(), v.shape), v.half()) if v.is_floating_point() else v
                         for k, v in state["model"].items()}
    return save(kept, path)


def latest(root: str | Path = "runs", last: bool = False) -> Path | None:
    """The checkpoint (resolve) of the run directory under root trained most recently, or None."""
    found = [p for p in Path(root).glob(f"*/{FILENAME}") if p.is_file()]
    return resolve(max(found, key=lambda p: p.stat().st_mtime).parent, last) if found else None
