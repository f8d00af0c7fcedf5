"""Rhyme groups of modern Mandarin: one table of the pinyin finals (韵母, as pypinyin writes them)
with the group each falls in under either modern system:

- 十三辙, the thirteen rhyme groups of modern Chinese verse and song (--rhyme: 光 uang, 霜 uang,
  乡 iang: all 江阳);
- 中华新韵, the fourteen groups of modern regulated verse (--tones 新韵, through tones.py).

The two part the finals alike, but for the -i after zh ch sh r z c s (知 诗 日 资): 中华新韵 gives
it a group of its own (十三支), 十三辙 counts it in 一七 with the i of 西 (中华新韵 十二齐).
pypinyin is an optional dependency: pip install 'zhrnn[rhyme]'.
"""
from __future__ import annotations

from ..errors import ConfigError

SHISANZHE, XINYUN = "十三辙", "中华新韵"
SYSTEMS = (SHISANZHE, XINYUN)
APICAL = "-i"  # the final of 知 吃 诗 日 资 雌 思 (pypinyin writes it i)

# The one table: the finals of a group (ü also written v), then the group in each of SYSTEMS.
TABLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("a", "ia", "ua"), "发花", "一麻"),
    (("o", "uo", "e"), "梭波", "二波"),
    (("ie", "ve", "üe"), "乜斜", "三皆"),
    (("ai", "uai"), "怀来", "四开"),
    (("ei", "uei", "ui"), "灰堆", "五微"),
    (("ao", "iao"), "遥条", "六豪"),
    (("ou", "iou", "iu"), "油求", "七尤"),
    (("an", "ian", "uan", "van", "üan"), "言前", "八寒"),
    (("en", "in", "uen", "un", "vn", "ün"), "人辰", "九文"),
    (("ang", "iang", "uang"), "江阳", "十唐"),
    (("eng", "ing", "ong", "iong", "ueng"), "中东", "十一庚"),
    (("i", "v", "ü", "er"), "一七", "十二齐"),
    ((APICAL,), "一七", "十三支"),
    (("u",), "姑苏", "十四姑"),
)
_GROUP = {system: {final: row[1 + k] for row in TABLE for final in row[0]} for k, system in enumerate(SYSTEMS)}
# every group name of either system (the names differ) -> its finals: 江阳 and 十唐 alike resolve
GROUPS = {name: tuple(f for finals, *names in TABLE if name in names for f in finals)
          for _, *row_names in TABLE for name in row_names}


def group_of(final: str, system: str = SHISANZHE) -> str | None:
    """The group of a pinyin final in a system (SYSTEMS); None where it has none. The -i of 知 诗
    is APICAL: pypinyin writes it i, which only the initial tells apart."""
    if system not in _GROUP:
        raise ValueError(f"unknown rhyme system {system!r}: use {' or '.join(SYSTEMS)}")
    return _GROUP[system].get(final)


def groups_of(chars: list[str]) -> list[str | None]:
    """The 十三辙 group of each character (its most common reading), None where it has none."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise ConfigError("--rhyme needs pypinyin: pip install 'zhrnn[rhyme]' (or pip install pypinyin)") from None
    # 十三辙 puts the -i of 知 in 一七 with i: pypinyin's final, which does not tell them apart, is enough
    return [group_of(lazy_pinyin(ch, style=Style.FINALS)[0]) if len(ch) == 1 else None for ch in chars]
