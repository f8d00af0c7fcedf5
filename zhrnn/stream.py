"""corpus.load_corpus's text, prepared a chunk at a time so that a corpus of any size fits in memory.

    pass 1  files -> decoded -> newlines -> normalised -> converted  -> spool file (UTF-8)
            (and what needs the whole text first: is it already marked? is it empty?)
    pass 2  spool -> markers -> labels -> the prepared text, chunk by chunk
            (--labels: one more pass over the spool first, to count the labels)

Every step is the one corpus.prepare applies to the whole text, applied to pieces cut right
after a '\\n'. None of those steps looks across a line break (OpenCC and jieba split at
whitespace, Unicode normalisation cannot reach past '\\n'), so the chunks join into exactly the
text corpus.load_corpus returns, and the fingerprint, paragraph count and script found along
the way are the same too.
"""
from __future__ import annotations

import codecs
import hashlib
import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import script
from .corpus import (ENCODING_HINT, CorpusConfig, MarkStats, _looks_binary, assign_labels, bom_encoding,
                     count_labels, decode, substitute_labels, text_files)
from .errors import CorpusError

log = logging.getLogger(__name__)

# Module-level so that the tests can shrink them and put chunk edges everywhere.
CHUNK_BYTES = 8 << 20  # read (and spooled text re-read) this much at a time
DETECT_BYTES = 8 << 20  # a file's encoding is told from this much of its head (the whole file if smaller)
SCRIPT_SAMPLE = 200_000  # characters script.detect_script reads


# --- pass 1: reading -------------------------------------------------------------------------


def _read(stream, size: int, path: Path) -> bytes:
    try:
        return stream.read(size)
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror}") from None


def _bad_bytes(name: str, enc: str, why: str, position: int) -> str:
    """The message corpus.decode gives for bytes its encoding cannot read, for bytes past the head."""
    if why == "given":
        return f"{name} is not valid {enc} (byte {position}); check --encoding"
    if why == "bom":
        return f"{name} starts with a {enc} byte-order mark but has invalid bytes at {position}"
    return (f"{name} is not valid {enc} at byte {position}, though its first {DETECT_BYTES:,} bytes read as "
            f"{enc}; {ENCODING_HINT}")


def _decoded(blocks: Iterator[bytes], enc: str, name: str, why: str) -> Iterator[str]:
    """Incremental decoding: a character cut by a block's edge is completed by the next block."""
    decoder = codecs.getincrementaldecoder(enc)()
    fed = 0  # bytes given to the decoder so far, for the position of a bad byte
    while True:
        block = next(blocks, b"")  # b"" only at the end: then undecoded bytes left over are an error
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as e:
            raise CorpusError(_bad_bytes(name, enc, why, fed - pending + e.start)) from None
        fed += len(block)
        if text:
            yield text
        if not block:
            return


def file_pieces(path: Path, encoding: str | None, encodings: dict[str, str]) -> Iterator[str]:
    """One file's text in pieces, decoded as corpus.decode decides from the file's head; the
    encoding used goes into `encodings`, as corpus.read_text records it."""
    name = str(path)
    try:
        stream = open(path, "rb")
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror}") from None
    with stream:
        head = _read(stream, DETECT_BYTES, path)
        more = _read(stream, CHUNK_BYTES, path)
        whole = not more
        text, enc = decode(head, encoding, name=name, final=whole)
        if _looks_binary(text):
            raise CorpusError(f"{path} looks like a binary file (control characters), not text")
        encodings[name] = enc
        if whole:
            yield text
            return
        del text
        why = "given" if encoding else "bom" if bom_encoding(head) else "detected"

        def blocks():
            yield head
            block = more
            while block:
                yield block
                block = _read(stream, CHUNK_BYTES, path)

        yield from _decoded(blocks(), enc, name, why)


def joined_pieces(paths, encoding: str | None, encodings: dict[str, str]) -> Iterator[str]:
    """All files' text, joined by '\\n' as corpus.read_text joins them."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    first = True
    for path in paths:
        for f in text_files(Path(path)):
            if not first:
                yield "\n"
            first = False
            yield from file_pieces(f, encoding, encodings)


def normalized_newlines(pieces: Iterable[str]) -> Iterator[str]:
    """corpus.normalize_newlines a piece at a time: a '\\r' at a piece's end waits for the next
    piece, which may start with the '\\n' of the same '\\r\\n'."""
    held = ""
    for piece in pieces:
        piece = held + piece.replace("\ufeff", "")
        held = "\r" if piece.endswith("\r") else ""
        if held:
            piece = piece[:-1]
        yield piece.replace("\r\n", "\n").replace("\r", "\n")
    if held:
        yield "\n"


def cut_at_lines(pieces: Iterable[str]) -> Iterator[str]:
    """The same text in pieces that each end right after a '\\n' (the last one may not), so no
    line is split. A line longer than a piece is gathered whole (the one unbounded case)."""
    carry: list[str] = []  # a list, not a growing string: a long line is copied once, not per piece
    for piece in pieces:
        cut = piece.rfind("\n") + 1
        if not cut:
            carry.append(piece)
            continue
        carry.append(piece[:cut])
        yield "".join(carry)
        carry = [piece[cut:]]
    rest = "".join(carry)
    if rest:
        yield rest


def split_lines(text: str, size: int) -> Iterator[str]:
    """text (cut after a '\\n', as cut_at_lines gives it) in parts of about `size` characters,
    each ending after a '\\n'."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind("\n", start, start + size) + 1 or text.find("\n", start + size) + 1
        if not cut:
            break
        yield text[start:cut]
        start = cut
    if start < len(text):
        yield text[start:]


class _Spooled:
    """Pass 1: the text read, with newlines, Unicode form and script as corpus.prepare makes them,
    written to `path` as UTF-8; and what the whole text decides (is it marked, is it empty)."""

    def __init__(self, paths, cfg: CorpusConfig, path: Path):
        self.path = path
        self.encodings: dict[str, str] = {}
        self.marks = MarkStats(cfg.marker)
        has_text = False
        with open(path, "wb") as out:
            for piece in self._converted(paths, cfg):
                has_text = has_text or bool(piece.strip())
                self.marks.add(piece)
                out.write(piece.encode("utf-8", "surrogatepass"))
        if not has_text:
            raise CorpusError(f"{', '.join(self.encodings)} is empty (or only whitespace)")
        self.size = path.stat().st_size

    def _converted(self, paths, cfg: CorpusConfig) -> Iterator[str]:
        lines = cut_at_lines(normalized_newlines(joined_pieces(paths, cfg.encoding, self.encodings)))
        for piece in lines:
            if cfg.normalize:
                piece = unicodedata.normalize(cfg.normalize, piece)
            yield script.convert(piece, cfg.convert)

    def pieces(self) -> Iterator[str]:
        """The spooled text again, cut after a '\\n'."""
        with open(self.path, "rb") as f:
            blocks = iter(lambda: f.read(CHUNK_BYTES), b"")
            decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
            yield from cut_at_lines(decoder.decode(block) for block in blocks)


# --- pass 2: markers and labels --------------------------------------------------------------


class _Paragraphs:
    """corpus.add_markers for a text that has no markers yet, a line at a time: the same
    paragraphs (a line, or blank-line separated lines), each as marker + paragraph + '\\n'."""

    def __init__(self, mode: str, marker: str):
        self.mode, self.marker = mode, marker
        self.paragraphs = 0
        self.stray = 0  # markers of the text's own
        self.open = False  # blank mode: a paragraph has begun and not ended
        self.tail = ""  # what follows the last '\n' seen

    def feed(self, piece: str) -> str:
        lines = (self.tail + piece).split("\n")
        self.tail = lines.pop()
        return "".join(map(self._line, lines))

    def finish(self) -> str:
        last = self._line(self.tail) if self.tail else ""
        self.tail = ""
        return last + self._close()

    def _line(self, line: str) -> str:
        line = line.strip()
        if not line:
            return self._close()
        self.stray += line.count(self.marker)
        if self.mode == "line":
            self.paragraphs += 1
            return f"{self.marker}{line}\n"
        start = "\n" if self.open else self.marker
        self.open = True
        return start + line

    def _close(self) -> str:
        if not self.open:
            return ""
        self.open = False
        self.paragraphs += 1
        return "\n"


class _AsIs:
    """corpus.add_markers for a text already marked (or with paragraphs off): the text itself,
    ended by a '\\n' if it lacks one (not with paragraphs off)."""

    def __init__(self, marker: str | None):
        self.marker = marker
        self.paragraphs = 0
        self.stray = 0
        self.last = ""

    def feed(self, piece: str) -> str:
        if self.marker:
            self.paragraphs += piece.count(self.marker)
        self.last = piece[-1:] or self.last
        return piece

    def finish(self) -> str:
        return "\n" if self.marker and self.last != "\n" else ""


class StreamedCorpus:
    """What corpus.load_corpus gives (text, paragraphs, script, marker, labels, fingerprint), with
    the text as chunks() instead of one string. Reading (pass 1) happens here, at once; the
    counts that need the whole prepared text are filled in by a complete pass of chunks()."""

    def __init__(self, paths, cfg: CorpusConfig, labels: dict[str, str] | None, spool: Path):
        self.cfg = cfg
        self.marker = None if cfg.paragraphs == "off" else cfg.marker
        self.spooled = _Spooled(paths, cfg, spool)
        self.as_is = self.marker is None or self.spooled.marks.is_marked()
        self._stray_told = False
        self.labels: dict[str, str] = {}
        if cfg.labels:
            self.labels = self._count_labels(labels)
        self.chars = self.paragraphs = 0
        self.fingerprint, self.script = "", script.UNKNOWN

    @property
    def size(self) -> int:
        """Bytes of the text as UTF-8 (after conversion, before markers)."""
        return self.spooled.size

    def _marking(self):
        return _AsIs(self.marker) if self.as_is else _Paragraphs(self.cfg.paragraphs, self.cfg.marker)

    def _marked(self, marking) -> Iterator[str]:
        for piece in self.spooled.pieces():
            yield marking.feed(piece)
        yield marking.finish()
        if marking.stray and not self._stray_told:
            self._stray_told = True
            log.warning("the text has %d '%s' characters of its own; they will read as paragraph starts",
                        marking.stray, self.marker)

    def _count_labels(self, known: dict[str, str] | None) -> dict[str, str]:
        """A first pass over the marked text: which labels occur min_count times."""
        counts = Counter()
        for piece in cut_at_lines(self._marked(self._marking())):
            counts.update(count_labels(piece, self.cfg.marker))
        return assign_labels(counts, self.cfg.label_min_count, known)

    def chunks(self) -> Iterator[str]:
        """The prepared text, in pieces that each end after a '\\n' (the last one may not)."""
        marking = self._marking()
        digest, head, chars = hashlib.sha256(), [], 0
        for piece in cut_at_lines(self._marked(marking)):
            if self.cfg.labels:
                piece = substitute_labels(piece, self.cfg.marker, self.labels)
            digest.update(piece.encode("utf-8"))
            if chars < SCRIPT_SAMPLE:
                head.append(piece[: SCRIPT_SAMPLE - chars])
            chars += len(piece)
            yield piece
        self.chars, self.paragraphs = chars, marking.paragraphs
        self.fingerprint = digest.hexdigest()[:16]
        self.script = script.detect_script("".join(head))


def stream_corpus(paths, cfg: CorpusConfig, labels: dict[str, str] | None, spool: Path) -> StreamedCorpus:
    """corpus.load_corpus, streamed: the text is read now into `spool` (a temporary file the caller
    removes when done), and prepared chunk by chunk from there."""
    return StreamedCorpus(paths, cfg, labels, Path(spool))
