"""The encoded corpus: text read, marked, converted and tokenized once into a cache directory,
then memory-mapped from there.

    <cache>/encoded/<key>/corpus.json         what the text gave: the vocabulary built from it, counts, script
    <cache>/encoded/<key>/ids-<vocab>.npy     its ids in one vocabulary (uint16, uint32 past 65,535 tokens)

<key> hashes the files' bytes and every option that shapes the result, so an edited file or a
changed option makes a new entry, and a second run on the same text neither reads nor tokenizes
it again (jieba word mode takes minutes on a large corpus). The ids are opened with
np.load(mmap_mode="r"): the processes of a torchrun training on one machine share one copy in
the page cache, and none of them holds the whole text.

The cache is $ZHRNN_CACHE, else $XDG_CACHE_HOME/zhrnn, else ~/.cache/zhrnn; deleting it is
always safe.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from .corpus import CorpusConfig, load_corpus, text_files
from .data import encode_ids
from .errors import ConfigError, CorpusError
from .tokenizer import Tokenizer, build_tokenizer

log = logging.getLogger(__name__)

VERSION = 1  # bump when the prepared text or the id layout changes meaning


def cache_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("ZHRNN_CACHE"):
        return Path(os.environ["ZHRNN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zhrnn"


@dataclass
class CorpusInfo:
    """What the trainer needs to know of the text once it is ids."""
    chars: int  # characters of the prepared text (markers and labels included)
    paragraphs: int
    script: str
    marker: str | None
    fingerprint: str  # of the prepared text: a resumed run says when its text changed
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Encoded:
    ids: np.ndarray  # (N,) uint16/uint32, memory-mapped from the cache when it could be written
    tokenizer: Tokenizer
    info: CorpusInfo
    cached: bool = False  # read from the cache, not prepared now

    @property
    def digest(self) -> str:
        """Equal on two machines exactly when they train on the same ids in the same vocabulary."""
        return (f"{len(self.ids):,} tokens, vocabulary of {len(self.tokenizer):,} "
                f"(text {self.info.fingerprint[:8]}, vocabulary {vocab_digest(self.tokenizer)[:8]})")


# A tokenizer for the ids: given the one built from the text (and what the text is), return
# the one to encode with (itself, a resumed checkpoint's, or a fine-tuned base's grown by it).
Choose = Callable[[Tokenizer, CorpusInfo], Tokenizer]


def vocab_digest(tokenizer: Tokenizer) -> str:
    return hashlib.sha256(json.dumps(tokenizer.to_dict(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cache_key(paths, corpus_cfg: CorpusConfig, level: str, min_count: int, max_vocab: int | None,
              labels: dict[str, str] | None) -> str:
    """Hash of the files' bytes (streamed) and of everything that changes what they become."""
    h = hashlib.sha256()
    options = {"version": VERSION, "corpus": asdict(corpus_cfg), "level": level, "min_count": min_count,
               "max_vocab": max_vocab, "labels": sorted((labels or {}).items()),
               "opencc": _version("opencc-python-reimplemented") if corpus_cfg.convert else None,
               "jieba": _version("jieba") if level == "word" else None}
    h.update(json.dumps(options, sort_keys=True, ensure_ascii=False).encode())
    for path in paths:
        for f in text_files(Path(path)):
            h.update(b"\0file\0")
            try:
                with open(f, "rb") as stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        h.update(chunk)
            except OSError as e:
                raise CorpusError(f"cannot read {f}: {e.strerror}") from None
    return h.hexdigest()[:24]


def _write_once(path: Path, write: Callable[[object], None]) -> None:
    """Write path whole or not at all, and never over an existing one: with the cache on a
    shared filesystem, several machines may prepare the same entry while others already map
    the first copy (which a rename over it would pull away)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # the same bytes, written by another machine first
        except OSError:  # a filesystem without hard links
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class _Warnings(logging.Handler):
    """Collects what reading the text warns of (a guessed encoding, stray markers), so that a
    run from the cache says it again."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.loggers = [logging.getLogger(name) for name in ("zhrnn.corpus", "zhrnn.tokenizer")]

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self):
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self)


def _damaged(path: Path, e: Exception) -> None:
    """A cache file that cannot be read goes, so that it is written again (never over itself)."""
    log.warning("the cached %s is damaged (%s); preparing the text again", path, type(e).__name__)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _open_cached(entry: Path, choose: Choose) -> Encoded | None:
    meta_path = entry / "corpus.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        built, info = Tokenizer.from_dict(meta["tokenizer"]), CorpusInfo(**meta["info"])
    except OSError:  # not there (or not readable): prepare the text
        return None
    except (ValueError, KeyError, TypeError) as e:
        _damaged(meta_path, e)
        return None
    tokenizer = choose(built, info)
    ids_path = entry / f"ids-{vocab_digest(tokenizer)}.npy"
    try:
        ids = np.load(ids_path, mmap_mode="r")
    except OSError:
        return None
    except ValueError as e:
        _damaged(ids_path, e)
        return None
    for message in meta.get("warnings", []):
        log.warning("%s", message)
    return Encoded(ids, tokenizer, info, cached=True)


def encode_corpus(paths, corpus_cfg: CorpusConfig, level: str, min_count: int, max_vocab: int | None,
                  choose: Choose, labels: dict[str, str] | None = None, cache: str | Path | None = None,
                  shared: bool = False) -> Encoded:
    """The ids of these files, from the cache when an earlier run prepared them, else prepared
    now and cached. labels: the label tokens of a resumed or fine-tuned model, kept as they are.
    shared: other processes will map the cached ids, so a cache that cannot be written is an error
    (instead of each of them preparing the whole text again)."""
    entry = cache_root(cache) / "encoded" / cache_key(paths, corpus_cfg, level, min_count, max_vocab, labels)
    found = _open_cached(entry, choose)
    if found is not None:
        log.debug("encoded text from the cache %s", entry)
        return found

    with _Warnings() as warned:
        corpus = load_corpus(paths, corpus_cfg, labels=labels)
        built = build_tokenizer(corpus.text, level, min_count=min_count, max_size=max_vocab,
                                marker=corpus.marker, script=corpus.script, labels=corpus.labels)
    info = CorpusInfo(chars=len(corpus.text), paragraphs=corpus.paragraphs, script=corpus.script,
                      marker=corpus.marker, fingerprint=corpus.fingerprint, labels=corpus.labels)
    tokenizer = choose(built, info)
    ids = encode_ids(corpus.text, tokenizer)
    del corpus
    ids_path = entry / f"ids-{vocab_digest(tokenizer)}.npy"
    try:
        entry.mkdir(parents=True, exist_ok=True)
        _write_once(ids_path, lambda f: np.save(f, ids))
        meta = {"tokenizer": built.to_dict(), "info": asdict(info), "warnings": warned.messages}
        _write_once(entry / "corpus.json", lambda f: f.write(json.dumps(meta, ensure_ascii=False).encode("utf-8")))
    except OSError as e:
        if shared:
            raise ConfigError(f"cannot write the encoded text to {entry} ({e.strerror or e}); the processes of a "
                              "torchrun training share it from there: choose a writable --cache-dir") from None
        log.warning("cannot write the encoded text to %s (%s); it stays in memory and is prepared again next time",
                    entry, e.strerror or e)
        return Encoded(ids, tokenizer, info)
    return Encoded(np.load(ids_path, mmap_mode="r"), tokenizer, info)
