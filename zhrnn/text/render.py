"""The one rule that turns model text into text for people, whole or a token at a time.

    a marker at the start of the text or of a line  ->  nothing (it only says "a paragraph begins")
    any other marker                                ->  a line break
    with blocks (paragraphs of several lines, songs), a marker after the text's start  ->  one more
                                                        line break: a blank line between paragraphs
    a context-label token                           ->  nothing (it is given, not written)
    with sentence_lines (poem forms)                ->  a line break after each 。！？

Sampling (streamed and whole), scoring's heat map, the interactive writer and the API all
render through Renderer, so a change to how text is shown is made here, once.
"""
from __future__ import annotations

from .labels import is_label

SENTENCE_ENDS = "。！？"


class Renderer:
    """Renders text as it arrives: feed() each piece (a token, or any run of text) and get what
    it adds for a reader. Keeps the one character of context the rule needs."""

    def __init__(self, marker: str | None, sentence_lines: bool = False, blocks: bool = False):
        self.marker, self.sentence_lines, self.blocks = marker, sentence_lines, blocks
        self.last: str | None = None  # the last character fed (labels aside); None at the start

    def copy(self) -> "Renderer":
        twin = Renderer(self.marker, self.sentence_lines, self.blocks)
        twin.last = self.last
        return twin

    def marker_breaks_line(self) -> bool:
        """Whether a marker fed now would show as a line break (not at the start of a line)."""
        return self.last not in (None, "\n")

    def feed(self, piece: str) -> str:
        out = []
        for ch in piece:
            if is_label(ch):
                continue
            if ch == self.marker:
                if self.marker_breaks_line():
                    out.append("\n")
                if self.blocks and self.last is not None:
                    out.append("\n")
            else:
                out.append(ch)
                if self.sentence_lines and ch in SENTENCE_ENDS:
                    out.append("\n")
            self.last = ch
        return "".join(out)


def render(text: str, marker: str | None, sentence_lines: bool = False, blocks: bool = False) -> str:
    """Text for people, whole (see the rule above)."""
    return Renderer(marker, sentence_lines, blocks).feed(text)
