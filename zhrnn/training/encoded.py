"""The encoded corpus: text read, marked, converted and tokenized once into a cache directory,
then memory-mapped from there.

    <cache>/encoded/<key>/corpus.json         what the text gave: the vocabulary built from it, counts, script
    <cache>/encoded/<key>/ids-<vocab>.npy     its ids in one vocabulary (uint16, uint32 past 65,535 tokens)

<key> hashes the files' bytes and every option that shapes the result, so an edited file or a
changed option makes a new entry, and a second run on the same text neither reads nor tokenizes
it again (jieba word mode takes minutes on a large corpus). The ids are opened with
np.load(mmap_mode="r"): the processes of a torchrun training on one machine share one copy in
the page cache, and none of them holds the whole text.

Preparing never holds the whole text either (a 100-million-character corpus would take GBs as
one string): the text pipeline (text/pipeline.py) gives it chunk by chunk, one pass counts its
tokens while writing a provisional id per token to a temporary file (at char level the code point, at word level a
number per distinct word in first-seen order), and once the counts give the vocabulary, a second
pass turns the provisional ids into the final ones. jieba cuts the chunks on all cores.

The cache (cache.py) is $ZHRNN_CACHE, else $XDG_CACHE_HOME/zhrnn, else ~/.cache/zhrnn; each
file is published whole with a check of its size and digest, verified when opened; `zhrnn cache`
lists and clears it, and deleting it is always safe.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from .cache import cache_root, discard, encoded_dir, intact, preparing, publish, touch
from ..text.decoding import all_files, folder_label
from ..text.layout import Layout
from ..text.pipeline import CorpusConfig, CorpusInfo, PreparedText, open_text, split_lines
from ..errors import ConfigError, CorpusError
from ..text.tokenizer import Tokenizer, cut_indexed, tokenizer_class

log = logging.getLogger(__name__)

VERSION = 4  # bump when the prepared text or the id layout changes meaning (2: word vocabularies in emitted order;
# 3: CorpusInfo.layout and repeated_lines; 4: every file published with its check, cache.py)

# The one step that reads the text, and that a cache hit spares (the tests count its calls).
load_corpus = open_text

CODE_POINTS = 0x110000
REMAP_IDS = 1 << 22  # provisional ids turned into final ones at a time (16 MB of them)
WORD_CHUNK_CHARS = 1 << 20  # characters jieba cuts per task: a worker holds a few times this in words
POOL_MIN_BYTES = 1 << 20  # a smaller text is cut in this process: starting workers would cost more
MAX_WORKERS = 8  # each holds jieba's dictionary and imports torch (~350 MB): memory stays bounded on big hosts


@dataclass
class Encoded:
    ids: np.ndarray  # (N,) uint16/uint32, memory-mapped from the cache when it could be written
    tokenizer: Tokenizer
    info: CorpusInfo
    cached: bool = False  # read from the cache, not prepared now

    @property
    def layout(self) -> Layout:
        """How the text is laid out, which sampling follows and the checkpoint keeps."""
        return Layout.of_text(self.tokenizer.marker, self.info.layout, self.info.repeated_lines)

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
    if corpus_cfg.labels:  # songs may take their label from their folder: the folders count too
        options["folders"] = [folder_label(f, paths) for f in all_files(paths)]
    h.update(json.dumps(options, sort_keys=True, ensure_ascii=False).encode())
    for f in all_files(paths):
        h.update(b"\0file\0")
        try:
            with open(f, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as e:
            raise CorpusError(f"cannot read {f}: {e.strerror}") from None
    return h.hexdigest()[:24]


class _Warnings(logging.Handler):
    """Collects what reading the text warns of (a guessed encoding, stray markers) and the notes
    it marks to be said again (extra={"again": True}: how auto cut the paragraphs), so that a run
    from the cache says them again."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []  # warnings
        self.notes: list[str] = []
        self.loggers = [logging.getLogger("zhrnn.text")]  # the text pipeline and the tokenizers

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        elif getattr(record, "again", False):
            self.notes.append(record.getMessage())

    def __enter__(self):
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self)


def _open_cached(entry: Path, choose: Choose, locked: bool = False) -> Encoded | None:
    """The entry's ids in the vocabulary choose() picks, if the cache holds them whole. With the
    entry's lock held, a damaged file goes (cache.discard) and the text is prepared again;
    without it, a file that is not whole may be one being written: not there yet."""
    meta_path = entry / "corpus.json"
    state = intact(meta_path)
    if not state:
        if state is False and locked:
            discard(meta_path, "cut short or changed")
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        built, info = Tokenizer.from_dict(meta["tokenizer"]), CorpusInfo(**meta["info"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        if locked:
            discard(meta_path, type(e).__name__)
        return None
    tokenizer = choose(built, info)
    ids_path = entry / f"ids-{vocab_digest(tokenizer)}.npy"
    state = intact(ids_path)
    if not state:
        if state is False and locked:
            discard(ids_path, "cut short or changed")
        return None
    try:
        ids = np.load(ids_path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:
        if locked:
            discard(ids_path, type(e).__name__)
        return None
    for message in meta.get("warnings", []):
        log.warning("%s", message)
    for message in meta.get("notes", []):
        log.info("%s", message)
    touch(entry)
    return Encoded(ids, tokenizer, info, cached=True)


# --- counting the tokens ----------------------------------------------------------------------


def _workers(text_bytes: int) -> int:
    """Processes to cut words with: every core this process may use, unless the text is small."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, MAX_WORKERS) if text_bytes >= POOL_MIN_BYTES else 1


def _cut_words(chunks: Iterable[str], workers: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """cut_indexed of each part of the text, in order. With several workers, a few parts are
    in flight at a time, so memory stays bounded whatever the text's length."""
    parts = (part for chunk in chunks for part in split_lines(chunk, WORD_CHUNK_CHARS))
    if workers < 2:
        yield from map(cut_indexed, parts)
        return
    # spawn: no copy of this process (torch, maybe threads) in the workers, on every platform
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending = collections.deque()
        for part in parts:
            pending.append(pool.apply_async(cut_indexed, (part,)))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class _CharCounts:
    """Char level: the provisional id of a character is its code point."""

    def __init__(self, chunks: Iterable[str], out: BinaryIO):
        self.counts = np.zeros(CODE_POINTS, dtype=np.int64)
        for chunk in chunks:
            codes = chunk.encode("utf-32-le", errors="surrogatepass")  # already the uint32 code points
            self.counts += np.bincount(np.frombuffer(codes, dtype=np.uint32), minlength=CODE_POINTS)
            out.write(codes)

    def tokens(self) -> Counter:
        return Counter({chr(c): int(self.counts[c]) for c in np.flatnonzero(self.counts)})

    def mapping(self, tokenizer: Tokenizer) -> "_Expansion":
        if tokenizer.level != "char":  # its ids would need the text cut into words
            raise ConfigError(f"the model is {tokenizer.level}-level; train it with --level {tokenizer.level}")
        table = np.full(CODE_POINTS, tokenizer.unk_id, dtype=np.int64)
        for token, i in tokenizer.index.items():
            if i != tokenizer.unk_id:
                table[ord(token)] = i
        return _Expansion(table, np.ones(CODE_POINTS, dtype=np.int64), self.counts)


class _WordCounts:
    """Word level: the provisional id of a word is the order in which it was first seen."""

    def __init__(self, chunks: Iterable[str], out: BinaryIO, workers: int):
        ids: dict[str, int] = {}
        counts = np.zeros(1 << 16, dtype=np.int64)
        for words, index in _cut_words(chunks, workers):
            local = np.fromiter((ids.setdefault(w, len(ids)) for w in words), dtype=np.int64, count=len(words))
            if len(ids) > len(counts):
                counts = np.concatenate([counts, np.zeros(max(len(ids), len(counts)), dtype=np.int64)])
            counts[local] += np.bincount(index, minlength=len(words))  # local holds distinct ids
            out.write(local.astype(np.uint32)[index].tobytes())
        self.words, self.counts = list(ids), counts[: len(ids)]

    def tokens(self) -> Counter:
        return Counter(dict(zip(self.words, self.counts.tolist())))

    def mapping(self, tokenizer: Tokenizer) -> "_Expansion":
        """As WordTokenizer.encode: a word in the vocabulary is its id, any other is spelled out."""
        index, unk = tokenizer.index, tokenizer.unk_id
        flat, lengths = [], np.empty(len(self.words), dtype=np.int64)
        for p, word in enumerate(self.words):
            i = index.get(word)
            ids = [i] if i is not None else [index.get(ch, unk) for ch in word]
            flat.extend(ids)
            lengths[p] = len(ids)
        return _Expansion(np.array(flat, dtype=np.int64), lengths, self.counts)


class _Expansion:
    """Provisional id -> the final ids it becomes (one, or a word's characters)."""

    def __init__(self, flat: np.ndarray, lengths: np.ndarray, counts: np.ndarray):
        self.flat, self.lengths = flat, lengths
        self.starts = np.cumsum(lengths) - lengths  # where each provisional id's ids begin in flat
        self.simple = bool((lengths == 1).all())
        self.total = int(counts @ lengths)  # final ids of the whole text

    def __call__(self, provisional: np.ndarray) -> np.ndarray:
        if self.simple:
            return self.flat[provisional]
        lengths = self.lengths[provisional]
        ends = np.cumsum(lengths)
        # output position j of a token whose ids start at output position e reads flat[start + j - e]
        shift = np.repeat(self.starts[provisional] - (ends - lengths), lengths)
        return self.flat[shift + np.arange(len(shift))]


def _remapped(provisional: Path, expand: _Expansion) -> Iterator[np.ndarray]:
    with open(provisional, "rb") as f:
        for block in iter(lambda: f.read(4 * REMAP_IDS), b""):
            yield expand(np.frombuffer(block, dtype=np.uint32))


def _write_npy(f: BinaryIO, ids: Iterable[np.ndarray], length: int, dtype) -> None:
    """An .npy file (as np.save writes it) of ids that arrive in chunks, never all in memory."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (length,)}
    np.lib.format.write_array_header_1_0(f, header)
    written = 0
    for chunk in ids:
        f.write(chunk.astype(dtype).tobytes())
        written += len(chunk)
    if written != length:
        raise RuntimeError(f"wrote {written} ids where the counts promised {length}")


def _in_memory(ids: Iterable[np.ndarray], length: int, dtype) -> np.ndarray:
    out, at = np.empty(length, dtype=dtype), 0
    for chunk in ids:
        out[at : at + len(chunk)] = chunk
        at += len(chunk)
    return out


# --- preparing -------------------------------------------------------------------------------


def _unwritable(entry: Path, e: OSError) -> ConfigError:
    return ConfigError(f"cannot write the encoded text to {entry} ({e.strerror or e}); the processes of a "
                       "torchrun training share it from there: choose a writable --cache-dir")


def _writable(entry: Path, shared: bool) -> OSError | None:
    """None when the entry can be made; else the error that keeps it from being written (a
    torchrun training, whose processes share the entry, fails on it before minutes of preparing)."""
    try:
        entry.mkdir(parents=True, exist_ok=True)
        return None
    except OSError as e:
        if shared:
            raise _unwritable(entry, e) from None
        return e


def _workspace(entry: Path, unwritable: OSError | None) -> tempfile.TemporaryDirectory:
    """Where the temporary files go (removed when done, or on failure): inside the entry, so that
    they share its filesystem; else in the system's temporary directory."""
    if unwritable is None:
        try:
            return tempfile.TemporaryDirectory(prefix=".prepare-", dir=entry, ignore_cleanup_errors=True)
        except OSError:
            pass
    return tempfile.TemporaryDirectory(prefix="zhrnn-prepare-", ignore_cleanup_errors=True)


def _count(corpus: PreparedText, level: str, provisional: Path) -> _CharCounts | _WordCounts:
    """One pass over the prepared text: token counts, and the provisional ids written to a file."""
    with open(provisional, "wb") as out:
        if level == "char":
            return _CharCounts(corpus.chunks(), out)
        return _WordCounts(corpus.chunks(), out, _workers(corpus.size))


def encode_corpus(paths, corpus_cfg: CorpusConfig, level: str, min_count: int, max_vocab: int | None,
                  choose: Choose, labels: dict[str, str] | None = None, cache: str | Path | None = None,
                  shared: bool = False) -> Encoded:
    """The ids of these files, from the cache when an earlier run prepared them, else prepared
    now and cached. labels: the label tokens of a resumed or fine-tuned model, kept as they are.
    shared: other processes will map the cached ids, so a cache that cannot be written is an error
    (instead of each of them preparing the whole text again)."""
    entry = encoded_dir(cache_root(cache)) / cache_key(paths, corpus_cfg, level, min_count, max_vocab,
                                                                     labels)
    found = _open_cached(entry, choose)
    if found is not None:
        log.debug("encoded text from the cache %s", entry)
        return found
    unwritable = _writable(entry, shared)
    with preparing(entry) if unwritable is None else contextlib.nullcontext():
        if unwritable is None and (found := _open_cached(entry, choose, locked=True)) is not None:
            return found  # another process prepared it while this one waited
        return _prepare(paths, corpus_cfg, level, min_count, max_vocab, choose, labels, entry, _workspace(entry, unwritable),
                        unwritable, shared)


def _prepare(paths, corpus_cfg: CorpusConfig, level: str, min_count: int, max_vocab: int | None, choose: Choose,
             labels: dict[str, str] | None, entry: Path, workspace, unwritable: OSError | None,
             shared: bool) -> Encoded:
    """Read, count and encode the text, and publish it in the cache entry (or keep it in memory
    where the entry cannot be written)."""
    cls = tokenizer_class(level)
    with workspace as tmp:
        spool, provisional = Path(tmp) / "text.utf8", Path(tmp) / "provisional.u32"
        with _Warnings() as warned:
            corpus = load_corpus(paths, corpus_cfg, labels, spool)
            counted = _count(corpus, level, provisional)
            built = cls.from_counts(counted.tokens(), min_count=min_count, max_size=max_vocab, marker=corpus.marker,
                                    script=corpus.info.script, labels=corpus.info.labels)
        spool.unlink()  # its disk space, before the ids are written
        info = corpus.info
        tokenizer = choose(built, info)
        expand = counted.mapping(tokenizer)
        dtype = np.uint16 if len(tokenizer) < 2**16 else np.uint32
        ids_path = entry / f"ids-{vocab_digest(tokenizer)}.npy"
        if unwritable is None:
            try:
                publish(ids_path, lambda f: _write_npy(f, _remapped(provisional, expand), expand.total, dtype))
                meta = {"tokenizer": built.to_dict(), "info": asdict(info), "warnings": warned.messages,
                        "notes": warned.notes, "sources": [str(Path(p).resolve()) for p in paths],
                        "tokens": int(expand.total)}
                publish(entry / "corpus.json", lambda f: f.write(json.dumps(meta, ensure_ascii=False).encode("utf-8")))
                return Encoded(np.load(ids_path, mmap_mode="r"), tokenizer, info)
            except OSError as e:
                if shared:
                    raise _unwritable(entry, e) from None
                unwritable = e
        log.warning("cannot write the encoded text to %s (%s); it stays in memory and is prepared again next time",
                    entry, unwritable.strerror or unwritable)
        return Encoded(_in_memory(_remapped(provisional, expand), expand.total, dtype), tokenizer, info)
