"""One self-contained checkpoint file: weights, tokenizer, configs, training state.

Only plain containers, numbers, strings and tensors go in, so it loads with
torch.load(weights_only=True): a crafted file cannot run code. Writes are atomic
(temporary file + fsync + os.replace), so a crash mid-write leaves the previous checkpoint.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError

FORMAT = "zhrnn"
VERSION = 1
FILENAME = "ckpt.pt"
REQUIRED = ("model", "model_config", "tokenizer")
_UMASK = os.umask(0o22)  # read once (os.umask can only be read by setting it), then put back
os.umask(_UMASK)


def _to_cpu(obj):
    """Every tensor moved to the CPU (optimizer state included), so that even a plain
    torch.load without map_location opens a GPU-trained checkpoint on a CPU-only machine."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def save(state: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _to_cpu({"format": FORMAT, "version": VERSION, **state})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a checkpoint gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files of writes that never finished (the writer was killed). Call only
    while holding the run's lock, so no live writer's file is removed."""
    for tmp in Path(directory).glob(f".{FILENAME}.*.tmp"):
        tmp.unlink(missing_ok=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
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


def load(path: str | Path) -> dict:
    """Load safely onto the CPU (a GPU-trained checkpoint loads on a machine without one)."""
    path = resolve(path)
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


SAMPLING = ("model", "model_config", "tokenizer", "corpus_config", "train_config", "corpus", "step", "best_val_bpc")


def export(source: str | Path, path: str | Path, half: bool = True) -> Path:
    """A sampling-only copy: no optimizer or RNG state, float16 weights unless half=False (the
    loader widens them back to float32). What pretrained/ ships."""
    state = load(source)
    kept = {k: state[k] for k in SAMPLING if k in state}
    if half:
        kept["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    return save(kept, path)


def latest(root: str | Path = "runs") -> Path | None:
    """The newest checkpoint in any run directory under root, or None."""
    found = [p for p in Path(root).glob(f"*/{FILENAME}") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
