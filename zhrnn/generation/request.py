"""One generation request: its start, its prime, its processors and the streams it writes.

A Stream keeps the tokens it has generated and its text as people will see it (rendered as
tokens arrive, by the one rendering rule), and the point where a stop rule ended it: the output
is a slice, and streaming sends only what is new. Whatever a constraint remembers of a row (the
n-grams it may not repeat, the lines it has sung) is the processor's own state (processors.py):
the request tells every processor each token a row takes and each reordering of the rows.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch

from ..errors import ConfigError, VocabularyError
from ..text import script
from ..text.layout import Layout
from ..text.render import Renderer
from ..text.tokenizer import Tokenizer
from . import processors as P
from .config import SampleConfig
from .forms import Form, Rhyme


def resolve_start(start: str, tokenizer: Tokenizer, option: str = "--start") -> str:
    """Text as the model can read it: typed in Simplified, it finds a Traditional model's
    characters (选 -> 選) and back. Raises VocabularyError when no script variant is known."""
    if not tokenizer.unknown_chars(start):
        return start
    for variant in script.variants(start)[1:]:
        if not tokenizer.unknown_chars(variant):
            return variant
    missing = "".join(tokenizer.unknown_chars(start)[:10])
    raise VocabularyError(f"the model does not know the {option} character(s) {missing}; try another {option}")


def resolve_label(label: str, tokenizer: Tokenizer) -> int:
    """The token id of a context label, typed in either script."""
    if not tokenizer.labels:
        raise ConfigError("--label: this model was trained without labels (train with --labels)")
    for variant in script.variants(label):
        if variant in tokenizer.labels:
            return tokenizer.index[tokenizer.labels[variant]]
    known = sorted(tokenizer.labels, key=lambda name: tokenizer.index[tokenizer.labels[name]])
    raise VocabularyError(f"the model has no label {label!r}; it knows {len(known)}: {', '.join(known[:12])}"
                          f"{' ...' if len(known) > 12 else ''}")




@dataclass
class Stream:
    """One output being generated: its tokens and its text."""
    renderer: Renderer
    previous: int  # the last token (the prime's last at first): what may follow depends on it
    tokens: list[int] = field(default_factory=list)  # generated, after the prime
    shown: str = ""  # the text for people so far
    cut: int | None = None  # where a stop rule ended the text
    markers: int = 0  # paragraph markers generated
    done: bool = False

    def copy(self) -> "Stream":
        """An independent twin (a new mutable field needs its line here)."""
        return replace(self, renderer=self.renderer.copy(), tokens=list(self.tokens))


class Request:
    """The start and options of one request turned into a prime, processors and streams
    (rows: one per output, or per draft with --candidates, or per beam)."""

    def __init__(self, tokenizer: Tokenizer, start: str, cfg: SampleConfig, rows: int, device,
                 layout: Layout | None = None):
        """layout: the model's (saved with its run); None: plain paragraphs, no choruses."""
        layout = layout or Layout(tokenizer.marker)
        self.tokenizer, self.cfg, self.rows = tokenizer, cfg, rows
        self.device = torch.device(device)
        self.label_ids = frozenset(tokenizer.label_ids)
        self.start = resolve_start(start, tokenizer)
        self.form = None
        self.rhyme = Rhyme(tokenizer, cfg.rhyme) if cfg.rhyme else None  # (pypinyin reads either script)
        if cfg.form:
            acrostic = resolve_start(cfg.acrostic, tokenizer, "--acrostic") if cfg.acrostic else ""
            self.form = Form(tokenizer, cfg.form, acrostic, self.start, rhyme=self.rhyme, tones=cfg.tones,
                             tones_strict=cfg.tones_strict)
            # the form fixes the start text's characters, and the whole poem's length
            self.start = "".join(tokenizer.vocab[s] for s in self.form.slots[: len(self.start)])
        elif cfg.num_paragraphs is not None and tokenizer.marker_id is None:
            raise ConfigError(f"{'--structure' if cfg.structure else '--num-paragraphs'} needs a model trained with "
                              "paragraph markers (this one used --paragraphs off)")
        if cfg.structure:
            layout = replace(layout, blocks=True)  # its sections are paragraphs, a blank line between them
        self.start_ids = tokenizer.encode(self.start).tolist()
        self.label_id = resolve_label(cfg.label, tokenizer) if cfg.label else None
        marker = [tokenizer.marker_id] if tokenizer.marker_id is not None else []
        self.prime = marker + ([self.label_id] if self.label_id is not None else []) + self.start_ids
        shown_prime = bool(self.prime)
        if not self.prime:  # no marker and no start: begin from the most common token (not shown)
            self.prime = [tokenizer.unk_id + 1]
        self.newline_id = tokenizer.index.get("\n")
        # no-repeat within a line only: a song's chorus comes back (the text's own habit decides by default)
        self.line_scope = (cfg.no_repeat_scope or ("line" if layout.chorus else "text")) == "line"
        self.max_tokens = len(self.form) if self.form is not None else 2 * cfg.length + 16
        self.processors, self.warpers = P.constraints(self), P.warpers(cfg)
        finished = len(self.start) >= (len(self.form) if self.form is not None else cfg.length)
        self.streams = [Stream(layout.renderer(sentence_lines=self.form is not None), self.prime[-1], done=finished)
                        for _ in range(rows)]
        for row, stream in enumerate(self.streams):
            for token in self.prime:  # the start text counts too: no-repeat means no repeat of it either
                piece = self._see(row, token)
                if shown_prime:
                    stream.shown += piece

    @property
    def done(self) -> list[bool]:
        return [s.done for s in self.streams]

    def process(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """logits (n, V) of the streams after `step` generated tokens -> constrained, penalised
        logits (before temperature)."""
        logits = logits.float().clone()
        for processor in self.processors:
            logits = processor(logits, self.streams, step)
        return logits

    def warp(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """Processed logits -> the logits to sample from (temperature, top-k, top-p)."""
        for warper in self.warpers:
            logits = warper(logits, self.streams, step)
        return logits

    def reorder(self, parents: list[int]) -> None:
        """Row i becomes a copy of row parents[i] (beam search, chosen lines): its stream and the
        state every processor keeps of it. The rows may grow or shrink in number."""
        self.streams = [self.streams[p].copy() for p in parents]
        for processor in self.processors:
            processor.reorder(parents)
        self.rows = len(parents)

    def fork(self, parents: list[int]) -> "Request":
        """A twin whose row i is a copy of row parents[i], this request untouched (the
        interactive writer drafts lines from its text so far)."""
        twin = copy.copy(self)
        twin.processors = [copy.copy(p) for p in self.processors]  # reorder() gives each its own rows
        twin.reorder(parents)
        return twin

    def _see(self, row: int, token: int) -> str:
        """Render a token for the row's stream and tell the processors what a reader sees of it:
        a marker shows as a line break (or as nothing at the start of a line), a label not at all.
        Returns the rendered piece."""
        tok = self.tokenizer
        piece = self.streams[row].renderer.feed(tok.vocab[token])
        if token == tok.marker_id:
            seen = (self.newline_id if self.newline_id is not None else token) if piece else None
        else:
            seen = None if token in self.label_ids else token
        for processor in self.processors:
            processor.update(row, token, seen)
        return piece

    def append(self, row: int, token: int) -> None:
        """Record a token for a stream, extend its text and decide whether the stream is finished."""
        cfg, stream = self.cfg, self.streams[row]
        stream.tokens.append(token)
        stream.previous = token
        before = len(stream.shown)
        piece = self._see(row, token)
        if token == self.tokenizer.marker_id:
            stream.markers += 1
            if cfg.num_paragraphs is not None and stream.markers == cfg.num_paragraphs:
                stream.cut = before  # the paragraph ends where the next one would begin
        stream.shown += piece
        if cfg.stop and stream.cut is None:
            # only where the new piece could complete it, and never inside the start text
            found = stream.shown.find(cfg.stop, max(len(self.start), before - len(cfg.stop) + 1))
            if found >= 0:
                stream.cut = found + len(cfg.stop)
        if self.form is not None:
            finished = len(self.start) + len(stream.tokens) >= len(self.form)
        else:
            finished = stream.cut is not None or len(stream.shown) >= cfg.length
        stream.done = finished or len(stream.tokens) >= self.max_tokens  # a model that only emits markers still stops

    def end(self, row: int) -> int:
        """How much of the stream's text is output (so far)."""
        stream = self.streams[row]
        cut = stream.cut if stream.cut is not None else len(stream.shown)
        return cut if self.form is not None else min(cut, self.cfg.length)

    def text(self, row: int) -> str:
        """The finished output of one stream, for people."""
        text = self.streams[row].shown[: self.end(row)]
        return text.rstrip("\n") if self.form is not None or self.cfg.num_paragraphs is not None else text
