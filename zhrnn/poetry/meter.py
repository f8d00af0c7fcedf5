"""格律 of 近体诗: the 平仄 patterns of 五言 and 七言 绝句, 律诗 and 排律, and a checker for them.

The four 律句 of 五言 (七言 puts two syllables of the opposite tone in front):

    A  仄仄平平仄     平平仄仄平平仄
    B  平平仄仄平     仄仄平平仄仄平
    C  平平平仄仄     仄仄平平平仄仄
    D  仄仄仄平平     平平仄仄仄平平

A poem is a chain of couplets. Within a couplet the lines are opposite (对: A with B, C with D);
the first line of the next couplet has the second character of the line before it (粘). Even
lines end in 平 and rhyme, from one 平声 group and never twice on one character (重韵); odd lines end
in 仄, except that the first line may rhyme too (首句入韵: D or B in place of A or C). So the first line decides the poem: 仄起 or 平起
by its second character, 首句入韵 or not by its last.

Strictness: by default the first and third characters of 五言 (first, third and fifth of 七言) are
free (一三五不论), except where that makes 孤平 (a B line with only the rhyme and one other 平:
仄平仄仄平, unless the third character is 平, the usual 拗救) or 三平尾 (the last three all 平).
strict=True holds every position. A character with readings in both tones fits either.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .tones import PING, ZE, rhyme_groups, tones

P, Z = PING, ZE
BASE = {"A": "仄仄平平仄", "B": "平平仄仄平", "C": "平平平仄仄", "D": "仄仄仄平平"}
OPPOSITE = {"A": "B", "B": "A", "C": "D", "D": "C"}  # 对: the other line of a couplet
NEXT = {"B": "C", "D": "A"}  # 粘: after a couplet's second line, the next couplet's first (unrhymed)
FORM_NAMES = {4: "绝句", 6: "小律", 8: "律诗"}  # more lines: 排律
CLAUSE = re.compile(r"[^，。？！、；：,.?!;:\s]+")
_ASIDE = re.compile(r"[（(][^）)]*[）)]|[「」『』“”‘’《》〈〉·]")  # notes in brackets, and quotation marks
_PUNCTUATION = re.compile(r"[，。？！；,.?!;]")


def line_pattern(kind: str, length: int) -> str:
    """The 平仄 of a 律句 of kind A-D, five or seven characters."""
    five = BASE[kind]
    return ("平平" if five[0] == Z else "仄仄") + five if length == 7 else five


def poem_kinds(first: str, lines: int) -> list[str]:
    """The line kinds of a poem whose first line is `first` (A-D), by 对 and 粘."""
    kinds = [first]
    before = {"D": "A", "B": "C"}.get(first, first)  # the chain goes on as if the first were unrhymed
    for i in range(1, lines):
        kinds.append(OPPOSITE[before] if i % 2 else NEXT[before])
        before = kinds[-1]
    return kinds


def poem_name(first: str, length: int, lines: int) -> str:
    """e.g. 五言绝句·仄起首句不入韵."""
    form = FORM_NAMES.get(lines, "排律")
    second = line_pattern(first, length)[1]
    return f"{'五' if length == 5 else '七'}言{form}·{second}起首句{'入' if first in 'BD' else '不入'}韵"


def free_positions(length: int) -> tuple[int, ...]:
    """0-based positions that 一三五不论 frees: the first and third of 五言, first, third, fifth of 七言."""
    return (0, 2) if length == 5 else (0, 2, 4)


@dataclass
class Problem:
    line: int  # 0-based
    position: int | None  # 0-based character, None for a whole-line problem
    kind: str  # 平仄, 孤平, 三平尾, 失对, 失粘, 出韵, 重韵, 未知字
    message: str


@dataclass
class LineResult:
    text: str
    kind: str  # A-D
    pattern: str  # e.g. 仄仄平平仄
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Report:
    name: str  # e.g. 五言绝句·仄起首句不入韵
    lines: list[LineResult]
    rhyme_group: str | None
    problems: list[Problem]  # every problem, in line order

    @property
    def ok(self) -> bool:
        return not self.problems


def _line_problems(i: int, text: str, kind: str, strict: bool, modern: bool) -> list[Problem]:
    """Each character against acceptable(), the one statement of the rules that --tones masks by too:
    at a fixed place a 平仄 problem; at a free place the later problem it decides (孤平, 三平尾)."""
    pattern = line_pattern(kind, len(text))
    heard = [tones(c, modern) for c in text]
    core = len(text) - 5  # where the 五言 core starts
    out = []
    for j, (c, got) in enumerate(zip(text, heard)):
        if not got:
            out.append(Problem(i, j, "未知字", f"「{c}」不在韵表里，按平仄皆可算"))
        elif not got & acceptable(kind, len(text), j, heard[:j], strict):
            if strict or j not in free_positions(len(text)):
                out.append(Problem(i, j, "平仄", f"第{j + 1}字「{c}」应{pattern[j]}，是{''.join(sorted(got))}"))
            elif j == core + 2 and kind == "B":
                out.append(Problem(i, core, "孤平", f"犯孤平：第{core + 1}字「{text[core]}」仄，韵脚之外只剩一个平声"))
            else:
                out.append(Problem(i, j, "三平尾", f"三平尾：第{j + 1}字「{c}」平，与末两字连成三平"))
    return out


def acceptable(kind: str, length: int, j: int, before: list[frozenset[str]], strict: bool = False) -> frozenset[str]:
    """The tones a character may have at position j of a line of `kind`, the tones of the line's
    characters before it given. A free character that would decide a later problem is held to what
    avoids it (孤平 after a 仄 opening of a B line; 三平尾 before a line's last two 平), so that a line
    written by these rules never reaches a place with no way to end it."""
    want = line_pattern(kind, length)[j]
    if strict or j not in free_positions(length):
        return frozenset(want)
    core = length - 5
    if kind == "B" and j == core + 2 and before[core] == {Z}:
        return frozenset(P)  # 孤平 unless rescued here
    if j == length - 3 and line_pattern(kind, length).endswith("平平"):
        return frozenset(Z)  # 三平尾 otherwise: the last two are 平 by the pattern
    return frozenset((P, Z))


@dataclass(frozen=True)
class Option:
    """What the next character may be under one chain still open."""
    tones: frozenset[str]
    foot: bool  # a rhyme foot: a 平 character of groups
    groups: frozenset[str] | None = None  # the 平声 groups the poem's rhyme may still be in; None: any
    rhymed: frozenset[str] = frozenset()  # a foot's characters so far: a foot may not repeat one (重韵)


class Scansion:
    """The 格律 of a poem being written (--tones): given its characters so far, what the next may
    be. Each of the four chains (by the kind of the first line) stays open while the poem fits it;
    the next character may be anything that one open chain allows. Every chain is consistent, so a
    poem written this way passes check() by construction."""

    def __init__(self, length: int, lines: int, strict: bool = False, modern: bool = False,
                 fixed: dict[int, str] | None = None, groups: frozenset[str] | None = None, safe: bool = False):
        if length not in (5, 7) or lines < 4 or lines % 2:
            raise ValueError("格律 needs an even number of lines, at least 4, of 5 or of 7 characters")
        self.length, self.lines, self.strict, self.modern = length, lines, strict, modern
        self.safe = safe  # read characters by the readings both scripts share (tones.script_safe)
        self.groups = groups  # the groups a first rhyme may open (those the model can go on in); None: any
        chains = {first: poem_kinds(first, lines) for first in "ABCD"}
        # a chain whose pattern a fixed character (--acrostic) cannot take is closed from the start
        self.chains = {first: kinds for first, kinds in chains.items()
                       if all(self._fits_alone(kinds, i, ch) for i, ch in (fixed or {}).items())}

    def _fits_alone(self, kinds: list[str], i: int, ch: str) -> bool:
        line, j = divmod(i, self.length)
        want = line_pattern(kinds[line], self.length)[j]
        heard = tones(ch, self.modern, self.safe)
        return bool(heard) and (not self.strict and j in free_positions(self.length) or want in heard)

    def _feet(self, kinds: list[str]) -> list[int]:
        """Character indexes of the rhyme feet."""
        return [(i + 1) * self.length - 1 for i in range(self.lines) if i % 2 or kinds[i] in "BD"]

    def options(self, chars: str) -> list[Option]:
        """For the character after chars (the poem's characters so far, no punctuation)."""
        n = len(chars)
        if n >= self.length * self.lines:
            return []
        out = []
        heard = [tones(c, self.modern, self.safe) for c in chars]
        for kinds in self.chains.values():
            if not all(h & self._acceptable(kinds, i, heard) for i, h in enumerate(heard)):
                continue
            feet = self._feet(kinds)
            shared = self.groups
            for foot in (f for f in feet if f < n):
                mine = rhyme_groups(chars[foot], self.modern, self.safe)
                shared = mine if shared is None else shared & mine
            if shared is not None and not shared:
                continue
            out.append(Option(self._acceptable(kinds, n, heard), n in feet, shared,
                              frozenset(chars[f] for f in feet if f < n)))
        return out

    def _acceptable(self, kinds: list[str], i: int, heard: list[frozenset[str]]) -> frozenset[str]:
        line, j = divmod(i, self.length)
        return acceptable(kinds[line], self.length, j, heard[line * self.length: i], self.strict)


def poems(text: str) -> list[tuple[str | None, str]]:
    """(title or None, poem) for each poem of a text: blocks between blank lines, or one poem per
    line where every line of a block holds four clauses or more (the corpus layout). A block's
    first line is its title when it has no ，。？！； and the lines after it do."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        title = None
        if len(lines) > 1 and not _PUNCTUATION.search(lines[0]) and _PUNCTUATION.search("".join(lines[1:])):
            title, lines = lines[0], lines[1:]
        if len(lines) > 1 and all(len(split_lines(line)) >= 4 for line in lines):
            out += [(title if i == 0 else None, line) for i, line in enumerate(lines)]
        elif lines:
            out.append((title, "\n".join(lines)))
    return out


def split_lines(poem: str) -> list[str]:
    """A poem's lines: its clauses between punctuation and line breaks, notes in brackets left out
    (an edition's "(明年 一作：年年)")."""
    return CLAUSE.findall(_ASIDE.sub("", poem))


def check(poem: str | list[str], strict: bool = False, modern: bool = False) -> Report:
    """The 格律 of a 五言 or 七言 poem of an even number (at least 4) of lines.

    Each of the four kinds of first line gives the whole chain; the poem is read as the chain it
    breaks least (ties: 首句不入韵 for 五言, 首句入韵 for 七言, as each is usually written). 失对
    and 失粘 are judged by the second character, against the line before; 出韵 against the 平声
    group that most rhyme characters share. Raises ValueError when the text is not of that shape."""
    lines = split_lines(poem) if isinstance(poem, str) else list(poem)
    lengths = {len(t) for t in lines}
    if len(lines) < 4 or len(lines) % 2 or len(lengths) != 1 or lengths - {5, 7}:
        shape = "、".join(str(len(t)) for t in lines)
        raise ValueError(f"not a regulated verse: {len(lines)} lines of {shape} characters "
                         "(need an even number of lines, at least 4, all of 5 or all of 7 characters)")
    order = "ACDB" if len(lines[0]) == 5 else "DBAC"
    return min((_assess(lines, first, strict, modern) for first in order), key=lambda r: len(r.problems))


def _assess(lines: list[str], first: str, strict: bool, modern: bool) -> Report:
    """The poem read as the chain that starts with a first line of kind `first`."""
    length = len(lines[0])
    kinds = poem_kinds(first, len(lines))
    results = [LineResult(t, k, line_pattern(k, length), _line_problems(i, t, k, strict, modern))
               for i, (t, k) in enumerate(zip(lines, kinds))]

    # 对 and 粘 by the second character, as the tradition judges them
    for i in range(1, len(lines)):
        a, b = tones(lines[i - 1][1], modern), tones(lines[i][1], modern)
        if len(a) != 1 or len(b) != 1:
            continue  # a character of both tones (or unknown) breaks neither
        if i % 2 and a == b:
            broken = Problem(i, 1, "失对", f"失对：第二字「{lines[i][1]}」与上句同为{next(iter(a))}")
        elif not i % 2 and a != b:
            broken = Problem(i, 1, "失粘", f"失粘：第二字「{lines[i][1]}」{next(iter(b))}，上句是{next(iter(a))}")
        else:
            continue
        # the same character's 平仄 problem, if any, is this one: said once
        results[i].problems = [p for p in results[i].problems if (p.kind, p.position) != ("平仄", 1)] + [broken]

    # rhyme: the even lines, and the first when it is of a rhymed kind
    feet = [i for i in range(len(lines)) if i % 2 or kinds[i] in "BD"]
    groups = [rhyme_groups(lines[i][-1], modern) for i in feet]
    counts: dict[str, int] = {}
    for g in groups:
        for name in g:
            counts[name] = counts.get(name, 0) + 1
    # the group most feet share; ties: the second line's (the first rhyme every form has)
    group = max(counts, key=lambda name: (counts[name], name in groups[feet.index(1)])) if counts else None
    for i, g in zip(feet, groups):
        c = lines[i][-1]
        if g and group not in g:  # (no 平 reading at all: a 平仄 problem already, or an unknown character)
            have = "、".join(sorted(g)) if g else "仄声"
            results[i].problems.append(Problem(i, length - 1, "出韵", f"出韵：「{c}」是{have}，不在{group}"))
    for k, i in enumerate(feet):  # the same character twice as a rhyme
        earlier = [j for j in feet[:k] if lines[j][-1] == lines[i][-1]]
        if earlier:
            results[i].problems.append(Problem(i, length - 1, "重韵", f"重韵：「{lines[i][-1]}」第{earlier[0] + 1}句已押过"))
    problems = [p for r in results for p in r.problems if p.kind != "未知字"]
    return Report(poem_name(first, length, len(lines)), results, group, problems)


def render(report: Report) -> str:
    """The report as text: the form, each line with its pattern and problems, the rhyme."""
    out = [f"{report.name}，押{report.rhyme_group or '（无平声韵）'}"]
    for i, line in enumerate(report.lines):
        mark = "✓" if not [p for p in line.problems if p.kind != "未知字"] else "✗"
        out.append(f"{i + 1:>2} {line.text}  {line.pattern}  {mark}")
        out += [f"     {p.message}" for p in line.problems]
    out.append("合律" if report.ok else f"不合律：{len(report.problems)} 处")
    return "\n".join(out)
