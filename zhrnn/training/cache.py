"""The cache of encoded text (encoded.py fills it): where it lives, how an entry's files are
published and checked, one process preparing an entry at a time, and what `zhrnn cache` lists
and clears.

    <root>/encoded/<key>/corpus.json            what the text gave (encoded.py)
    <root>/encoded/<key>/ids-<vocab>.npy        its ids in one vocabulary
    <root>/encoded/<key>/<file>.check           the size and BLAKE2b digest of <file>, written after it
    <root>/encoded/<key>/.lock                  held while a process prepares the entry

A file is published whole or not at all (written aside, then linked into place) and counts only
with its check beside it and matching: a file cut short by a full disk, a killed copy or a bad
block is found when the entry is opened, removed with one warning, and prepared again. The root
is $ZHRNN_CACHE, else $XDG_CACHE_HOME/zhrnn, else ~/.cache/zhrnn; `zhrnn cache` prints it, and
removing it is always safe.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

CHECK = ".check"
LOCK = ".lock"
BLOCK = 8 << 20  # bytes read at a time to digest a file


def cache_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("ZHRNN_CACHE"):
        return Path(os.environ["ZHRNN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zhrnn"


def encoded_dir(root: Path) -> Path:
    return root / "encoded"


def _digest(path: Path) -> dict:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "blake2b": h.hexdigest()}


def _check_path(path: Path) -> Path:
    return path.with_name(path.name + CHECK)


def publish(path: Path, write: Callable[[object], None]) -> None:
    """Write path whole (write(f) fills a temporary file beside it), its check first: a reader
    that finds the file finds its check. An existing file with the same content is kept, never
    written over (with the cache on a shared filesystem, other machines may already map it); a
    different (damaged) one is replaced. Called with the entry's lock held (preparing)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        check = _digest(Path(tmp))
        _write_check(path, check)
        try:
            os.link(tmp, path)
        except FileExistsError:
            if _digest(path) != check:
                os.replace(tmp, path)
        except OSError:  # a filesystem without hard links
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_check(path: Path, check: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(check, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, _check_path(path))
    finally:
        Path(tmp).unlink(missing_ok=True)


def intact(path: Path) -> bool | None:
    """None: the file is not there. True: it is whole (size and digest as its check says).
    False: it is damaged, or has no check (a write that never finished)."""
    if not path.exists():
        return None
    try:
        check = json.loads(_check_path(path).read_text(encoding="utf-8"))
        if path.stat().st_size != check["bytes"]:  # cheap, and what a cut file fails
            return False
        return _digest(path) == check
    except (OSError, ValueError, KeyError, TypeError):
        return False


def discard(path: Path, why: str) -> None:
    """A damaged file and its check go, with one warning, so that they are prepared again."""
    log.warning("the cached %s is damaged (%s); preparing the text again", path, why)
    for p in (path, _check_path(path)):
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def preparing(entry: Path):
    """Hold the entry's lock while preparing it: a second process preparing the same text waits,
    then finds it ready. Where locks are not to be had (no fcntl, an unwritable entry), nothing."""
    try:
        import fcntl

        handle = open(entry / LOCK, "a+")
    except (ImportError, OSError):
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.info("another process is preparing this text; waiting for it (%s)", entry)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _held(entry: Path):
    """The entry's lock if no process holds it (True), else False at once."""
    try:
        import fcntl
    except ImportError:
        yield True
        return
    try:
        handle = open(entry / LOCK, "a+")
    except OSError:
        yield True  # no lock file to be had: nothing prepares there either
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Entry:
    """One prepared text in the cache (what `zhrnn cache` lists)."""
    path: Path
    sources: list[str]
    tokens: int | None  # None: incomplete (being prepared, or a preparation that never finished), or older
    size: int  # bytes on disk
    used: float  # when it was last prepared or opened (seconds since the epoch)
    state: str  # "ready", "older" (written by an earlier zhrnn: never read again) or "incomplete"


def entries(root: Path) -> list[Entry]:
    """The entries under root, the most recently used first."""
    found = []
    base = encoded_dir(root)
    for entry in (p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else ():
        try:
            meta = json.loads((entry / "corpus.json").read_text(encoding="utf-8"))
            state = "ready" if "tokens" in meta else "older"
        except (OSError, ValueError):
            meta, state = {}, "incomplete"
        stats = []
        for p in entry.rglob("*"):
            with contextlib.suppress(OSError):  # a temporary file may go while it is listed
                if p.is_file():
                    stats.append(p.stat())
        try:
            used = max([entry.stat().st_mtime] + [st.st_mtime for st in stats])
        except OSError:  # the entry itself went (cleared meanwhile)
            continue
        size = sum(st.st_size for st in stats)
        found.append(Entry(entry, list(meta.get("sources", [])), meta.get("tokens"), size, used, state))
    return sorted(found, key=lambda e: -e.used)


def touch(entry: Path) -> None:
    """Mark the entry used now (listing shows it; clearing by age spares it)."""
    with contextlib.suppress(OSError):
        os.utime(entry)


def clear(root: Path, older_than: float | None = None) -> tuple[int, int, int]:
    """Remove the entries (those unused for older_than seconds, if given) but those a process is
    preparing now: each is moved aside while its lock is held, then removed, so that no process
    can start preparing it in between. Returns (entries removed, bytes freed, entries kept
    because busy)."""
    removed = freed = busy = 0
    now = time.time()
    for entry in entries(root):
        if older_than is not None and now - entry.used < older_than:
            continue
        with _held(entry.path) as held:
            if not held:
                busy += 1
                continue
            aside = entry.path.with_name(f".removing-{entry.path.name}-{os.getpid()}")
            try:
                entry.path.rename(aside)
            except OSError:
                continue
        shutil.rmtree(aside, ignore_errors=True)
        removed, freed = removed + 1, freed + entry.size
    return removed, freed, busy
