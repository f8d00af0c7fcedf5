"""How a model's text is laid out: decided from its training text when a run is made, saved
with the run, and followed by everything that writes or shows that model's text (sampling, the
no-repeat rule, the heat map, the interactive writer, the page).

    marker   the paragraph marker ('^'), or None for a text trained with --paragraphs off
    blocks   paragraphs are blocks of lines (songs): a blank line shows between them
    chorus   paragraphs repeat whole lines (choruses): repeats are banned within a line only
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .render import Renderer

# A text whose paragraphs repeat this share of their lines or more has choruses (songs)
CHORUS_SHARE = 0.05


@dataclass(frozen=True)
class Layout:
    marker: str | None = "^"
    blocks: bool = False
    chorus: bool = False

    @classmethod
    def of_text(cls, marker: str | None, paragraphs: str, repeated_lines: float) -> "Layout":
        """A training text's layout: its marker, the paragraph mode it was read with (blank: blocks
        between blank lines) and the share of its lines repeated within a paragraph."""
        return cls(marker, paragraphs == "blank", repeated_lines >= CHORUS_SHARE)

    @classmethod
    def from_checkpoint(cls, state: dict) -> "Layout":
        """A checkpoint's layout. Before it was saved on its own (2026-12) the flags rode on the
        tokenizer, and before that a run read with --paragraphs blank had blocks."""
        if state.get("layout") is not None:
            return cls(**state["layout"])
        tokenizer = state.get("tokenizer") or {}
        blocks = tokenizer.get("blocks")
        if blocks is None:
            blocks = (state.get("corpus_config") or {}).get("paragraphs") == "blank"
        return cls(tokenizer.get("marker", "^"), bool(blocks), bool(tokenizer.get("chorus")))

    def to_dict(self) -> dict:
        return asdict(self)

    def renderer(self, sentence_lines: bool = False) -> Renderer:
        """A renderer of this text (sentence_lines: a poem form's line after each 。！？)."""
        return Renderer(self.marker, sentence_lines, self.blocks)

    def render(self, text: str, sentence_lines: bool = False) -> str:
        """Text for people, whole."""
        return self.renderer(sentence_lines).feed(text)
