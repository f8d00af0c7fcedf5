"""Rhyme groups for --rhyme: each character's final (韵母, from pypinyin) mapped to one of the
十三辙, the thirteen rhyme groups of modern Chinese verse (光 uang, 霜 uang, 乡 iang: all 江阳).
pypinyin is an optional dependency: pip install 'zhrnn[rhyme]'."""
from __future__ import annotations

from ..errors import ConfigError

GROUPS = {
    "发花": ("a", "ia", "ua"),
    "梭波": ("o", "uo", "e"),
    "乜斜": ("ie", "ve", "üe"),
    "一七": ("i", "v", "ü", "er"),
    "姑苏": ("u",),
    "怀来": ("ai", "uai"),
    "灰堆": ("ei", "uei", "ui"),
    "遥条": ("ao", "iao"),
    "油求": ("ou", "iou", "iu"),
    "言前": ("an", "ian", "uan", "van", "üan"),
    "人辰": ("en", "in", "uen", "un", "vn", "ün"),
    "江阳": ("ang", "iang", "uang"),
    "中东": ("eng", "ing", "ong", "iong"),
}
FINAL_TO_GROUP = {final: group for group, finals in GROUPS.items() for final in finals}


def groups_of(chars: list[str]) -> list[str | None]:
    """The rhyme group of each character (its most common reading), None where it has none."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise ConfigError("--rhyme needs pypinyin: pip install 'zhrnn[rhyme]' (or pip install pypinyin)") from None
    return [FINAL_TO_GROUP.get(lazy_pinyin(ch, style=Style.FINALS)[0]) if len(ch) == 1 else None for ch in chars]
