"""One generation request: its start, its processors, and the state of each stream.

Each stream keeps its text as people will see it (rendered as tokens arrive, by the one
rendering rule) and the point where a stop rule ended it: the output is a slice, and streaming
sends only what is new. Beam search copies whole streams (Stream.copy).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..errors import ConfigError, VocabularyError
from ..text import script
from ..text.render import Renderer
from ..text.tokenizer import Tokenizer
from . import processors as P
from .config import SampleConfig
from .forms import Form


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
    """One output being generated."""
    renderer: Renderer
    previous: int  # the last token (the prime's last at first): what may follow depends on it
    tokens: list[int] = field(default_factory=list)  # generated, after the prime
    history: list[int] = field(default_factory=list)  # what a reader sees, as ids: for repetition rules
    ngrams: dict[tuple, set[int]] = field(default_factory=dict)  # (n-1)-gram of history -> tokens that followed
    line: list[int] = field(default_factory=list)  # the line being written, as ids (for line-scoped repeats)
    said: dict[tuple, int] = field(default_factory=dict)  # line -> times it ended in this paragraph (the same)
    shown: str = ""  # the text for people so far
    cut: int | None = None  # where a stop rule ended the text
    markers: int = 0  # paragraph markers generated
    done: bool = False

    def copy(self) -> "Stream":
        """An independent twin: a new field is copied too (the mutable ones need their line here)."""
        return replace(self, renderer=self.renderer.copy(), tokens=list(self.tokens), history=list(self.history),
                       ngrams={g: set(s) for g, s in self.ngrams.items()}, line=list(self.line), said=dict(self.said))


class Decoder:
    """The start and options of one request turned into a prime, processors and streams."""

    def __init__(self, tokenizer: Tokenizer, start: str, cfg: SampleConfig, num: int, device):
        self.tokenizer, self.cfg = tokenizer, cfg
        self.device = torch.device(device)
        self.label_ids = frozenset(tokenizer.label_ids)
        self.start = resolve_start(start, tokenizer)
        self.form = None
        if cfg.form:
            acrostic = resolve_start(cfg.acrostic, tokenizer, "--acrostic") if cfg.acrostic else ""
            self.form = Form(tokenizer, cfg.form, acrostic, self.start, rhyme=cfg.rhyme, tones=cfg.tones,
                             tones_strict=cfg.tones_strict)
            # the form fixes the start text's characters, and the whole poem's length
            self.start = "".join(tokenizer.vocab[s] for s in self.form.slots[: len(self.start)])
        elif cfg.num_paragraphs is not None and tokenizer.marker_id is None:
            raise ConfigError("--num-paragraphs needs a model trained with paragraph markers "
                              "(this one used --paragraphs off)")
        self.start_ids = tokenizer.encode(self.start).tolist()
        self.label_id = resolve_label(cfg.label, tokenizer) if cfg.label else None
        marker = [tokenizer.marker_id] if tokenizer.marker_id is not None else []
        self.prime = marker + ([self.label_id] if self.label_id is not None else []) + self.start_ids
        shown_prime = bool(self.prime)
        if not self.prime:  # no marker and no start: begin from the most common token (not shown)
            self.prime = [tokenizer.unk_id + 1]
        self.newline_id = tokenizer.index.get("\n")
        # no-repeat within a line only: a song's chorus comes back (the text's own habit decides by default)
        self.line_scope = (cfg.no_repeat_scope or ("line" if tokenizer.chorus else "text")) == "line"
        self.max_tokens = len(self.form) if self.form is not None else 2 * cfg.length + 16
        self.processors, self.warpers = P.constraints(self), P.warpers(cfg)
        finished = len(self.start) >= (len(self.form) if self.form is not None else cfg.length)
        self.streams = []
        for _ in range(num):
            stream = Stream(Renderer(tokenizer.marker, sentence_lines=self.form is not None, blocks=tokenizer.blocks),
                            self.prime[-1], done=finished)
            for token in self.prime:  # the start text counts too: no-repeat means no repeat of it either
                piece = self._see(stream, token)
                if shown_prime:
                    stream.shown += piece
            self.streams.append(stream)

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
        """Stream i becomes a copy of stream parents[i] (beam search)."""
        self.streams = [self.streams[p].copy() for p in parents]

    def _see(self, stream: Stream, token: int) -> str:
        """Render a token for the stream and add what a reader sees of it to its history and
        n-gram table. Returns the rendered piece."""
        tok, n = self.tokenizer, self.cfg.no_repeat_ngram
        piece = stream.renderer.feed(tok.vocab[token])
        if token == tok.marker_id:
            stream.said.clear()  # a new paragraph (song) counts its lines afresh
            stream.line = []
            if not piece:
                return piece  # a paragraph start after a line break shows as nothing
            token = self.newline_id if self.newline_id is not None else token
        elif token in self.label_ids:
            return piece  # a label is not seen
        hist = stream.history
        if n > 0 and len(hist) >= n - 1:
            stream.ngrams.setdefault(tuple(hist[len(hist) - n + 1:]) if n > 1 else (), set()).add(token)
        hist.append(token)
        if self.line_scope:
            if token == self.newline_id:
                stream.ngrams.clear()  # a new line: what the lines before it said may be said again
                if stream.line:
                    key = tuple(stream.line)
                    stream.said[key] = stream.said.get(key, 0) + 1
                stream.line = []
            else:
                stream.line.append(token)
        return piece

    def append(self, row: int, token: int) -> None:
        """Record a token for a stream, extend its text and decide whether the stream is finished."""
        cfg, stream = self.cfg, self.streams[row]
        stream.tokens.append(token)
        stream.previous = token
        before = len(stream.shown)
        piece = self._see(stream, token)
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
