"""The one text pipeline: decoded pieces of text -> the training text, a piece at a time.

    pass 1  pieces -> newlines -> Unicode form -> OpenCC            -> spool (a file, or memory)
            (and what needs the whole text first: is it already marked? is it empty?)
    pass 2  spool -> '^' paragraph markers -> label tokens            -> the prepared text
            (--labels: one more pass over the spool first, to count the labels)

The result is text in which every paragraph starts with the marker and ends with '\\n':

    "^床前明月光，疑是地上霜。\\n^春眠不觉晓，处处闻啼鸟。\\n"

so the model learns where paragraphs begin and sampling can start "at the beginning of one".

Every step works on pieces cut right after a '\\n', and none looks across a line break
(OpenCC and jieba split at whitespace, Unicode normalisation cannot reach past '\\n'), so the
result does not depend on where the pieces were cut: a whole string is this pipeline over one
piece (prepare), a 100 GB corpus the same pipeline over 8 MB blocks spooled to disk (open_text).
"""
from __future__ import annotations

import codecs
import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from . import decoding, script
from .decoding import all_files, is_lyrics, read_pieces
from .labels import assign_labels, count_labels, substitute_labels
from ..errors import ConfigError, CorpusError
from ..options import check_options, option

log = logging.getLogger(__name__)

PARAGRAPH_MODES = ("auto", "line", "blank", "file", "off")
TEXT = "文本与词表 / text and vocabulary"  # the argument group of `zhrnn train --help`
BLOCK_LINES = 60  # auto: blocks longer than this on average are sections of a text of lines, not songs
LONGEST_LINE = 1 << 20  # characters: a longer line is cut at sentence ends (cut_at_lines), so memory stays bounded
SEEN_LINES = 10_000  # repeated lines are looked for among this many of a paragraph's first lines (bounded memory)


@dataclass
class CorpusConfig:
    """How a text is read and prepared. Each field declares its flag (zhrnn/options.py): `zhrnn
    train` takes its flags from here, and check_options() its ranges."""
    encoding: str | None = option(  # None: detect UTF-8 / UTF-16 / GB18030 (GBK) / Big5
        None, type=str, flags="--encoding", group=TEXT,
        zh="文件编码, 默认自动检测", en="file encoding (default: detect UTF-8/GBK/Big5)")
    paragraphs: str = option(  # see PARAGRAPH_MODES; auto: blank when most lines stand in blocks of several
        "auto", flags="--paragraphs", choices=PARAGRAPH_MODES, group=TEXT,  # between blank lines (songs), else line
        zh="段落: auto (默认: 多数行在空行隔开的多行块里, 如歌词, 就按块分段, 否则每行一段) / 每行一段 / 空行分段 / "
           "每个文件一段 (一首歌一个文件) / 不加 '^'",
        en="auto (default: blank-line blocks when most lines stand in blocks of several, as in songs, else line), "
           "line, blank, file (each file one: a folder of songs), or off")
    marker: str = option(  # put before each paragraph; the model is primed with it when sampling
        "^", flags="--marker", group=TEXT, zh="段首标记", en="paragraph marker (default ^)")
    keep_credits: bool = option(  # .lrc files: keep the credit lines (作词：…, 作曲：…) that are dropped by default
        False, flags="--keep-credits", group=TEXT,
        zh=".lrc 歌词保留“作词：… 作曲：…”等署名行 (默认去掉)", en="keep the credit lines of .lrc files (dropped by default)")
    convert: str | None = option(  # OpenCC config applied to the text, e.g. "t2s"
        None, type=str, flags="--convert", group=TEXT,
        zh="OpenCC 繁简转换", en="convert the text: t2s, s2t, s2tw, tw2s, s2hk, ...")
    normalize: str | None = option(  # a unicodedata form such as "NFKC"; off by default (keeps ，！？)
        None, flags="--normalize", choices=("NFC", "NFKC", "NFD", "NFKD"), group=TEXT,
        zh="Unicode 规范化 (默认不做)", en="normalisation (default none)")
    labels: bool = option(  # each paragraph may start with "label<TAB>": a context label (李白, 水调歌头)
        False, flags="--labels", group=TEXT,
        zh="每段以 '标签<TAB>' 开头 (作者、词牌), 采样时可用 --label 指定", en="paragraphs start with 'label<TAB>'; sample with --label")
    label_min_count: int = option(  # rarer labels are dropped (their paragraphs train unlabelled)
        10, flags="--label-min-count", low=1, group=TEXT,
        zh="少于此段数的标签不用", en="labels on fewer paragraphs are dropped (default 10)")

    def __post_init__(self):
        check_options(self)  # each field in its declared range
        if self.labels and self.paragraphs == "off":
            raise ConfigError("--labels needs paragraphs: a label belongs to the paragraph it starts")
        if self.paragraphs != "off" and len(self.marker) != 1:
            raise ConfigError(f"the paragraph marker must be one character, not {self.marker!r}")


@dataclass
class CorpusInfo:
    """What the pipeline learned of the text over a complete pass (kept in the encoded cache)."""
    chars: int  # characters of the prepared text (markers and labels included)
    paragraphs: int
    script: str
    marker: str | None  # None when paragraphs == "off"
    fingerprint: str  # of the prepared text: a resumed run says when its text changed
    labels: dict[str, str] = field(default_factory=dict)  # label name -> its token
    layout: str = "line"  # the paragraph mode used: line, blank or off (auto resolved)
    repeated_lines: float = 0.0  # share of the lines of multi-line paragraphs that repeat one before them in it


# --- pieces ----------------------------------------------------------------------------------


def normalized_newlines(pieces: Iterable[str]) -> Iterator[str]:
    """'\\r\\n' and '\\r' become '\\n', byte-order marks go. A '\\r' at a piece's end waits for the
    next piece, which may start with the '\\n' of the same '\\r\\n'."""
    held = ""
    for piece in pieces:
        piece = held + piece.replace("\ufeff", "")
        held = "\r" if piece.endswith("\r") else ""
        if held:
            piece = piece[:-1]
        yield piece.replace("\r\n", "\n").replace("\r", "\n")
    if held:
        yield "\n"


def cut_at_lines(pieces: Iterable[str], longest: int | None = None) -> Iterator[str]:
    """The same text in pieces that each end right after a '\n' (the last one may not), so no
    line is split. longest: a line longer than this many characters is cut (at the last sentence
    end in its final quarter, else right there) with a '\n', with one warning: no one writes a
    paragraph of a million characters, but a file that lost its line breaks has one, and it
    would be held whole (memory in proportion to the file)."""
    carry: list[str] = []  # a list, not a growing string: a long line is copied once, not per piece
    held, warned = 0, False

    def bounded(text: str) -> str:
        nonlocal warned
        if longest is None or len(text) <= longest or not _long_line(longest).search(text):
            return text
        if not warned:
            log.warning("a line longer than %s characters is cut at sentence ends (has the file lost its "
                        "line breaks?)", f"{longest:,}")
            warned = True
        return "\n".join(_cut_line(line, longest) for line in text.split("\n"))

    for piece in pieces:
        cut = piece.rfind("\n") + 1
        if not cut:
            carry.append(piece)
            held += len(piece)
            if longest is not None and held > longest:  # a line still going: its finished part goes now
                line = bounded("".join(carry))
                end = line.rfind("\n") + 1
                yield line[:end]
                carry, held = [line[end:]], len(line) - end
            continue
        carry.append(piece[:cut])
        yield bounded("".join(carry))
        carry = [piece[cut:]]
        held = len(carry[0])
    rest = bounded("".join(carry))
    if rest:
        yield rest


@lru_cache(maxsize=4)
def _long_line(longest: int) -> re.Pattern:
    return re.compile(f"[^\n]{{{longest + 1}}}")


def _cut_line(line: str, longest: int) -> str:
    """A line no longer than longest as it is; a longer one with '\n' at sentence ends."""
    parts = []
    while len(line) > longest:
        end = _sentence_end(line, longest)
        parts.append(line[:end])
        line = line[end:]
    parts.append(line)
    return "\n".join(parts)


SENTENCE_ENDS = "。！？!?.…；;"


def _sentence_end(line: str, longest: int) -> int:
    """Where to cut a line longer than longest: after its last sentence end in the final quarter
    of the first longest characters, else at longest."""
    begin = longest - longest // 4
    found = max(line.rfind(mark, begin, longest) for mark in SENTENCE_ENDS)
    return found + 1 if found >= 0 else longest


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


class MarkStats:
    """Whether the text already has the marker at (most) paragraph starts, in which case it is
    used as is; gathered a piece at a time (pieces cut after a '\\n')."""

    def __init__(self, marker: str):
        self.marker = marker
        self.lines = 0  # lines with more than whitespace
        self.marked = 0  # of them, those that start with the marker
        self.count = 0  # markers anywhere
        self.first: str | None = None  # the text's first non-whitespace character
        self.blocks = 0  # runs of non-blank lines between blank lines
        self.in_blocks = 0  # lines in runs of two or more
        self._run = 0  # lines of the run going on

    def add(self, piece: str) -> None:
        lines = piece.split("\n")
        if not lines[-1]:
            lines.pop()  # the piece ends with its line: nothing after that '\n'
        for line in lines:
            start = line.lstrip()
            if start:
                self.lines += 1
                self.marked += start.startswith(self.marker)
                self._run += 1
            else:
                self._end_run()
        self.count += piece.count(self.marker)
        if self.first is None and piece.strip():
            self.first = piece.lstrip()[0]

    def _end_run(self) -> None:
        if self._run:
            self.blocks += 1
            self.in_blocks += self._run if self._run > 1 else 0
        self._run = 0

    def layout(self, songs: bool = False) -> str:
        """What --paragraphs auto chooses: blank when there are blocks between blank lines, most
        lines stand in blocks of several and a block is song-sized (BLOCK_LINES on average; a file
        of poems a line with a heading, or files joined, are not songs), else line. songs (.lrc
        files): blank."""
        self._end_run()
        blocks = self.blocks >= 2 and self.in_blocks >= 0.5 * self.lines and self.lines <= BLOCK_LINES * self.blocks
        return "blank" if songs or blocks else "line"

    def is_marked(self) -> bool:
        if not self.lines:
            return False
        # a single line counts as marked when it starts with the marker and has more ("^一^二")
        return self.marked >= 0.5 * self.lines or (
            self.first == self.marker and self.count > 1 and self.lines < 2
        )


# --- pass 1: the text, converted, spooled ----------------------------------------------------


class _Spool:
    """Pass 1's text, kept for the passes that follow: in a file (UTF-8) for a corpus read from
    disk, so that no pass holds the whole text, or in memory for a string."""

    def __init__(self, path: Path | None):
        self.path, self.memory, self.size = path, [], 0  # size: bytes as UTF-8
        self.file = open(path, "wb") if path else None

    def write(self, piece: str) -> None:
        data = piece.encode("utf-8", "surrogatepass")
        self.size += len(data)
        if self.file:
            self.file.write(data)
        else:
            self.memory.append(piece)

    def close(self) -> None:
        if self.file:
            self.file.close()

    def pieces(self) -> Iterator[str]:
        """The spooled text again, cut after a '\\n'."""
        if not self.path:
            yield from cut_at_lines(self.memory)
            return
        with open(self.path, "rb") as f:
            blocks = iter(lambda: f.read(decoding.CHUNK_BYTES), b"")
            decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
            yield from cut_at_lines(decoder.decode(block) for block in blocks)


# --- pass 2: markers and labels --------------------------------------------------------------


class _Paragraphs:
    """Markers for a text that has none yet, a line at a time: each paragraph (a line, or
    blank-line separated lines), stripped of surrounding whitespace, as marker + paragraph + '\\n'."""

    def __init__(self, mode: str, marker: str):
        self.mode, self.marker = mode, marker
        self.paragraphs = 0
        self.stray = 0  # markers of the text's own
        self.open = False  # blank mode: a paragraph has begun and not ended
        self.tail = ""  # what follows the last '\n' seen
        self.seen: set[int] = set()  # blank mode: hashes of the lines of the paragraph going on (SEEN_LINES at most)
        self.own = 0  # of them, lines that repeat one before
        self.block_lines = self.repeats = 0  # lines of multi-line paragraphs, and those that repeat one before

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
        key = hash(line)
        self.own += key in self.seen
        if len(self.seen) < SEEN_LINES:
            self.seen.add(key)
        return start + line

    def _close(self) -> str:
        if not self.open:
            return ""
        self.open = False
        self.paragraphs += 1
        if len(self.seen) + self.own > 1:  # a paragraph of several lines
            self.block_lines += len(self.seen) + self.own
            self.repeats += self.own
        self.seen, self.own = set(), 0
        return "\n"

    @property
    def repeated_lines(self) -> float:
        return self.repeats / max(1, self.block_lines)


class _AsIs:
    """A text already marked (or with paragraphs off): the text itself, ended by a '\\n' if it
    lacks one (not with paragraphs off)."""

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


class PreparedText:
    """Text through the pipeline. Pass 1 runs when it is made; chunks() runs pass 2, and after a
    complete pass `info` holds the counts that need the whole prepared text."""

    def __init__(self, pieces: Iterable[str], cfg: CorpusConfig, labels: dict[str, str] | None = None,
                 name: str | None = None, spool: Path | None = None, encodings: dict[str, str] | None = None,
                 songs: bool = False):
        """pieces: decoded text; name: what an error calls it (default: the files of `encodings`,
        which the reading fills in); labels: label tokens of a resumed or fine-tuned model, kept;
        songs: the text is of .lrc files (auto takes a song a paragraph, even of one song)."""
        self.cfg = cfg
        self.marker = None if cfg.paragraphs == "off" else cfg.marker
        self.encodings = encodings if encodings is not None else {}  # file -> encoding it was read with
        self.spool = _Spool(spool)
        marks = MarkStats(cfg.marker)
        has_text = False
        try:
            for piece in self._converted(pieces):
                has_text = has_text or bool(piece.strip())
                marks.add(piece)
                self.spool.write(piece)
        finally:
            self.spool.close()
        if not has_text:
            raise CorpusError(f"{name or ', '.join(self.encodings)} is empty (or only whitespace)")
        self.as_is = self.marker is None or marks.is_marked()
        # auto resolved, once; a file a paragraph came from the reading as blocks between blank lines
        self.layout = ("line" if self.as_is and self.marker else  # marked already: its own paragraphs, shown as lines
                       marks.layout(songs) if cfg.paragraphs == "auto" else
                       "blank" if cfg.paragraphs == "file" else cfg.paragraphs)
        if cfg.paragraphs == "auto" and not self.as_is and marks.blocks > 1:  # blank lines: say which was taken
            log.info("paragraphs: %s", f"the {marks.blocks:,} blocks between blank lines, {marks.lines / marks.blocks:.1f} "
                     "lines each (--paragraphs line: one a line)" if self.layout == "blank" else
                     "one a line, as most blocks between blank lines are one line (--paragraphs blank: the blocks)",
                     extra={"again": True})  # said again by a run that reads the text from the cache
        self._stray_told = False
        self.labels: dict[str, str] = self._count_labels(labels) if cfg.labels else {}
        self.info: CorpusInfo | None = None  # after a complete pass of chunks()
        self._text: str | None = None

    @property
    def size(self) -> int:
        """Bytes of the text as UTF-8 (after conversion, before markers)."""
        return self.spool.size

    def _converted(self, pieces: Iterable[str]) -> Iterator[str]:
        for piece in cut_at_lines(normalized_newlines(pieces), LONGEST_LINE):
            if self.cfg.normalize:
                piece = unicodedata.normalize(self.cfg.normalize, piece)
            yield script.convert(piece, self.cfg.convert)

    def _marking(self):
        return _AsIs(self.marker) if self.as_is else _Paragraphs(self.layout, self.cfg.marker)

    def _marked(self, marking) -> Iterator[str]:
        for piece in self.spool.pieces():
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
            digest.update(piece.encode("utf-8", "surrogatepass"))  # a string may hold lone surrogates
            if chars < script.SAMPLE_CHARS:  # the head that tells the script
                head.append(piece[: script.SAMPLE_CHARS - chars])
            chars += len(piece)
            yield piece
        self.info = CorpusInfo(chars=chars, paragraphs=marking.paragraphs, script=script.detect_script("".join(head)),
                               marker=self.marker, fingerprint=digest.hexdigest()[:16], labels=self.labels,
                               layout=self.layout, repeated_lines=getattr(marking, "repeated_lines", 0.0))

    def _complete(self) -> CorpusInfo:
        if self.info is None:
            for _ in self.chunks():  # a complete pass fills in the info (the text is not kept)
                pass
        return self.info

    @property
    def text(self) -> str:
        """The whole prepared text as one string, read once and kept: for texts that fit in memory
        (scoring, tests); training reads chunks() instead."""
        if self._text is None:
            self._text = "".join(self.chunks())
        return self._text

    # the info's counts, read directly (after a complete pass, made now if need be)
    paragraphs = property(lambda self: self._complete().paragraphs)
    script = property(lambda self: self._complete().script)
    fingerprint = property(lambda self: self._complete().fingerprint)


def open_text(paths, cfg: CorpusConfig, labels: dict[str, str] | None = None, spool: Path | None = None) -> PreparedText:
    """Files (or directories of .txt files) into the pipeline, read now; spool: a temporary file
    the caller removes when done (None: the text is kept in memory)."""
    encodings: dict[str, str] = {}
    pieces = read_pieces(paths, cfg.encoding, encodings, cfg.labels, cfg.keep_credits, cfg.paragraphs == "file")
    songs = any(map(is_lyrics, all_files(paths)))
    return PreparedText(pieces, cfg, labels, spool=spool, encodings=encodings, songs=songs)


def load_corpus(paths, cfg: CorpusConfig | None = None, labels: dict[str, str] | None = None) -> PreparedText:
    """Files through the pipeline, kept in memory: for texts that fit (scoring, tests, benchmarks)."""
    return open_text(paths, cfg or CorpusConfig(), labels)


def prepare(text: str, cfg: CorpusConfig | None = None, name: str = "the text",
            labels: dict[str, str] | None = None) -> PreparedText:
    """An already-decoded string through the pipeline: one piece."""
    return PreparedText([text], cfg or CorpusConfig(), labels, name=name)
