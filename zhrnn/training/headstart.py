"""A head start chosen for the user (`--init-from auto`): the shipped base that knows a text
best, found by scoring a sample of it with each, and taken when it knows more than the text's
own character frequencies (what a run from scratch learns first).

The sample is the first SAMPLE_CHARS characters of the text, prepared as training prepares it
(markers, conversion); each base scores it with its own network (bits per character, an unknown
character as the base's <unk>). `zhrnn corpus inspect` reports the same choice.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from .. import checkpoint, shipped
from ..generation.score import score_prepared
from ..model import network
from ..text.decoding import read_pieces
from ..text.pipeline import CorpusConfig, prepare
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)

SAMPLE_CHARS = 20_000


@dataclass
class HeadStart:
    """Each shipped base's bits per character on the sample, the sample's own unigram entropy,
    and the base chosen (None: training from scratch)."""
    scores: dict[str, float] = field(default_factory=dict)
    unigram: float = float("nan")
    chosen: str | None = None

    def describe(self) -> str:
        others = ", ".join(f"{name} {bpc:.2f}" for name, bpc in sorted(self.scores.items(), key=lambda kv: kv[1]))
        if self.chosen is None:
            return (f"head start: none of the shipped bases ({others or 'none installed'} bits per character on a "
                    f"sample of the text) knows it better than its own character frequencies ({self.unigram:.2f}): "
                    "training from scratch")
        return (f"head start: {self.chosen} ({self.scores[self.chosen]:.2f} bits per character on a sample of the "
                f"text, where its own character frequencies give {self.unigram:.2f}; the bases: {others}); "
                "--init-from none trains from scratch")


def sample_text(paths, corpus_cfg: CorpusConfig, chars: int = SAMPLE_CHARS) -> str:
    """The first `chars` characters of the files, prepared as training prepares them."""
    pieces, taken = [], 0
    for piece in read_pieces(paths, corpus_cfg.encoding, {}, labels=corpus_cfg.labels):
        pieces.append(piece[: chars - taken])
        taken += len(pieces[-1])
        if taken >= chars:
            break
    return prepare("".join(pieces), corpus_cfg).text


def unigram_bits(text: str) -> float:
    """Bits per character of the text under its own character frequencies."""
    counts = Counter(text)
    total = sum(counts.values())
    return -sum(c * math.log2(c / total) for c in counts.values()) / max(total, 1)


def choose_base(paths, corpus_cfg: CorpusConfig) -> HeadStart:
    """Score a sample of the text with every shipped base; choose the best one that beats the
    text's own unigram entropy."""
    sample = sample_text(paths, corpus_cfg)
    result = HeadStart(unigram=unigram_bits(sample))  # markers and line breaks counted, as the bases count them
    for name in shipped.names():
        state = checkpoint.load(shipped.find(name))
        with torch.no_grad():
            result.scores[name] = score_prepared(network(state), Tokenizer.from_dict(state["tokenizer"]), sample).bpc
    best = min(result.scores, key=result.scores.get, default=None)
    if best is not None and result.scores[best] < result.unigram:
        result.chosen = best
    return result
