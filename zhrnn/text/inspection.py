"""`zhrnn corpus inspect`: what a text file holds, before training on it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import script
from .decoding import all_files, is_lyrics, read_pieces
from .pipeline import MarkStats, cut_at_lines
from .script import is_han


@dataclass
class Inspection:
    encodings: dict[str, str]
    chars: int  # characters, line breaks excluded
    distinct: int
    cjk_share: float  # Han characters and CJK punctuation / non-space characters
    cover_99: int  # distinct characters that make up 99% of the text
    cover_999: int
    traditional_share: float  # of the Han characters, those only Traditional writing uses
    simplified_share: float
    paragraphs: int  # non-empty lines
    suggested_min_count: int
    vocab_at_suggestion: int
    layout: str = "line"  # what --paragraphs auto chooses: line, or blank (blocks between blank lines)
    blocks: int = 0  # runs of non-blank lines between blank lines

    def lines(self) -> list[str]:
        enc = ", ".join(sorted(set(self.encodings.values())))
        return [
            f"encoding            {enc}",
            f"characters          {self.chars:,}",
            f"distinct            {self.distinct:,}",
            f"CJK share           {self.cjk_share:.1%}",
            f"99% covered by      {self.cover_99:,} characters",
            f"99.9% covered by    {self.cover_999:,} characters",
            f"Traditional-only    {self.traditional_share:.1%} of Han characters",
            f"Simplified-only     {self.simplified_share:.1%} of Han characters",
            f"lines               {self.paragraphs:,}",
            "paragraphs          " + (f"{self.blocks:,} blocks between blank lines, {self.paragraphs / max(1, self.blocks):.1f} "
                                      "lines each (--paragraphs auto takes them; line: one a line)"
                                      if self.layout == "blank" else
                                      "one a line" + (f" (of its {self.blocks:,} blocks between blank lines, most are "
                                                      "single lines)" if self.blocks > 1 else "")),
            f"suggested           --min-count {self.suggested_min_count} (vocabulary {self.vocab_at_suggestion:,})",
        ]


def coverage(ranked: np.ndarray, share: float) -> int:
    """How many of the most frequent characters (ranked: counts, most frequent first) it takes to
    make up `share` of the text."""
    cumulative = np.cumsum(ranked)
    return int(np.searchsorted(cumulative, share * cumulative[-1]) + 1)


def _script_shares(counts: Counter, sample: int = 20_000) -> tuple[float, float]:
    """Shares of Han characters (by occurrence) that OpenCC changes t2s (Traditional-only) and s2t
    (Simplified-only). Converted one character at a time, over the most frequent `sample`."""
    han = [(ch, n) for ch, n in counts.most_common(sample) if is_han(ch)]
    total = sum(n for _, n in han)
    if not total:
        return 0.0, 0.0
    # one character per line: OpenCC converts phrases, and none may form across the line breaks
    chars = "\n".join(ch for ch, _ in han)
    t2s, s2t = script.convert(chars, "t2s").split("\n"), script.convert(chars, "s2t").split("\n")
    trad = sum(n for (ch, n), s in zip(han, t2s) if s != ch)
    simp = sum(n for (ch, n), t in zip(han, s2t) if t != ch)
    return trad / total, simp / total


def inspect(paths, encoding: str | None = None) -> Inspection:
    """Read as training reads (the pipeline's decoding stage), a piece at a time: any size fits."""
    encodings: dict[str, str] = {}
    counts, marks = Counter(), MarkStats("^")
    for piece in cut_at_lines(read_pieces(paths, encoding, encodings)):
        counts.update(piece)
        marks.add(piece)
    for ch in "\n\r":
        counts.pop(ch, None)
    chars = sum(counts.values())
    values = np.array(list(counts.values()), dtype=np.int64) if counts else np.zeros(1, dtype=np.int64)
    ranked = np.sort(values)[::-1]  # most frequent first
    visible = chars - sum(n for ch, n in counts.items() if ch.isspace())
    cjk = sum(n for ch, n in counts.items() if is_han(ch) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef")
    trad, simp = _script_shares(counts)
    # Keep the characters that make up 99.9% of the text, but never cut one seen 5 times or more:
    # rarer ones cannot be learned and only widen the output layer.
    cover_999 = coverage(ranked, 0.999)
    min_count = min(5, max(1, int(ranked[min(cover_999, len(ranked)) - 1])))
    return Inspection(
        encodings=encodings, chars=chars, distinct=len(counts), cjk_share=cjk / max(1, visible),
        cover_99=coverage(ranked, 0.99), cover_999=cover_999, traditional_share=trad, simplified_share=simp,
        paragraphs=marks.lines, suggested_min_count=min_count,
        vocab_at_suggestion=int((values >= min_count).sum()) + 2,  # + <unk> and the marker
        layout=marks.layout(songs=any(map(is_lyrics, all_files(paths)))), blocks=marks.blocks,
    )
