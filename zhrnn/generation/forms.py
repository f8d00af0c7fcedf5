"""Poem forms (templates: zhrnn/poetry/forms.py) enforced while sampling: at each position the
distribution is limited to what the form allows (any Chinese character, or one punctuation mark),
so every output has the exact line lengths, with no sampling and rejecting. --rhyme and --tones
turn the rules of zhrnn/poetry (rhyme.py, tones.py, meter.py) into masks over the vocabulary.
"""
from __future__ import annotations

import itertools
import logging
from functools import lru_cache

import torch

from ..errors import ConfigError
from ..poetry.forms import SLOT, template_of
from ..text.script import is_han
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class Form:
    """A template with the acrostic and start text filled in: one entry per position, either
    None (any Chinese character) or the token id that must stand there."""

    def __init__(self, tokenizer: Tokenizer, form: str, acrostic: str = "", start: str = "", rhyme: "Rhyme | None" = None,
                 tones: str | None = None, tones_strict: bool = False):
        # tones: "平水韵" or "新韵"; "auto" (the default for 近体 forms): 平水韵 where it can be kept
        if tokenizer.level != "char":
            raise ConfigError("--form and --acrostic need a char-level model (trained without --level word)")
        template = template_of(form)
        if "、" in template and "、" not in tokenizer.index:
            template = template.replace("、", "，")  # a model of 诗 may never have seen the 词's pause mark
        chars: list[str | None] = [None if c == SLOT else c for c in template]
        line_starts = [i for i, c in enumerate(chars) if c is None and (i == 0 or chars[i - 1] is not None)]
        if acrostic:
            if len(acrostic) > len(line_starts):
                raise ConfigError(f"--acrostic has {len(acrostic)} characters but the form has {len(line_starts)} lines")
            for i, ch in zip(line_starts, acrostic):
                chars[i] = ch
        for i, ch in enumerate(start):
            if i >= len(chars):
                raise ConfigError(f"--start is longer than the form ({len(chars)} characters)")
            if chars[i] is None and not is_han(ch) or chars[i] is not None and chars[i] != ch:
                raise ConfigError(f"--start does not fit the form at character {i + 1} ({ch!r})")
            chars[i] = ch
        missing = sorted({c for c in chars if c is not None and c not in tokenizer.index})
        if missing:
            raise ConfigError(f"the model has never seen {''.join(missing)}, which the form needs")
        self.template = template
        self.slots = [None if c is None else tokenizer.index[c] for c in chars]
        han = han_mask(tuple(tokenizer.vocab))  # (V,)
        if not han.any():
            raise ConfigError("the model knows no Chinese characters to fill the form with")
        self.han = han
        # With rhyme: the last character before each 。 (the 韵脚 of 诗 and 词 alike) shares a rhyme
        # group with every one before it; characters without a group cannot stand there.
        self.rhyme, self.rhyme_positions = rhyme, []
        if rhyme is not None:
            self.rhyme_positions = [i - 1 for i, c in enumerate(chars)
                                    if c == "。" and i > 0 and (chars[i - 1] is None or is_han(chars[i - 1]))]
        self.meter = None
        if tones:
            try:
                self.meter = _Meter(template, chars, tokenizer, tones == "新韵", tones_strict)
            except ConfigError as e:
                if tones != "auto":
                    raise
                log.info("格律 off for this poem (%s)", e)  # asked for by default only: the form alone, as before

    def rhyme_allowed(self, position: int, poem: list[int]) -> torch.Tensor | None:
        """(V,) bool for a rhyme position given the poem's ids so far; None elsewhere."""
        if position not in self.rhyme_positions:
            return None
        groups = self.rhyme.given  # narrowed by each rhyme before it, by its usual reading (as it was drawn)
        for p in self.rhyme_positions[: self.rhyme_positions.index(position)]:
            groups = self.rhyme.narrow(groups, self.rhyme.table[poem[p]])
        return self.rhyme.allowed(groups)

    def __len__(self) -> int:
        return len(self.slots)

    def tones_allowed(self, position: int, poem: list[int]) -> torch.Tensor | None:
        """(V,) bool under --tones for a position the model fills, given the poem's ids so far;
        None where the form fixes the character (or there are no tones)."""
        if self.meter is None or self.slots[position] is not None:
            return None
        return self.meter.allowed(position, poem)

    def allowed(self, position: int) -> torch.Tensor:
        """(V,) bool: the tokens that may stand at this position of the poem."""
        slot = self.slots[position]
        if slot is None:
            return self.han
        only = torch.zeros_like(self.han)
        only[slot] = True
        return only


class _Meter:
    """--tones: a regulated-verse form's 平仄 and rhyme, as masks over the vocabulary (meter.Scansion)."""

    def __init__(self, template: str, chars: list[str | None], tokenizer: Tokenizer, modern: bool, strict: bool):
        from ..poetry import meter
        from ..poetry.tones import tones

        # the characters of the poem, in order: where each stands in the template (a slot, or a
        # character the template itself fixes)
        self.han = [i for i, c in enumerate(template) if c == SLOT or is_han(c)]
        lines = [len(m) for m in meter.split_lines(template.replace(SLOT, "字"))]
        if len(set(lines)) != 1 or lines[0] not in (5, 7) or len(lines) < 4 or len(lines) % 2:
            raise ConfigError("--tones needs a form of 近体诗: 五言 or 七言 绝句, 律诗 (or 排律, an even number "
                              "of lines); 词牌 tones are not in open data")
        self.tone_ok, self.group_ok, names = _tone_tables(tuple(tokenizer.vocab), modern)  # (V, 2), (V, G)
        self.group_index = {g: k for k, g in enumerate(names)}
        # a first rhyme may open only a group the vocabulary can go on in (a poem has up to lines/2 + 1 feet)
        enough = self.group_ok.sum(0) >= 2 * (len(lines) // 2 + 1)
        fixed = {k: chars[i] for k, i in enumerate(self.han) if chars[i] is not None}
        unknown = "".join(c for c in fixed.values() if not tones(c, modern, safe=True))
        if unknown:
            raise ConfigError(f"--tones: the rhyme table has no tone for {unknown} (in --start, --acrostic or the form)")
        groups = frozenset(g for g, k in self.group_index.items() if enough[k])
        if not groups:
            raise ConfigError("--tones: the model knows too few characters of any 平声 rhyme group")
        self.scansion = meter.Scansion(lines[0], len(lines), strict, modern, fixed, groups, safe=True)
        # the start text is fixed too: some chain must still be open after it
        start = "".join(itertools.takewhile(bool, (fixed.get(k, "") for k in range(len(self.han)))))
        if not self.scansion.chains or len(start) < len(self.han) and not self.scansion.options(start):
            raise ConfigError("--start or --acrostic breaks every 平仄 pattern of the form"
                              + ("; try without --tones-strict" if strict else ""))
        self.vocab, self.index = tokenizer.vocab, tokenizer.index

    def allowed(self, position: int, poem: list[int]) -> torch.Tensor | None:
        """(V,) bool for the character at template position `position`; None: no chain is open."""
        k = self.han.index(position)
        chars = "".join(self.vocab[poem[i]] for i in self.han[:k])
        options = self.scansion.options(chars)
        if not options:
            return None
        out = torch.zeros(self.tone_ok.size(0), dtype=torch.bool)
        for option in options:
            ok = torch.zeros_like(out)
            for t in option.tones:
                ok |= self.tone_ok[:, 0 if t == "平" else 1]
            if option.foot:  # the scansion was given the groups, so a foot's are always known
                ok &= self.group_ok[:, [self.group_index[g] for g in option.groups if g in self.group_index]].any(1)
                ok[[self.index[c] for c in option.rhymed if c in self.index]] = False  # no 重韵
            out |= ok
        return out


@lru_cache(maxsize=4)
def _tone_tables(vocab: tuple[str, ...], modern: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(V, 2) bool: each token may be 平, may be 仄 (single Chinese characters the table knows);
    (V, G) bool: each token may rhyme in each 平声 group; the G group names."""
    from ..poetry.tones import PING, ZE, rhyme_groups, tones

    # by the readings both scripts share: a poem stays regulated under --convert
    heard = [tones(t, modern, safe=True) if len(t) == 1 and is_han(t) else frozenset() for t in vocab]
    rhymes = [rhyme_groups(t, modern, safe=True) if h else frozenset() for t, h in zip(vocab, heard)]
    names = sorted(set().union(*rhymes))
    index = {g: k for k, g in enumerate(names)}
    tone_ok = torch.tensor([[PING in h, ZE in h] for h in heard], dtype=torch.bool)
    group_ok = torch.zeros(len(vocab), len(names), dtype=torch.bool)
    for v, groups in enumerate(rhymes):
        for g in groups:
            group_ok[v, index[g]] = True
    return tone_ok, group_ok, names


@lru_cache(maxsize=8)  # masks are per vocabulary: computed once, not at every generate call
def han_mask(vocab: tuple[str, ...]) -> torch.Tensor:
    """(V,) bool: the tokens that are one Chinese character."""
    return torch.tensor([is_han(t) for t in vocab])


class Rhyme:
    """--rhyme as masks over the vocabulary: the group each token rhymes in by its usual reading,
    under one system (十三辙, or 中华新韵 where a group of it is named), and the groups the request
    allows. A line's end is judged by its last character read among the ones before it (groups_in:
    银行 rhymes hang, in 江阳). Poem forms (Form) and the lines of songs and free text
    (processors.LineRules) read it alike."""

    def __init__(self, tokenizer: Tokenizer, asked: str):
        from ..poetry.rhyme import GROUPS, SHISANZHE, groups_in, system_of

        self.system = system_of(asked) if asked in GROUPS else SHISANZHE
        self.table, self.names = _rhyme_table(tuple(tokenizer.vocab), self.system)  # (V, G) bool, G names
        self._allowed: dict[tuple, torch.Tensor] = {}
        self._endings: dict[str, torch.Tensor] = {}
        if asked == "auto":  # the first rhyme decides
            given = set(self.names)
        elif asked in GROUPS:
            given = {asked}
        else:  # a character of the rhyme
            given = set(groups_in(asked, self.system)) - {None}
            if not given:
                raise ConfigError(f"--rhyme {asked}: the character has no rhyme group (give a group name such as 江阳)")
        self.given = torch.tensor([n in given for n in self.names])  # (G,)
        if not self.allowed(self.given).any():
            raise ConfigError(f"--rhyme {asked}: the model knows no character of that rhyme")

    def narrow(self, groups: torch.Tensor, heard: torch.Tensor) -> torch.Tensor:
        """(G,) the groups still open once a rhyme heard in groups `heard` (G,) is written: those
        it shares with them (one let through unrhymed, where the rules had to, leaves them as they were)."""
        kept = groups & heard
        return kept if kept.any() else groups

    def ending(self, tail: str) -> torch.Tensor:
        """(G,) bool: the group of the last character of tail (a line's last Chinese characters),
        read with the ones before it; none where it has none."""
        if tail not in self._endings:
            from ..poetry.rhyme import groups_in

            group = groups_in(tail, self.system)[-1] if tail else None
            self._endings[tail] = torch.tensor([n == group for n in self.names])
        return self._endings[tail]

    def allowed(self, groups: torch.Tensor) -> torch.Tensor:
        """(V,) bool: the tokens that rhyme in any of the groups (G,) by their usual reading."""
        key = tuple(groups.tolist())
        if key not in self._allowed:  # a song asks the same few at every step
            self._allowed[key] = (self.table & groups).any(1)
        return self._allowed[key]


@lru_cache(maxsize=8)
def _rhyme_table(vocab: tuple[str, ...], system: str) -> tuple[torch.Tensor, tuple[str, ...]]:
    """(V, G) bool: the group each token (one Chinese character) rhymes in by its usual reading,
    and the G group names."""
    from ..poetry.rhyme import groups_in

    groups = [groups_in(t, system)[0] if is_han(t) else None for t in vocab]
    names = tuple(sorted({g for g in groups if g}))
    table = torch.zeros(len(vocab), len(names), dtype=torch.bool)
    for v, g in enumerate(groups):
        if g:
            table[v, names.index(g)] = True
    return table, names
