"""Reading training text: files or directories, encodings, newlines, OpenCC, '^' paragraph markers.

The result is one string in which every paragraph starts with the marker and ends with '\\n':

    "^床前明月光，疑是地上霜。\\n^春眠不觉晓，处处闻啼鸟。\\n"

so the model learns where paragraphs begin and sampling can start "at the beginning of one".
"""
from __future__ import annotations

import codecs
import hashlib
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from . import script
from .errors import ConfigError, CorpusError

log = logging.getLogger(__name__)

PARAGRAPH_MODES = ("line", "blank", "off")


@dataclass
class CorpusConfig:
    encoding: str | None = None  # None: detect UTF-8 / UTF-16 / GB18030 (GBK) / Big5
    paragraphs: str = "line"  # line: one line = one paragraph; blank: blank-line separated; off
    marker: str = "^"  # put before each paragraph; the model is primed with it when sampling
    convert: str | None = None  # OpenCC config applied to the text, e.g. "t2s"
    normalize: str | None = None  # a unicodedata form such as "NFKC"; off by default (keeps ，！？)
    labels: bool = False  # each paragraph may start with "label<TAB>": a context label (李白, 水调歌头)
    label_min_count: int = 10  # rarer labels are dropped (their paragraphs train unlabelled)

    def __post_init__(self):
        if self.labels and self.paragraphs == "off":
            raise ConfigError("--labels needs paragraphs: a label belongs to the paragraph it starts")
        if self.label_min_count < 1:
            raise ConfigError("--label-min-count must be at least 1")
        if self.paragraphs not in PARAGRAPH_MODES:
            raise ConfigError(f"--paragraphs must be one of {', '.join(PARAGRAPH_MODES)}, not {self.paragraphs!r}")
        if self.paragraphs != "off" and len(self.marker) != 1:
            raise ConfigError(f"the paragraph marker must be one character, not {self.marker!r}")
        if self.normalize not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ConfigError(f"unknown Unicode normalisation {self.normalize!r}")


@dataclass
class Corpus:
    text: str  # prepared text, markers in place
    encodings: dict[str, str] = field(default_factory=dict)  # file -> encoding it was read with
    script: str = script.UNKNOWN  # after conversion
    paragraphs: int = 0
    marker: str | None = "^"  # None when paragraphs == "off"
    labels: dict[str, str] = field(default_factory=dict)  # label name -> its token (a LABEL_BASE character)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


# --- decoding --------------------------------------------------------------------------------

_BOMS = (  # longest first: the UTF-32 LE BOM begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Legacy Chinese encodings tried when a file is not UTF-8. GB18030 decodes all of GBK and GB2312;
# cp950 is Big5 as Windows writes it.
_LEGACY = ("gb18030", "cp950")


@lru_cache(maxsize=1)
def _common_chars() -> frozenset[str]:
    """Characters that make up nearly all real Chinese text, in either script.

    GB2312 level 1 (the 3,755 most used Simplified characters) plus Big5's 5,401 "frequently used"
    characters, read from Python's own codecs so no table is shipped. Decoding GBK bytes as Big5
    (or back) gives mostly rare characters and symbols, so the share of common characters tells
    the right decoding from the wrong one.
    """
    chars = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    for lead in range(0xA4, 0xC7):
        for trail in [*range(0x40, 0x7F), *range(0xA1, 0xFF)]:
            try:
                chars.add(bytes((lead, trail)).decode("big5"))
            except UnicodeDecodeError:
                pass
    return frozenset(chars)


def _plausibility(text: str) -> float:
    """Share of the non-ASCII characters that are common CJK characters or CJK punctuation."""
    common = _common_chars()
    total = hits = 0
    for ch in text[:200_000]:  # a sample decides as well as the whole file
        if ch < "\x80":
            continue
        total += 1
        o = ord(ch)
        if ch in common or 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF5E or 0x2010 <= o <= 0x2027:
            hits += 1
    return hits / total if total else 1.0


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text[:100_000] if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    return controls > max(2, len(text[:100_000]) // 1000)


def _decode_bytes(data: bytes, encoding: str, final: bool) -> str:
    """final=False: data is the head of a longer file, so a character cut at its end is no error."""
    if final:
        return data.decode(encoding)
    return codecs.getincrementaldecoder(encoding)().decode(data, final=False)


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark at the start of data announces, if any."""
    return next((enc for bom, enc in _BOMS if data.startswith(bom)), None)


def _legacy_decodings(data: bytes, final: bool = True) -> list[tuple[float, str, str]]:
    """(plausibility, encoding, text) for each legacy Chinese encoding that decodes the bytes, best first."""
    scored = []
    for enc in _LEGACY:
        try:
            text = _decode_bytes(data, enc, final)
        except UnicodeDecodeError:
            continue
        scored.append((_plausibility(text), enc, text))
    return sorted(scored, reverse=True)


ENCODING_HINT = "pass --encoding (e.g. --encoding gbk, big5 or latin-1)"


def decode(data: bytes, encoding: str | None = None, name: str = "input", final: bool = True) -> tuple[str, str]:
    """Decode file bytes; returns (text, encoding used). Refuses what it cannot read with confidence.
    final=False: data is only the head of the file (see stream.py), its last character may be cut."""
    if encoding:
        try:
            return _decode_bytes(data, encoding, final), encoding
        except LookupError:
            raise ConfigError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as e:
            raise CorpusError(f"{name} is not valid {encoding} (byte {e.start}); check --encoding") from None

    enc = bom_encoding(data)
    if enc:
        try:
            return _decode_bytes(data, enc, final), enc
        except UnicodeDecodeError as e:
            raise CorpusError(f"{name} starts with a {enc} byte-order mark but has invalid bytes at {e.start}") from None

    if b"\x00" in data[:1_000_000]:
        raise CorpusError(f"{name} looks like a binary file (it contains NUL bytes), not text")
    # Valid UTF-8 is taken as UTF-8. GBK text is valid UTF-8 only by accident, with odds that fall
    # about threefold per character: a character or two (选 reads as ѡ), never a usable corpus.
    try:
        return _decode_bytes(data, "utf-8", final), "utf-8"
    except UnicodeDecodeError as e:
        utf8_error = e.start

    scored = _legacy_decodings(data, final)

    hint = ENCODING_HINT
    if not scored:
        raise CorpusError(f"{name} is not UTF-8 (bad byte at {utf8_error}), GBK/GB18030 or Big5; {hint}")
    best, enc, text = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best < 0.8:
        raise CorpusError(f"cannot tell the encoding of {name} (not UTF-8; GBK or Big5 only guessed); {hint}")
    if best - runner_up < 0.1:
        # Only a character or two can read well both ways (real text separates by > 0.4):
        # take GBK, by far the more common, and say how to override.
        _, enc, text = next(s for s in scored if s[1] == "gb18030")
        log.warning("%s is too short to tell GBK from Big5; read as GBK (use --encoding big5 if wrong)", name)
    log.info("%s: decoded as %s", name, enc)
    return text, enc


# --- reading ---------------------------------------------------------------------------------


def text_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise CorpusError(f"directory {path} has no .txt files")
        return files
    if not path.exists():
        raise CorpusError(f"{path} does not exist")
    return [path]


def read_text(paths, encoding: str | None = None) -> tuple[str, dict[str, str]]:
    """Read and decode one or more files or directories of .txt files, joined by newlines."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    parts, encodings = [], {}
    for path in paths:
        for f in text_files(Path(path)):
            try:
                data = f.read_bytes()
            except OSError as e:
                raise CorpusError(f"cannot read {f}: {e.strerror}") from None
            text, enc = decode(data, encoding, name=str(f))
            if _looks_binary(text):
                raise CorpusError(f"{f} looks like a binary file (control characters), not text")
            parts.append(text)
            encodings[str(f)] = enc
    return "\n".join(parts), encodings


def normalize_newlines(text: str) -> str:
    return text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")


def split_paragraphs(text: str, mode: str) -> list[str]:
    """Paragraphs without surrounding whitespace (full-width indentation included); empty ones dropped."""
    if mode == "line":
        chunks = text.split("\n")
    else:  # blank: lines separated by one or more empty lines
        chunks, current = [], []
        for line in text.split("\n"):
            if line.strip():
                current.append(line.strip())
            elif current:
                chunks.append("\n".join(current))
                current = []
        chunks.append("\n".join(current))
    return [c.strip() for c in chunks if c.strip()]


class MarkStats:
    """What is_marked decides on, gathered a piece of the text at a time (pieces cut after a '\\n',
    so that no line is split): the whole text need not be in memory."""

    def __init__(self, marker: str):
        self.marker = marker
        self.lines = 0  # lines with more than whitespace
        self.marked = 0  # of them, those that start with the marker
        self.count = 0  # markers anywhere
        self.first: str | None = None  # the text's first non-whitespace character

    def add(self, piece: str) -> None:
        for line in piece.split("\n"):
            start = line.lstrip()
            if start:
                self.lines += 1
                self.marked += start.startswith(self.marker)
        self.count += piece.count(self.marker)
        if self.first is None and piece.strip():
            self.first = piece.lstrip()[0]

    def is_marked(self) -> bool:
        if not self.lines:
            return False
        # one line only: the same as "\n" not being in text.strip()
        return self.marked >= 0.5 * self.lines or (
            self.first == self.marker and self.count > 1 and self.lines < 2
        )


def is_marked(text: str, marker: str) -> bool:
    """True when the text already has the marker at (most) paragraph starts: then it is used as is."""
    stats = MarkStats(marker)
    stats.add(text)
    return stats.is_marked()


def add_markers(text: str, mode: str, marker: str) -> tuple[str, int]:
    """Put the marker before each paragraph and '\\n' after it. Returns (text, paragraph count)."""
    if mode == "off":
        return text, 0
    if is_marked(text, marker):
        return (text if text.endswith("\n") else text + "\n"), text.count(marker)
    paragraphs = split_paragraphs(text, mode)
    stray = sum(p.count(marker) for p in paragraphs)
    if stray:
        log.warning("the text has %d '%s' characters of its own; they will read as paragraph starts", stray, marker)
    return "".join(f"{marker}{p}\n" for p in paragraphs), len(paragraphs)


# Each label becomes one character of Supplementary Private Use Area-A, put right after the
# paragraph marker: a single token at either level that no real text uses and render() hides.
# The model reads it at the start of each paragraph (conditioning by prefix, as CTRL's control
# codes) and sampling with --label places it there.
LABEL_BASE, LABEL_END = 0xF0000, 0xFFFFD


def is_label(ch: str) -> bool:
    return LABEL_BASE <= ord(ch[0]) <= LABEL_END if ch else False


def _label_pattern(marker: str) -> re.Pattern:
    return re.compile(f"(?m)^{re.escape(marker)}([^\t\n]*)\t")


def count_labels(marked: str, marker: str) -> Counter:
    """Paragraphs per label in marked text (or in a piece of it cut after a '\\n')."""
    return Counter(m.group(1).strip() for m in _label_pattern(marker).finditer(marked))


def assign_labels(counts: Counter, min_count: int, known: dict[str, str] | None = None) -> dict[str, str]:
    """Labels already `known` (from a checkpoint being resumed or fine-tuned) keep their tokens;
    new ones seen min_count times get the next free."""
    labels = dict(known or {})
    code = max((ord(t) for t in labels.values()), default=LABEL_BASE - 1) + 1
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if label and label not in labels and n >= min_count:
            if code > LABEL_END:
                raise ConfigError("too many labels (at most 65,534)")
            labels[label], code = chr(code), code + 1
    if not counts:
        log.warning("--labels: no paragraph starts with 'label<TAB>'; training without labels")
    return labels


def substitute_labels(marked: str, marker: str, labels: dict[str, str]) -> str:
    """'^李白\t床前…' -> '^' + the label's token + '床前…' (an unassigned label just goes)."""
    return _label_pattern(marker).sub(lambda m: marker + labels.get(m.group(1).strip(), ""), marked)


def attach_labels(marked: str, marker: str, min_count: int, known: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """'^李白\t床前…' -> '^' + the label's token + '床前…'. Labels already `known` (from a checkpoint
    being resumed or fine-tuned) keep their tokens; new ones seen min_count times get the next free."""
    labels = assign_labels(count_labels(marked, marker), min_count, known)
    return substitute_labels(marked, marker, labels), labels


def prepare(text: str, cfg: CorpusConfig, name: str = "the text", labels: dict[str, str] | None = None) -> Corpus:
    """Normalise already-decoded text into a training corpus."""
    text = normalize_newlines(text)  # first: a lone byte-order mark is empty too
    if cfg.normalize:
        text = unicodedata.normalize(cfg.normalize, text)
    if not text.strip():
        raise CorpusError(f"{name} is empty (or only whitespace)")
    text = script.convert(text, cfg.convert)
    marked, count = add_markers(text, cfg.paragraphs, cfg.marker)
    marker = None if cfg.paragraphs == "off" else cfg.marker
    found = {}
    if cfg.labels:
        marked, found = attach_labels(marked, cfg.marker, cfg.label_min_count, labels)
    return Corpus(text=marked, script=script.detect_script(marked), paragraphs=count, marker=marker, labels=found)


def load_corpus(paths, cfg: CorpusConfig | None = None, labels: dict[str, str] | None = None) -> Corpus:
    """Read files (or directories of .txt files) and prepare them: the whole 'corpus' stage.
    labels: the label tokens of a model being resumed or fine-tuned, kept as they are."""
    cfg = cfg or CorpusConfig()
    text, encodings = read_text(paths, cfg.encoding)
    corpus = prepare(text, cfg, name=", ".join(encodings), labels=labels)
    corpus.encodings = encodings
    return corpus


def render(text: str, marker: str | None) -> str:
    """Text for people: a marker that starts a line vanishes, any other one becomes a line break;
    label tokens vanish."""
    text = "".join(ch for ch in text if not is_label(ch)) if any(map(is_label, text)) else text
    if not marker:
        return text
    out = []
    for i, ch in enumerate(text):
        if ch != marker:
            out.append(ch)
        elif i > 0 and text[i - 1] != "\n":
            out.append("\n")
    return "".join(out)
