"""Traditional/Simplified Chinese: OpenCC conversion, detecting which script a text is in, and
which characters are Chinese (Han) at all."""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

# The configs opencc-python-reimplemented ships (t2s, s2t, Taiwan / Hong Kong variants, ...).
OPENCC_CONFIGS = ("t2s", "s2t", "s2tw", "tw2s", "s2hk", "hk2s", "s2twp", "tw2sp", "t2tw", "t2hk")
SIMPLIFIED, TRADITIONAL, UNKNOWN = "simplified", "traditional", "unknown"
SAMPLE_CHARS = 200_000  # detect_script reads this much of a text: a sample decides as well as the whole


@lru_cache(maxsize=None)
def _converter(config: str):
    if config not in OPENCC_CONFIGS:
        raise ConfigError(f"unknown OpenCC conversion {config!r}; choose one of {', '.join(OPENCC_CONFIGS)}")
    from opencc import OpenCC  # imported lazily: building its dictionaries costs time

    return OpenCC(config)


def convert(text: str, config: str | None) -> str:
    """Convert with an OpenCC config such as 't2s' (Traditional to Simplified); None is a no-op."""
    return text if not config else _converter(config).convert(text)


def detect_script(text: str, sample_chars: int = SAMPLE_CHARS) -> str:
    """'traditional', 'simplified' or 'unknown', by how many characters each OpenCC direction changes.

    A Simplified text is changed by s2t and untouched by t2s, and the other way round; text with
    no Chinese (or only characters both scripts share) is 'unknown'.
    """
    sample = text[:sample_chars]
    t2s = sum(a != b for a, b in zip(sample, convert(sample, "t2s")))
    s2t = sum(a != b for a, b in zip(sample, convert(sample, "s2t")))
    if t2s == s2t == 0:
        return UNKNOWN
    if t2s > 2 * s2t:
        return TRADITIONAL
    if s2t > 2 * t2s:
        return SIMPLIFIED
    return UNKNOWN


def variants(text: str) -> list[str]:
    """The text as typed, then in Traditional and in Simplified: how a seed finds the model's script."""
    out = [text]
    for config in ("s2t", "t2s"):
        converted = convert(text, config)
        if converted not in out:
            out.append(converted)
    return out


@lru_cache(maxsize=1)
def _character_tables() -> dict[str, frozenset[str]]:
    """Each character -> every form OpenCC's character tables give it in the other script (both
    directions: 台 -> 臺 檯 颱 台, 乾 -> 干 乾); empty when this OpenCC ships no tables."""
    import opencc  # opencc-python-reimplemented keeps its tables as text files beside the code

    out: dict[str, set[str]] = {}
    for name in ("STCharacters.txt", "TSCharacters.txt"):
        path = Path(opencc.__file__).with_name("dictionary") / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            source, _, targets = line.partition("\t")
            out.setdefault(source, set()).update(targets.split())
    return {ch: frozenset(forms) for ch, forms in out.items()}


def other_forms(ch: str) -> frozenset[str]:
    """The forms a character may take in the other script under conversion, by phrase or alone
    (干 -> 幹 in 干部, 乾 in 干净), itself left out."""
    forms = set(_character_tables().get(ch, ())) | {convert(ch, "s2t"), convert(ch, "t2s")}
    return frozenset(forms - {ch})


def is_han(token: str) -> bool:
    """One Chinese character (CJK ideograph), not punctuation, letters or symbols."""
    if len(token) != 1:
        return False
    o = ord(token)
    return unicodedata.category(token) == "Lo" and (
        0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x323AF
    )
