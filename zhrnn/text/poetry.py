"""Training text from the chinese-poetry dataset (github.com/chinese-poetry/chinese-poetry, MIT).

Its JSON files each have their own schema (a list of poems; a book nesting chapters nesting
poems; a single record), so records are found by their fields, not by file names: any dict with
lines of text (`paragraphs`, `content` or `para` as strings) is a record, and the scalar fields
around it on the way down (title, author, rhythmic = 词牌, type = 五言绝句, chapter, section)
describe it. Other files of the dataset with the same kinds of fields (宋诗, 元曲, 纳兰性德 ...)
work without changes.

Output: one record per line, ready for `zhrnn train` (each line becomes a '^' paragraph);
with a label, the line starts with "label<TAB>" for `zhrnn train --labels`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from . import script
from ..errors import ConfigError, CorpusError

log = logging.getLogger(__name__)

TEXT_FIELDS = ("paragraphs", "content", "para")  # lines of the record
INFO_FIELDS = ("title", "author", "rhythmic", "type", "chapter", "section", "tags")  # inherited downwards
LABEL_FIELDS = ("author", "rhythmic", "title", "type", "chapter", "form")

# Dataset names -> where they lie, in the published package layout (as in ../shared) and in the
# GitHub repository's own layout.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "全唐诗": ("quantangshi/poet.tang.*.json", "全唐诗/poet.tang.*.json"),
    "全宋诗": ("全唐诗/poet.song.*.json", "quantangshi/poet.song.*.json"),
    "全宋词": ("songci/ci.song.*.json", "宋词/ci.song.*.json"),
    "宋词三百首": ("songci/宋词三百首.json", "宋词/宋词三百首.json"),
    "唐诗三百首": ("mengxue/tangshisanbaishou.json", "蒙学/tangshisanbaishou.json"),
    "千家诗": ("mengxue/qianjiashi.json", "蒙学/qianjiashi.json"),
    "诗经": ("shijing/shijing.json", "诗经/shijing.json"),
    "楚辞": ("chuci/chuci.json", "楚辞/chuci.json"),
    "论语": ("lunyu/lunyu.json", "论语/lunyu.json"),
    "四书": ("sishuwujing/*.json", "四书五经/*.json"),
    "花间集": ("wudaishici/huajianji/*.json", "五代诗词/huajianji/*.json"),
    "南唐二主词": ("wudaishici/nantang/*.json", "五代诗词/nantang/*.json"),
    "幽梦影": ("youmengying/*.json", "幽梦影/*.json"),
    "曹操诗集": ("caocaoshiji/*.json", "曹操诗集/*.json"),
    "水墨唐诗": ("shuimotangshi/*.json", "水墨唐诗/*.json"),
    "元曲": ("yuanqu/*.json", "元曲/*.json"),
    "纳兰性德": ("nalanxingde/*.json", "纳兰性德/*.json"),
}
DOWNLOAD_URL = "https://github.com/chinese-poetry/chinese-poetry/archive/refs/heads/master.zip"
CLAUSE_END = "，。？！；"


@dataclass
class Record:
    lines: list[str]
    info: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.lines)


# --- finding records -------------------------------------------------------------------------


def _lines(value) -> list[str] | None:
    """The record's text lines if value is text (a string or a list of strings), else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def records(node, info: dict | None = None) -> Iterator[Record]:
    """Every record under a parsed JSON value, with the fields inherited from its containers."""
    info = info or {}
    if isinstance(node, list):
        for item in node:
            yield from records(item, info)
        return
    if not isinstance(node, dict):
        return
    here = {**info, **{k: _NOTE.sub("", str(v)).strip() for k, v in node.items()
                       if k in INFO_FIELDS and isinstance(v, (str, int))}}  # （唐）孟浩然 -> 孟浩然
    if "chapter" in node and "title" not in node:  # 唐诗三百首 names a poem by its chapter
        here["title"] = here["chapter"]
    for key in TEXT_FIELDS:
        lines = _lines(node.get(key))
        if lines is not None:
            # A poem or 词 (it has a title, a 词牌 or an author) is one passage; an anonymous
            # chapter (论语, 大学) is a list of separate passages.
            if {"title", "rhythmic", "author"} & node.keys() or len(lines) == 1:
                yield Record(lines, here)
            else:
                yield from (Record([line], here) for line in lines)
            return
    for key, value in node.items():  # a container: chapters of a book, poems of a chapter
        if isinstance(value, (list, dict)):
            yield from records(value, here)


# --- cleaning and describing -----------------------------------------------------------------

_NOTE = re.compile(r"（[^（）]*）|\([^()]*\)")  # editors' notes: （一作…）, （见《…》）
_BRACKETS = re.compile(r"[\[\]【】]")  # [襟]: a character restored by the editors; keep it
_BROKEN = re.compile(r"[□{}〖〗=/●○0-9]")  # missing or composed characters: drop the record
_MARKS = "，。？！；：、"
_RUN = re.compile(f"[{_MARKS}]{{2,}}")  # 头。（见《…》）。 leaves 头。。 once the note goes
SENTENCE_END = "。？！"


def _one_mark(run: re.Match) -> str:
    """A run of punctuation left where a note stood: its first sentence end, else its first mark."""
    marks = run.group()
    return next((m for m in marks if m in SENTENCE_END), marks[0])


def clean(text: str) -> str | None:
    """The record's text without editorial notes, or None when it cannot be used as is."""
    for _ in range(3):  # notes can nest
        text = _NOTE.sub("", text)
    text = _BRACKETS.sub("", text).replace(" ", "").replace("\u3000", "").strip()
    text = _RUN.sub(_one_mark, text).lstrip(_MARKS)
    if not text or _BROKEN.search(text) or "（" in text or "）" in text:
        return None
    return text


def form_of(text: str) -> str:
    """五言绝句 / 七言律诗 / 五言 (another length of poem) / 杂言 (mixed clause lengths)."""
    clauses = [c for c in re.split(f"[{CLAUSE_END}]", text) if c]
    lengths = {len(c) for c in clauses}
    if lengths not in ({5}, {7}) or not text.endswith(tuple("。？！")):
        return "杂言"
    words = "五言" if lengths == {5} else "七言"
    return words + {4: "绝句", 8: "律诗"}.get(len(clauses), "")


@lru_cache(maxsize=None)
def simplified(name: str) -> str:
    return script.convert(name, "t2s")


def _form_matches(form: str, wanted: str) -> bool:
    return all(part in form for part in re.findall("五言|七言|绝句|律诗|杂言", simplified(wanted)))


@dataclass
class BuildConfig:
    convert: str | None = None  # OpenCC config for the output, e.g. t2s
    label: str | None = None  # record field written as "label<TAB>" before each line
    title: bool = False  # 《title》 before the text
    author_line: bool = False  # author： before the text
    authors: tuple[str, ...] = ()  # keep only these (either script)
    forms: tuple[str, ...] = ()  # 五言, 七言, 绝句, 律诗, 五言绝句, 杂言 ...
    rhythmics: tuple[str, ...] = ()  # 词牌
    min_len: int = 1
    max_len: int | None = None
    dedupe: bool = True

    def __post_init__(self):
        if self.label is not None and self.label not in LABEL_FIELDS:
            raise ConfigError(f"--label must be one of {', '.join(LABEL_FIELDS)}, not {self.label!r}")
        bad = [f for f in self.forms if not re.fullmatch("(五言|七言|绝句|律诗|杂言)+", simplified(f))]
        if bad:
            raise ConfigError(f"unknown form {bad[0]!r}; use 五言, 七言, 绝句, 律诗 or a combination such as 五言绝句")
        if self.min_len < 1 or (self.max_len is not None and self.max_len < self.min_len):
            raise ConfigError("--min-len must be at least 1 and --max-len at least --min-len")


def select(found: Iterable[Record], cfg: BuildConfig) -> Iterator[tuple[str, str | None]]:
    """(line, label) for each record that is clean and passes the filters."""
    authors = {simplified(a) for a in cfg.authors}
    rhythmics = {simplified(r) for r in cfg.rhythmics}
    seen: set[str] = set()
    for rec in found:
        text = clean(rec.text)
        if text is None or not cfg.min_len <= len(text) <= (cfg.max_len or len(text)):
            continue
        info = {**rec.info, "form": form_of(text)}
        if authors and simplified(info.get("author", "")) not in authors:
            continue
        if rhythmics and simplified(info.get("rhythmic", "")) not in rhythmics:
            continue
        if cfg.forms and not any(_form_matches(info["form"], f) for f in cfg.forms):
            continue
        if cfg.dedupe:
            if text in seen:
                continue
            seen.add(text)
        header = (f"《{info['title']}》" if cfg.title and info.get("title") else "") + (
            f"{info['author']}：" if cfg.author_line and info.get("author") else "")
        label = info.get(cfg.label, "").replace("\t", " ").strip() if cfg.label else None
        yield header + text, label or None


# --- sources ---------------------------------------------------------------------------------


def default_data_dir() -> Path:
    return Path(os.environ.get("ZHRNN_POETRY_DATA") or Path.home() / ".cache" / "zhrnn" / "chinese-poetry")


def download(dest: Path, url: str = DOWNLOAD_URL) -> Path:
    """Fetch the dataset's repository from GitHub into dest (a zip of about 100 MB)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.parent / "chinese-poetry.zip.part"
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f)
        with zipfile.ZipFile(archive) as z:
            top = z.namelist()[0].split("/")[0]
            z.extractall(dest.parent)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as e:
        reason = getattr(e, "reason", None) or e
        raise CorpusError(f"cannot download the chinese-poetry dataset ({reason}); offline? clone "
                          f"github.com/chinese-poetry/chinese-poetry and pass --data DIR") from None
    finally:
        archive.unlink(missing_ok=True)
    (dest.parent / top).rename(dest)
    return dest


def resolve_sources(sources: list[str], data: str | None = None, fetch: bool = False) -> list[Path]:
    """JSON files for each source: a file, a directory (all its .json), or a collection name."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(path.rglob("*.json"))
            if not found:
                raise CorpusError(f"{path} has no .json files")
            files.extend(found)
        elif simplified(source) in COLLECTIONS:
            files.extend(_collection(simplified(source), data, fetch))
        else:
            raise CorpusError(f"{source} is neither a file, a directory nor a known collection "
                              f"({', '.join(COLLECTIONS)})")
    return files


def _collection(name: str, data: str | None, fetch: bool) -> list[Path]:
    root = Path(data) if data else default_data_dir()
    if not root.is_dir():
        if not fetch:
            raise CorpusError(f"{name}: no chinese-poetry data at {root}; pass --data DIR (a clone of "
                              "github.com/chinese-poetry/chinese-poetry) or --download")
        root = download(root)
    for pattern in COLLECTIONS[name]:
        found = [p for p in root.glob(pattern) if not p.name.startswith(("author", "authors"))]
        if found:
            # poet.tang.1000.json after poet.tang.900.json: number order, as the dataset is numbered
            return sorted(found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    raise CorpusError(f"{name}: not found under {root} (looked for {' or '.join(COLLECTIONS[name])})")


def _read_all(paths: list[Path]) -> Iterator[Record]:
    for path in paths:
        try:
            parsed = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise CorpusError(f"cannot read {path} as JSON ({type(e).__name__})") from None
        yield from records(parsed)


def build(sources: list[str], cfg: BuildConfig, data: str | None = None, fetch: bool = False) -> tuple[str, int]:
    """The training text for the sources and how many records it holds."""
    out, labels = [], 0
    for line, label in select(_read_all(resolve_sources(sources, data, fetch)), cfg):
        out.append(f"{label}\t{line}" if label else line)
        labels += label is not None
    if not out:
        raise CorpusError("no records passed the filters (check --author / --form / --min-len)")
    if cfg.label and labels < len(out):
        log.info("%d of %d records have no %s; they are written without a label", len(out) - labels, len(out), cfg.label)
    return script.convert("\n".join(out) + "\n", cfg.convert), len(out)
