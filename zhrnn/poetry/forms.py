"""Poem forms as templates: a string in which □ stands for one Chinese character and anything else
for itself (五言绝句 is "□□□□□，□□□□□。□□□□□，□□□□□。"). --form takes a name of FORMS, a 词牌 of
cipai.json (205 patterns learned from 全宋词 by scripts/learn_cipai.py), or a template. Sampling
holds the output to one in zhrnn/generation/forms.py."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

SLOT = "□"
FORMS = {
    "五言绝句": "□□□□□，□□□□□。" * 2,
    "七言绝句": "□□□□□□□，□□□□□□□。" * 2,
    "五言律诗": "□□□□□，□□□□□。" * 4,
    "七言律诗": "□□□□□□□，□□□□□□□。" * 4,
}
CIPAI = Path(__file__).with_name("cipai.json")


@lru_cache(maxsize=1)
def cipai() -> dict[str, str]:
    """词牌 -> its most common line pattern in 全宋词."""
    return json.loads(CIPAI.read_text(encoding="utf-8"))


def template_of(form: str) -> str:
    template = FORMS.get(form) or cipai().get(form) or form
    if SLOT not in template:
        raise ConfigError(f"unknown --form {form!r}: use {', '.join(FORMS)}, a 词牌 such as 水调歌头, "
                          "or a template such as □□□□□，□□□□□。")
    return template
