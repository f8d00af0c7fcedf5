"""Poem forms as templates, enforced while sampling: at each position the distribution is
limited to what the form allows (any Chinese character, or one punctuation mark), so every
output has the exact line lengths, with no sampling and rejecting.

A template is a string in which □ stands for one Chinese character and anything else for
itself: 五言绝句 is "□□□□□，□□□□□。□□□□□，□□□□□。". --form takes a name of FORMS, a 词牌 of
cipai.json (205 patterns learned from 全宋词 by scripts/learn_cipai.py), or a template.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import ConfigError
from ..text.script import is_han
from ..text.tokenizer import Tokenizer

SLOT = "□"
FORMS = {
    "五言绝句": "□□□□□，□□□□□。" * 2,
    "七言绝句": "□□□□□□□，□□□□□□□。" * 2,
    "五言律诗": "□□□□□，□□□□□。" * 4,
    "七言律诗": "□□□□□□□，□□□□□□□。" * 4,
}


@lru_cache(maxsize=1)
def cipai() -> dict[str, str]:
    """词牌 -> its most common line pattern in 全宋词."""
    return json.loads(Path(__file__).with_name("cipai.json").read_text(encoding="utf-8"))


def template_of(form: str) -> str:
    template = FORMS.get(form) or cipai().get(form) or form
    if SLOT not in template:
        raise ConfigError(f"unknown --form {form!r}: use {', '.join(FORMS)}, a 词牌 such as 水调歌头, "
                          "or a template such as □□□□□，□□□□□。")
    return template


class Form:
    """A template with the acrostic and start text filled in: one entry per position, either
    None (any Chinese character) or the token id that must stand there."""

    def __init__(self, tokenizer: Tokenizer, form: str, acrostic: str = "", start: str = "", rhyme: bool = False):
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
        han = _han_mask(tuple(tokenizer.vocab))  # (V,)
        if not han.any():
            raise ConfigError("the model knows no Chinese characters to fill the form with")
        self.han = han
        # With rhyme: the last character before each 。 (the 韵脚 of 诗 and 词 alike) shares the
        # rhyme group of the first one; characters without a group cannot stand there.
        self.rhyme_positions: list[int] = []
        if rhyme:
            self.rhyme_positions = [i - 1 for i, c in enumerate(chars)
                                    if c == "。" and i > 0 and (chars[i - 1] is None or is_han(chars[i - 1]))]
            self.groups = _rhyme_groups(tuple(tokenizer.vocab))  # (V,)

    def rhyme_allowed(self, position: int, poem: list[int]) -> torch.Tensor | None:
        """(V,) bool for a rhyme position given the poem's ids so far; None elsewhere."""
        if position not in self.rhyme_positions:
            return None
        first = self.rhyme_positions[0]
        if position == first:
            return self.groups >= 0  # any character that has a rhyme group
        return self.groups == self.groups[poem[first]]

    def __len__(self) -> int:
        return len(self.slots)

    def allowed(self, position: int) -> torch.Tensor:
        """(V,) bool: the tokens that may stand at this position of the poem."""
        slot = self.slots[position]
        if slot is None:
            return self.han
        only = torch.zeros_like(self.han)
        only[slot] = True
        return only


@lru_cache(maxsize=8)  # masks are per vocabulary: computed once, not at every generate call
def _han_mask(vocab: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor([is_han(t) for t in vocab])


@lru_cache(maxsize=8)
def _rhyme_groups(vocab: tuple[str, ...]) -> torch.Tensor:
    """(V,) the rhyme group of each token as a number, -1 for tokens that cannot rhyme."""
    from .rhyme import groups_of

    names = groups_of(list(vocab))
    index = {g: k for k, g in enumerate(sorted({g for g in names if g}))}
    return torch.tensor([index[g] if g and is_han(t) else -1 for t, g in zip(vocab, names)])
