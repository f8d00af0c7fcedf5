"""Generating text from a CharRNN: prime with '^' + the start text, then one token at a time.

The hidden state is carried from step to step, so each new character costs one step of the RNN
(the prefix is never re-run), and --num N streams run together as one batch. Each step the
logits pass through the request's processors (request.py, processors.py), for sampling, greedy
decoding and beam search alike:
    <unk> -> labels -> form -> rhyme / tones | song lines (rhyme, length) -> repetition penalty -> no-repeat n-gram
    -> song structure [-> temperature, top-k, top-p]
With --candidates K each output has K rows that draft its next line side by side (LineChoice).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import torch

from ..errors import ConfigError
from ..model import CharRNN, evaluating, map_hidden
from ..text.layout import Layout
from ..text.tokenizer import Tokenizer
from .config import SampleConfig
from .processors import NEG_INF, LineRules
from .request import Request


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of probs (N, V), by inverse CDF: one uniform number per row, where
    torch.multinomial draws an exponential per vocabulary entry (with 6,521 tokens and 64 streams
    that was two thirds of a sampling step). A token of probability 0 is never drawn."""
    cdf = probs.float().cumsum(-1)  # (N, V)
    # just under the total, so rounding never lands past the last token that can be drawn
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:] * (1 - 1e-6)
    return torch.searchsorted(cdf, u, right=True).squeeze(1)  # (N,)


def choose(request: Request, logits: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
    """Each row's next token (rows,) from the model's logits (rows, V): the request's processors,
    then the most likely token (--greedy) or a draw after temperature, top-k and top-p. The one
    rule for sample(), the server and the interactive writer."""
    processed = request.process(logits, step)
    if request.cfg.greedy:
        return processed.argmax(-1)
    return draw(request.warp(processed, step).softmax(-1), generator)


def _select(hidden, index: torch.Tensor):
    """Reorder the streams (dim 1) of a GRU/RNN state or an LSTM (h, c) pair."""
    return map_hidden(hidden, lambda h: h.index_select(1, index))


LINE_MARKS = "，。？！；：、,.?!;:\n"  # a line ends at a clause mark or a line break
MAX_LINE = 64  # tokens: a line with no mark in this many ends anyway (--candidates)


@lru_cache(maxsize=8)  # one per vocabulary
def line_ends(vocab: tuple[str, ...], marker_id: int | None) -> torch.Tensor:
    """(V,) bool: the tokens that end a line (--candidates, interactive candidate lines)."""
    return torch.tensor([i == marker_id or tok[-1:] in LINE_MARKS or "\n" in tok for i, tok in enumerate(vocab)])


def line_score(logp: float, tokens: int, alpha: float) -> float:
    """log p of a text over tokens**alpha: what beam search and candidate lines rank by, so that a
    longer text is not put behind for its length alone (alpha 0: the plain probability)."""
    return logp / max(1, tokens) ** alpha


def generator(cfg: SampleConfig, device: torch.device) -> torch.Generator:
    """A request's own random stream: from its seed, or fresh (the training's RNG is untouched)."""
    gen = torch.Generator(device=device)
    gen.seed() if cfg.seed is None else gen.manual_seed(cfg.seed)
    return gen


class LineChoice:
    """--candidates K: rows k*i .. k*i+K-1 of the batch write K candidates of output i's next line.
    A row that ends its line waits (its state is held) until the other K-1 have ended theirs, then
    the line the model finds most probable (log p / tokens**alpha, by the model's own distribution,
    before masks and temperature) is kept and every row of the group goes on from it."""

    def __init__(self, tokenizer: Tokenizer, k: int, rows: int, alpha: float, device):
        self.k, self.alpha = k, alpha
        self.ends = line_ends(tuple(tokenizer.vocab), tokenizer.marker_id).to(device)  # (V,)
        self.logp = torch.zeros(rows, device=device)  # (N*K,) log p of each row's line so far
        self.tokens = [0] * rows  # each row's line length so far
        self.waiting = [False] * rows

    def record(self, logits: torch.Tensor, tokens: torch.Tensor, moved: list[bool], done: list[bool]) -> None:
        """logits (N*K, V): the model's, from which tokens (N*K,) were drawn; moved: the rows that took theirs."""
        move = torch.tensor(moved, device=logits.device)
        logp = logits.float().log_softmax(-1).gather(1, tokens[:, None]).squeeze(1)  # (N*K,)
        self.logp += torch.where(move, logp, torch.zeros_like(logp))
        ended = self.ends[tokens].tolist()
        for row, m in enumerate(moved):
            if m:
                self.tokens[row] += 1
                self.waiting[row] = ended[row] or self.tokens[row] >= MAX_LINE
            self.waiting[row] = self.waiting[row] or done[row]

    def choose(self) -> list[int] | None:
        """Where a whole group has ended its line: each row's parent (the best line of its group),
        counters reset; None when no group has. self.chosen: the outputs whose line was chosen."""
        parents, chosen = list(range(len(self.waiting))), False
        self.chosen = set()
        scores = [line_score(lp, n, self.alpha) for lp, n in zip(self.logp.tolist(), self.tokens)]
        for first in range(0, len(parents), self.k):
            group = range(first, first + self.k)
            if not all(self.waiting[r] for r in group) or all(self.tokens[r] == 0 for r in group):
                continue
            best = max(group, key=lambda r: scores[r])
            for r in group:
                parents[r], self.waiting[r], self.tokens[r] = best, False, 0
                self.logp[r] = 0.0
            chosen = True
            self.chosen.add(first // self.k)
        return parents if chosen else None


def _hold(new, old, keep: torch.Tensor):
    """The new recurrent state (a tensor (L, B, H) or LSTM's pair), but the old one in the rows
    where keep (B,) is set."""
    if isinstance(new, (tuple, list)):
        return tuple(_hold(n, o, keep) for n, o in zip(new, old))
    return torch.where(keep[None, :, None], old, new)


class Sampling:
    """One request's sampling, a step at a time: sample() runs it alone, the server (zhrnn/serve)
    runs many in one batch. The caller owns the model: it runs prime() and each step's tokens
    through it and hands back the logits and state.

        job = Sampling(tokenizer, start, cfg, num, device)
        logits, hidden = model(job.prime())
        job.begin(logits[:, -1], hidden)
        while (tokens := job.step()) is not None:
            logits, hidden = model(tokens[:, None], job.hidden)
            job.advance(logits[:, -1], hidden)
        job.texts()

    on_piece(i, piece) receives output i's text as it grows (streaming)."""

    def __init__(self, tokenizer: Tokenizer, start: str, cfg: SampleConfig, num: int = 1,
                 device: torch.device | str = "cpu", on_piece: Callable[[int, str], None] | None = None,
                 layout: Layout | None = None):
        if num < 1:
            raise ConfigError(f"--num must be at least 1, not {num}")
        if cfg.beam > 1:
            raise ConfigError("--beam searches, it does not sample: use beam_search()")
        self.cfg, self.k = cfg, cfg.candidates
        self.rows = num * self.k  # output i is row k*i (with --candidates, rows k*i+1 .. are its other drafts)
        self.request = Request(tokenizer, start, cfg, self.rows, device, layout)
        self.generator = generator(cfg, self.request.device)
        self.lines = LineChoice(tokenizer, self.k, self.rows, cfg.length_alpha, self.request.device) if self.k > 1 else None
        self.on_piece = on_piece
        self.sent = [0] * num  # characters streamed of each output: the text only grows, stop rules cut only what is new
        self.logits = self.hidden = None
        self.held = [False] * self.rows  # rows whose line is written, waiting for their group (--candidates)
        self.step_count = 0

    def prime(self) -> torch.Tensor:
        """(rows, P): the marker, label and start text every row begins from."""
        return torch.tensor(self.request.prime, device=self.request.device).repeat(self.rows, 1)

    def begin(self, logits: torch.Tensor, hidden) -> None:
        """logits (rows, V) after the prime, and the state it left."""
        self.logits, self.hidden = logits, hidden

    @property
    def done(self) -> bool:
        return all(self.request.done)

    def step(self) -> torch.Tensor | None:
        """Choose and record each row's next token; the tokens (rows,) to run through the model
        next, or None when every output is finished (no forward pass after the last token)."""
        req = self.request
        nxt = choose(req, self.logits, self.step_count, self.generator)  # (rows,)
        self.held = self.lines.waiting.copy() if self.lines is not None else [False] * self.rows
        moved = [not (s.done or h) for s, h in zip(req.streams, self.held)]
        for row, token in enumerate(nxt.tolist()):
            if moved[row]:
                req.append(row, token)
        if self.lines is not None:
            self.lines.record(self.logits, nxt, moved, req.done)
        self.step_count += 1
        if self.done:
            parents = self.lines.choose() if self.lines is not None else None
            if parents is not None:  # the last lines are chosen too
                req.reorder(parents)
            self._flush(final=True)
            return None
        return nxt

    def advance(self, logits: torch.Tensor, hidden) -> None:
        """logits (rows, V) and the state after the tokens step() gave."""
        if any(self.held):  # a waiting row keeps its state: it has not taken a token
            keep = torch.tensor(self.held, device=self.request.device)  # (rows,)
            logits = torch.where(keep[:, None], self.logits, logits)
            hidden = _hold(hidden, self.hidden, keep)
        self.logits, self.hidden = logits, hidden
        parents = self.lines.choose() if self.lines is not None else None
        if parents is not None:
            self.request.reorder(parents)
            index = torch.tensor(parents, device=self.request.device)
            self.logits, self.hidden = self.logits.index_select(0, index), _select(self.hidden, index)
        if self.lines is None:
            self._flush(final=False)
        elif parents is not None:  # with --candidates, only chosen lines are shown
            self._flush(final=False, outputs=self.lines.chosen)

    def _flush(self, final: bool, outputs=None) -> None:
        """Hand on what is new of each output (of `outputs` only, when given)."""
        if self.on_piece is None:
            return
        req = self.request
        for i, row in enumerate(range(0, self.rows, self.k)):
            if outputs is not None and i not in outputs:
                continue  # its drafts are still being written: row k*i holds an unchosen one
            if final:
                ready = len(req.text(row))
            else:
                ready, shown = req.end(row), req.streams[row].shown
                while ready > self.sent[i] and shown[ready - 1] == "\n":  # a line break may yet be cut: hold it back
                    ready -= 1
            if ready > self.sent[i]:
                self.on_piece(i, req.text(row)[self.sent[i]:ready] if final else shown[self.sent[i]:ready])
                self.sent[i] = ready

    def texts(self) -> list[str]:
        """The outputs as people read them."""
        return [self.request.text(row) for row in range(0, self.rows, self.k)]

    def rhymes(self) -> list[list[str]]:
        """The rhyme groups each output's lines ended in, in order (--rhyme on songs and free text;
        empty without it)."""
        rules = next((p for p in self.request.processors if isinstance(p, LineRules)), None)
        return [list(rules.rows[row].sung) if rules is not None and rules.rhyme is not None else []
                for row in range(0, self.rows, self.k)]


@torch.inference_mode()
def sample(model: CharRNN, tokenizer: Tokenizer, start: str = "", cfg: SampleConfig | None = None,
           num: int = 1, device: torch.device | str = "cpu",
           on_text: Callable[[str], None] | None = None, layout: Layout | None = None) -> list[str]:
    """num texts, each beginning with start (rendered: no markers, as the model's layout shows
    its text). on_text, when given with num == 1, receives the text piece by piece as it is
    generated (streaming)."""
    cfg = cfg or SampleConfig()
    if cfg.beam > 1:
        if num > 1:
            raise ConfigError("--beam finds the one most likely text; it does not go with --num")
        return [beam_search(model, tokenizer, start, cfg, device, layout)]
    streamed = (lambda i, piece: on_text(piece)) if on_text is not None and num == 1 else None
    job = Sampling(tokenizer, start, cfg, num, device, on_piece=streamed, layout=layout)
    with evaluating(model):
        logits, hidden = model(job.prime())
        job.begin(logits[:, -1], hidden)
        while (tokens := job.step()) is not None:
            logits, hidden = model(tokens[:, None], job.hidden)
            job.advance(logits[:, -1], hidden)
    return job.texts()


@torch.no_grad()
def beam_search(model: CharRNN, tokenizer: Tokenizer, start: str, cfg: SampleConfig, device="cpu",
                layout: Layout | None = None) -> str:
    """The most likely continuation under the model, by beam search with length normalisation.
    Finished beams are carried along unchanged until every beam has finished."""
    k = cfg.beam
    req = Request(tokenizer, start, cfg, k, device, layout)
    with evaluating(model):
        logits, hidden = model(torch.tensor(req.prime, device=req.device)[None])  # (1, P, V)
        logits, hidden = logits[:, -1].expand(k, -1), _select(hidden, torch.zeros(k, dtype=torch.long, device=req.device))
        scores = torch.full((k,), NEG_INF, device=req.device)
        scores[0] = 0.0  # all beams start identical: expand only the first
        vocab = logits.size(-1)
        step = 0
        while not all(req.done):
            logp = req.process(logits, step).log_softmax(-1)  # (k, V)
            for row in range(k):
                if req.streams[row].done:  # a finished beam continues only as itself, at no cost
                    logp[row] = NEG_INF
                    logp[row, tokenizer.unk_id] = 0.0
            candidates = (scores[:, None] + logp).flatten()  # (k * V,)
            top = torch.topk(candidates, k)
            parents, tokens = (top.indices // vocab).tolist(), (top.indices % vocab).tolist()
            req.reorder(parents)  # the streams and what every processor remembers of them
            scores = top.values
            for row, token in enumerate(tokens):
                if not req.streams[row].done:
                    req.append(row, token)
            step += 1
            index = torch.tensor(parents, device=req.device)
            logits, hidden = model(torch.tensor(tokens, device=req.device)[:, None], _select(hidden, index))
            logits = logits[:, -1]
    normalised = [line_score(s, len(b.tokens), cfg.length_alpha) for s, b in zip(scores.tolist(), req.streams)]
    best = max(range(k), key=lambda r: normalised[r] if math.isfinite(normalised[r]) else NEG_INF)
    return req.text(best)
