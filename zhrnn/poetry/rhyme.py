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


_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s",
             "y", "w")
_ZHI_INITIALS = ("zh", "ch", "sh", "r", "z", "c", "s")


def final_of(syllable: str) -> str:
    """The final of a toneless pinyin syllable as TABLE writes it ('zhi' -> APICAL, 'yue' -> 've',
    'wang' -> 'uang', 'ju' -> 'v'); pypinyin's Style.NORMAL writes ü as v."""
    initial = next((i for i in _INITIALS if syllable.startswith(i)), "")
    final = syllable[len(initial):]
    if initial == "y":  # y-: i-row finals (ya ia, yan ian, yu ü, yue üe, yun ün)
        final = {"u": "v", "ue": "ve", "uan": "van", "un": "vn"}.get(final, final if final.startswith("i") else "i" + final)
    elif initial == "w":  # w-: u-row finals
        final = final if final.startswith("u") else "u" + final
    elif initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    if final == "i" and initial in _ZHI_INITIALS:
        final = APICAL  # 十三支 in 中华新韵, not the 十二齐 of 西
    return final


def group_of(final: str, system: str = SHISANZHE) -> str | None:
    """The group of a pinyin final in a system (SYSTEMS); None where it has none. The -i of 知 诗
    is APICAL: pypinyin writes it i, which only the initial tells apart."""
    if system not in _GROUP:
        raise ValueError(f"unknown rhyme system {system!r}: use {' or '.join(SYSTEMS)}")
    return _GROUP[system].get(final)


def system_of(name: str) -> str:
    """The system a group name belongs to (江阳: 十三辙, 十唐: 中华新韵)."""
    return next(system for k, system in enumerate(SYSTEMS) if any(row[1 + k] == name for row in TABLE))


def groups_in(text: str, system: str = SHISANZHE) -> list[str | None]:
    """The group of each character of text (Chinese characters only) as read there: pypinyin picks a
    character's reading by the words around it (银行 hang: 江阳, 一行 xing: 中东; 什么 me, 为了 le),
    a character alone by its usual reading. None where it has none."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise ConfigError("--rhyme needs pypinyin: pip install 'zhrnn[rhyme]' (or pip install pypinyin)") from None
    syllables = lazy_pinyin(text, style=Style.NORMAL)
    if len(syllables) != len(text):  # pypinyin runs other characters together: read each alone
        syllables = [lazy_pinyin(ch, style=Style.NORMAL)[0] for ch in text]
    return [group_of(final_of(s), system) if s.isalpha() and s.isascii() else None for s in syllables]
