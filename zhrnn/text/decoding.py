"""Bytes -> text: which files a path names, and their bytes decoded (byte-order marks, UTF-8,
GBK/GB18030, Big5), a block at a time so that a file of any size is read in bounded memory.

This is the first stage of the one text pipeline (pipeline.py): everything downstream sees
only decoded pieces of text, whether they came from one short string or from 100 GB of files.
"""
from __future__ import annotations

import codecs
import logging
import lzma
import zipfile
import zlib
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, CorpusError
from .lyrics import clean_lrc

log = logging.getLogger(__name__)

# Module-level so that the tests can shrink them and put block edges everywhere.
CHUNK_BYTES = 8 << 20  # a file is read this much at a time
DETECT_BYTES = 8 << 20  # a file's encoding is told from this much of its head (the whole file if smaller)

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
    final=False: data is only the head of the file (see file_pieces), its last character may be cut."""
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


# --- files -----------------------------------------------------------------------------------


COMPRESSED = {".gz": "gzip", ".xz": "lzma", ".bz2": "bz2", ".zip": "zipfile"}  # read as the text inside


def text_files(path: Path) -> list[Path]:
    """The files a path names: itself, or a directory's .txt files (and .txt.gz, .txt.xz,
    .txt.bz2) and .lrc lyrics, nested too, in name order."""
    if path.is_dir():
        names = ("*.txt", *(f"*.txt{suffix}" for suffix in COMPRESSED if suffix != ".zip"), "*.lrc")
        files = sorted(p for name in names for p in path.rglob(name) if p.is_file())
        if not files:
            raise CorpusError(f"directory {path} has no .txt or .lrc files")
        return files
    if not path.exists():
        raise CorpusError(f"{path} does not exist")
    return [path]


def all_files(paths) -> list[Path]:
    """text_files of each path, in the order given."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [f for path in paths for f in text_files(Path(path))]


def _read(stream, size: int, path: Path) -> bytes:
    try:
        return stream.read(size)
    except EOFError:  # a compressed file cut short
        raise CorpusError(f"cannot read {path}: the compressed data ends early (a partial download?)") from None
    except (lzma.LZMAError, zipfile.BadZipFile, zlib.error) as e:
        raise CorpusError(f"cannot read {path}: corrupt compressed data ({e})") from None
    except (RuntimeError, NotImplementedError) as e:  # a zip member encrypted, or packed by an unknown method
        raise CorpusError(f"cannot read {path}: {e}") from None
    except OSError as e:  # gzip and bz2 say bad data with an OSError and no strerror
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None


def _bad_bytes(name: str, enc: str, why: str, position: int) -> str:
    """The message decode() gives for bytes its encoding cannot read, for bytes past the head."""
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


class _Members:
    """The .txt files of a .zip archive read as one stream of bytes, in name order, a newline
    between them (as between files given one after another)."""

    def __init__(self, path: Path):
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            raise CorpusError(f"{path} is not a valid .zip archive") from None
        # the .txt files, as of a directory; not the resource forks a Mac adds (__MACOSX/, ._name)
        names = sorted(i.filename for i in self.archive.infolist()
                       if i.filename.lower().endswith(".txt") and not i.filename.startswith("__MACOSX/")
                       and not i.filename.rsplit("/", 1)[-1].startswith("."))
        if not names:
            raise CorpusError(f"{path} holds no .txt files")
        self.members = iter(names)
        self.current, self.first = None, True

    def read(self, size: int) -> bytes:
        while True:
            if self.current is None:
                name = next(self.members, None)
                if name is None:
                    return b""
                self.current = self.archive.open(name)
                if not self.first:
                    return b"\n"
                self.first = False
            data = self.current.read(size)
            if data:
                return data
            self.current.close()
            self.current = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.archive.close()


def _open(path: Path):
    """A file's bytes, or the bytes inside a .gz, .xz, .bz2 or .zip file."""
    kind = COMPRESSED.get(path.suffix.lower())
    if kind == "zipfile":
        return _Members(path)
    if kind:
        import importlib

        return importlib.import_module(kind).open(path, "rb")
    return open(path, "rb")


def file_pieces(path: Path, encoding: str | None, encodings: dict[str, str]) -> Iterator[str]:
    """One file's text in pieces (of a compressed file, the text inside), decoded as decode()
    decides from the file's head; the encoding used goes into `encodings`."""
    name = str(path)
    try:
        stream = _open(path)
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


def read_pieces(paths, encoding: str | None, encodings: dict[str, str], labels: bool = False,
                credits: bool = False, per_file: bool = False) -> Iterator[str]:
    """All files' text in pieces, one file after another, joined by '\\n'. A .lrc file is one song:
    its lyric lines (lyrics.clean_lrc; credit lines kept only with credits) between blank lines, and
    with labels its artist (the [ar:] tag, else the folder's name) as the song's label. per_file
    (--paragraphs file): every file is one such block, its own blank lines left out."""
    for i, f in enumerate(all_files(paths)):
        if i:
            yield "\n"
        lrc = is_lyrics(f)
        if not lrc and not per_file:
            yield from file_pieces(f, encoding, encodings)
            continue
        text = "".join(file_pieces(f, encoding, encodings))  # a song is small: read whole
        artist = None
        if lrc:
            text, artist = clean_lrc(text, credits)
        song = "\n".join(line.strip() for line in text.splitlines() if line.strip())
        if song:
            named = labels and "\t" not in song.split("\n", 1)[0]  # a label of its own comes first
            label = (artist or folder_label(f, paths)).replace("\t", " ") if named else ""
            yield f"\n{label}\t{song}\n\n" if label else f"\n{song}\n\n"


def is_lyrics(f: Path) -> bool:
    """An LRC file: one song, read by lyrics.clean_lrc."""
    return f.suffix.lower() == ".lrc"


def folder_label(f: Path, paths) -> str:
    """The folder a file is filed under: the first one below the directory given (歌词/某歌手/专辑/x.lrc
    -> 某歌手), or the one it is in."""
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        if path.is_dir() and f.is_relative_to(path) and len(f.relative_to(path).parts) > 1:
            return f.relative_to(path).parts[0]
    return f.parent.name
