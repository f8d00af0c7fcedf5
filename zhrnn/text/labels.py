"""Context labels (李白, 水调歌头): a paragraph may start with "label<TAB>".

Each label becomes one character of Supplementary Private Use Area-A, put right after the
paragraph marker: a single token at either level that no real text uses and rendering hides.
The model reads it at the start of each paragraph (conditioning by prefix, as CTRL's control
codes) and sampling with --label places it there.
"""
from __future__ import annotations

import logging
import re
from collections import Counter

from ..errors import ConfigError

log = logging.getLogger(__name__)

LABEL_BASE, LABEL_END = 0xF0000, 0xFFFFD


def is_label(ch: str) -> bool:
    return LABEL_BASE <= ord(ch[0]) <= LABEL_END if ch else False


def _label_pattern(marker: str) -> re.Pattern:
    return re.compile(f"(?m)^{re.escape(marker)}([^\t\n]*)\t")


def count_labels(marked: str, marker: str) -> Counter:
    """Paragraphs per label in marked text (or in a piece of it cut after a '\\n')."""
    return Counter(m.group(1).strip() for m in _label_pattern(marker).finditer(marked))


def assign_labels(counts: Counter, min_count: int, known: dict[str, str] | None = None) -> dict[str, str]:
    """Labels already `known` (from a checkpoint being resumed or fine-tuned) keep their tokens;
    new ones seen min_count times get the next free."""
    labels = dict(known or {})
    code = max((ord(t) for t in labels.values()), default=LABEL_BASE - 1) + 1
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if label and label not in labels and n >= min_count:
            if code > LABEL_END:
                raise ConfigError("too many labels (at most 65,534)")
            labels[label], code = chr(code), code + 1
    if not counts:
        log.warning("--labels: no paragraph starts with 'label<TAB>'; training without labels")
    return labels


def substitute_labels(marked: str, marker: str, labels: dict[str, str]) -> str:
    """'^李白\t床前…' -> '^' + the label's token + '床前…' (an unassigned label just goes)."""
    return _label_pattern(marker).sub(lambda m: marker + labels.get(m.group(1).strip(), ""), marked)
