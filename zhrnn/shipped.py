"""The models shipped in the repository's pretrained/ (installed as zhrnn/pretrained), found by name: --model 宋词."""
from __future__ import annotations

from pathlib import Path

from .text import script
from .errors import CheckpointError

DEFAULT = "唐诗"


def directory() -> Path:
    """zhrnn/pretrained in an installed package; the repository's pretrained/ in a clone."""
    installed = Path(__file__).parent / "pretrained"
    return installed if installed.is_dir() else Path(__file__).parent.parent / "pretrained"


def names() -> list[str]:
    return sorted(p.stem for p in directory().glob("*.pt"))


def find(name: str) -> Path | None:
    """The shipped model called name (typed in either script), or None. The name as typed first:
    OpenCC is slow to start, and the default model needs none of it."""
    path = directory() / f"{name}.pt"
    if path.is_file():
        return path
    for variant in script.variants(name)[1:]:
        path = directory() / f"{variant}.pt"
        if path.is_file():
            return path
    return None


def resolve(name_or_path) -> Path:
    """A checkpoint path, run directory, or the name of a shipped model."""
    path = Path(name_or_path)
    if path.exists():
        return path
    found = find(str(name_or_path))
    if found is None:
        shipped = ", ".join(names()) or "none installed"
        raise CheckpointError(f"no checkpoint at {path}, and no shipped model of that name (shipped: {shipped})")
    return found
