"""Generating text from a CharRNN: prime with '^' + the start text, then one token at a time.

The hidden state is carried from step to step, so each new character costs one step of the RNN
(the prefix is never re-run), and --num N streams run together as one batch. Each step the
logits pass through the same pipeline, for sampling and beam search alike:
    <unk> mask -> poem form mask -> repetition penalty -> no-repeat n-gram -> temperature/top-k/top-p
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch

from . import script
from .corpus import render
from .errors import ConfigError, VocabularyError
from .forms import Form
from .model import CharRNN
from .tokenizer import Tokenizer

NEG_INF = float("-inf")


@dataclass
class SampleConfig:
    length: int = 100  # characters in each output, the start text included
    temperature: float | tuple[float, ...] = 0.8  # a tuple is cycled, one value per character
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    seed: int | None = None
    repetition_penalty: float = 1.0  # > 1 divides the probability of characters used in the last repetition_window
    repetition_window: int = 32
    no_repeat_ngram: int = 4  # n > 0: never repeat an n-gram (of tokens) within one output; 0: off
    beam: int = 1  # > 1: beam search for the most likely text (ignores temperature/top-k/top-p)
    length_alpha: float = 0.7  # beam score = log p / tokens**alpha, so long texts are not punished
    paragraphs: int | None = None  # stop after this many paragraphs
    stop: str | None = None  # stop after this string appears (it is kept)
    form: str | None = None  # 五言绝句, 七言律诗, ... or a template of □ and punctuation
    acrostic: str = ""  # 藏头诗: each line of the form starts with the next of these characters
    rhyme: bool = False  # the form's lines ending in 。 rhyme (十三辙 groups; needs pypinyin)
    label: str | None = None  # context label (李白, 水调歌头) of a model trained with --labels

    def __post_init__(self):
        temps = self.temperatures
        if self.length < 1:
            raise ConfigError(f"--len must be at least 1, not {self.length}")
        if self.length > 1_000_000:
            raise ConfigError(f"--len {self.length} is too large (at most 1000000)")
        if not self.greedy and self.beam == 1 and not all(t > 0 for t in temps):
            raise ConfigError(f"--temperature must be above 0, not {self.temperature} (use --greedy for the most likely text)")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"--top-k must be at least 1, not {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1], not {self.top_p}")
        if not self.repetition_penalty >= 1:
            raise ConfigError(f"--repetition-penalty must be 1 or more, not {self.repetition_penalty}")
        if self.repetition_window < 1 or self.no_repeat_ngram < 0 or self.beam < 1:
            raise ConfigError("--repetition-window and --beam must be at least 1, --no-repeat-ngram at least 0")
        if self.paragraphs is not None and self.paragraphs < 1:
            raise ConfigError(f"--paragraphs must be at least 1, not {self.paragraphs}")
        if (self.acrostic or self.rhyme) and not self.form:
            self.form = "五言绝句" if len(self.acrostic) <= 4 else "五言律诗"

    @property
    def temperatures(self) -> tuple[float, ...]:
        t = self.temperature
        return tuple(t) if isinstance(t, (list, tuple)) else (t,)


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


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """logits (N, V) with everything outside the top-k / nucleus top-p set to -inf."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, NEG_INF)
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already cover top_p (the first is always kept)
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), NEG_INF)
    return logits


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of probs (N, V), by inverse CDF: one uniform number per row, where
    torch.multinomial draws an exponential per vocabulary entry (with 6,521 tokens and 64 streams
    that was two thirds of a sampling step). A token of probability 0 is never drawn."""
    cdf = probs.float().cumsum(-1)  # (N, V)
    # just under the total, so rounding never lands past the last token that can be drawn
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:] * (1 - 1e-6)
    return torch.searchsorted(cdf, u, right=True).squeeze(1)  # (N,)


def _penalisable(tokenizer: Tokenizer) -> torch.Tensor:
    """(V,) bool: tokens the repetition penalty applies to. Punctuation, spaces, line breaks and
    the marker are exempt: a poem repeats ，and 。 by design."""
    return _content_tokens(tuple(tokenizer.vocab), tokenizer.unk_id, tokenizer.marker_id)


@lru_cache(maxsize=8)  # one per vocabulary, not one per call
def _content_tokens(vocab: tuple[str, ...], unk_id: int, marker_id: int | None) -> torch.Tensor:
    return torch.tensor([i not in (unk_id, marker_id) and not all(unicodedata.category(c)[0] in "PZC" for c in tok)
                         for i, tok in enumerate(vocab)])


class Decoder:
    """One generation request: the logits pipeline and the per-stream bookkeeping.

    Each stream keeps its text as people will see it (markers rendered, and with a form one line
    per sentence), built as tokens arrive, and the point where a stop rule ended it: the output
    is a slice, and streaming sends only what is new.
    """

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, start: str, cfg: SampleConfig, num: int, device):
        self.model, self.tokenizer, self.cfg, self.num = model, tokenizer, cfg, num
        self.device = torch.device(device)
        self.start = resolve_start(start, tokenizer)
        self.form = None
        if cfg.form:
            if cfg.paragraphs is not None or cfg.stop:
                raise ConfigError("--paragraphs and --stop do not go with --form: the form decides where the poem ends")
            acrostic = resolve_start(cfg.acrostic, tokenizer, "--acrostic") if cfg.acrostic else ""
            self.form = Form(tokenizer, cfg.form, acrostic, self.start, rhyme=cfg.rhyme)
            # the form fixes the start text's characters, and the whole poem's length
            self.start = "".join(tokenizer.vocab[s] for s in self.form.slots[: len(self.start)])
        elif cfg.paragraphs is not None and tokenizer.marker_id is None:
            raise ConfigError("--paragraphs needs a model trained with paragraph markers (this one used --paragraphs off)")
        self.start_ids = tokenizer.encode(self.start).tolist()
        self.label_id = resolve_label(cfg.label, tokenizer) if cfg.label else None
        self.label_ids = set(tokenizer.label_ids)
        self.after_marker = None  # (V,) bool: what may follow a marker (all, or only the asked-for label)
        self.elsewhere = None  # (V,) bool: what may follow anything else (all but labels)
        if self.label_ids:
            self.elsewhere = torch.ones(len(tokenizer), dtype=torch.bool, device=self.device)
            self.elsewhere[tokenizer.label_ids] = False
            self.after_marker = torch.ones_like(self.elsewhere)
            if self.label_id is not None:  # each new paragraph keeps the asked-for label
                self.after_marker = torch.zeros_like(self.elsewhere)
                self.after_marker[self.label_id] = True
        label = [self.label_id] if self.label_id is not None else []
        self.prime = ([tokenizer.marker_id] if tokenizer.marker_id is not None else []) + label + self.start_ids
        if not self.prime:  # no marker and no start: begin from the most common token
            self.prime = [tokenizer.unk_id + 1]
        self.penalisable = _penalisable(tokenizer).to(self.device) if cfg.repetition_penalty > 1 else None
        self.temps = cfg.temperatures
        self.newline_id = tokenizer.index.get("\n")
        self.max_tokens = len(self.form) if self.form is not None else 2 * cfg.length + 16
        # per stream
        shown = Form.display(self.start) if self.form is not None else self.start
        last = self.start[-1] if self.start else tokenizer.marker  # the raw text's last character, for render()
        self.tokens: list[list[int]] = [[] for _ in range(num)]
        self.shown, self.last = [shown] * num, [last] * num
        self.cut: list[int | None] = [None] * num  # where a stop rule ended the text
        self.markers = [0] * num
        self.ngrams: list[dict[tuple, set]] = [{} for _ in range(num)]
        self.history: list[list[int]] = [[] for _ in range(num)]  # what a reader sees: for n-grams and the penalty
        for row in range(num):  # the start text counts too: no-repeat means no repeat of it either
            for token in self.prime:
                self._remember(row, token)
        finished = len(self.start) >= (len(self.form) if self.form is not None else cfg.length)
        self.done = [finished] * num

    def reorder(self, parents: list[int]) -> None:
        """Stream i becomes a copy of stream parents[i] (beam search)."""
        for name in ("tokens", "history"):
            setattr(self, name, [list(getattr(self, name)[p]) for p in parents])
        self.ngrams = [{g: set(s) for g, s in self.ngrams[p].items()} for p in parents]
        for name in ("shown", "last", "cut", "markers", "done"):
            setattr(self, name, [getattr(self, name)[p] for p in parents])

    def _remember(self, row: int, token: int) -> None:
        """Add a token to a stream's visible history and n-gram table. A marker after a line break
        shows as nothing, any other marker as a line break: repetition is judged on what is seen."""
        hist, n = self.history[row], self.cfg.no_repeat_ngram
        if token in self.label_ids:
            return  # a label is not seen
        if token == self.tokenizer.marker_id and self.newline_id is not None:
            if not hist or hist[-1] == self.newline_id:
                return
            token = self.newline_id
        if n > 0 and len(hist) >= n - 1:
            self.ngrams[row].setdefault(tuple(hist[len(hist) - n + 1:]) if n > 1 else (), set()).add(token)
        hist.append(token)

    # --- the logits pipeline ----------------------------------------------------------------

    def process(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """logits (n, V) for the streams `rows` -> masked and penalised logits (before temperature)."""
        logits = logits.float().clone()
        logits[:, self.tokenizer.unk_id] = NEG_INF  # <unk> is never emitted
        forced = None
        if self.label_ids:  # a label token goes right after a marker, nowhere else
            for r, row in enumerate(rows):
                previous = self.tokens[row][-1] if self.tokens[row] else self.prime[-1]
                allowed = self.after_marker if previous == self.tokenizer.marker_id else self.elsewhere
                logits[r] = logits[r].masked_fill(~allowed, NEG_INF)
        if self.form is not None:
            position = len(self.start) + len(self.tokens[rows[0]])  # streams advance in lockstep
            if position < len(self.form):
                allowed = self.form.allowed(position).to(logits.device)
                logits = logits.masked_fill(~allowed, NEG_INF)
                forced = self.form.slots[position] is not None
                for r, row in enumerate(rows):  # rhyme: each stream keeps the group its first 韵脚 chose
                    rhyming = self.form.rhyme_allowed(position, self.start_ids + self.tokens[row])
                    if rhyming is not None and (rhyming & allowed).any():
                        logits[r] = logits[r].masked_fill(~rhyming.to(logits.device), NEG_INF)
        if self.penalisable is not None:
            window = self.cfg.repetition_window
            for r, row in enumerate(rows):
                recent = torch.tensor(self.history[row][-window:], dtype=torch.long, device=logits.device)
                hit = torch.zeros_like(self.penalisable)
                hit[recent] = True
                hit &= self.penalisable
                # the probability of a recent character is divided by the penalty: unlike CTRL's
                # rule on the sign of a logit, the same for any shift of the logits (an adaptive
                # output gives log-probabilities, all negative)
                logits[r] = logits[r] - hit * math.log(self.cfg.repetition_penalty)
        n = self.cfg.no_repeat_ngram
        if n > 0 and not forced:
            hit_rows, hit_tokens = [], []  # gathered over the streams, then set in one indexing op
            for r, row in enumerate(rows):
                hist = self.history[row]
                banned = self.ngrams[row].get(tuple(hist[-(n - 1):]) if n > 1 else ())
                if not banned:
                    continue
                banned = set(banned)
                if self.newline_id in banned and hist and hist[-1] != self.newline_id:
                    banned.add(self.tokenizer.marker_id)  # the marker would print that same line break
                banned.discard(None)
                hit_rows += [r] * len(banned)
                hit_tokens += banned
            if hit_tokens:
                kept = logits.clone()
                logits[hit_rows, hit_tokens] = NEG_INF
                dead = ~torch.isfinite(logits).any(-1)  # (n,) every option banned: a repeat beats a dead end
                logits[dead] = kept[dead]
        return logits

    def append(self, row: int, token: int) -> None:
        """Record a token for a stream, extend its text and decide whether the stream is finished."""
        cfg, tok = self.cfg, self.tokenizer
        self.tokens[row].append(token)
        self._remember(row, token)
        if token in self.label_ids:
            return  # invisible: no text, and the stream's last character stays what it was
        piece = tok.vocab[token]
        if token == tok.marker_id:
            self.markers[row] += 1
            if cfg.paragraphs is not None and self.markers[row] == cfg.paragraphs:
                self.cut[row] = len(self.shown[row])  # the paragraph ends where the next one would begin
            piece = "" if self.last[row] in (None, "\n") else "\n"  # as render() shows a marker
        self.last[row] = tok.vocab[token][-1]
        if self.form is not None:
            piece = Form.display(piece)
        before = len(self.shown[row])
        self.shown[row] += piece
        if cfg.stop and self.cut[row] is None:
            # only where the new piece could complete it, and never inside the start text
            found = self.shown[row].find(cfg.stop, max(len(self.start), before - len(cfg.stop) + 1))
            if found >= 0:
                self.cut[row] = found + len(cfg.stop)
        if self.form is not None:
            finished = len(self.start) + len(self.tokens[row]) >= len(self.form)
        else:
            finished = self.cut[row] is not None or len(self.shown[row]) >= cfg.length
        self.done[row] = finished or len(self.tokens[row]) >= self.max_tokens  # a model that only emits markers still stops

    def end(self, row: int) -> int:
        """How much of the stream's text is output (so far)."""
        cut = self.cut[row] if self.cut[row] is not None else len(self.shown[row])
        return cut if self.form is not None else min(cut, self.cfg.length)

    def text(self, row: int) -> str:
        """The finished output of one stream, for people."""
        text = self.shown[row][: self.end(row)]
        return text.rstrip("\n") if self.form is not None or self.cfg.paragraphs is not None else text


def _select(hidden, index: torch.Tensor):
    """Reorder the streams (dim 1) of a GRU/RNN state or an LSTM (h, c) pair."""
    if isinstance(hidden, tuple):
        return tuple(h.index_select(1, index) for h in hidden)
    return hidden.index_select(1, index)


@torch.inference_mode()
def sample(model: CharRNN, tokenizer: Tokenizer, start: str = "", cfg: SampleConfig | None = None,
           num: int = 1, device: torch.device | str = "cpu",
           on_text: Callable[[str], None] | None = None) -> list[str]:
    """num texts, each beginning with start (rendered: no markers). on_text, when given with
    num == 1, receives the text piece by piece as it is generated (streaming)."""
    cfg = cfg or SampleConfig()
    if num < 1:
        raise ConfigError(f"--num must be at least 1, not {num}")
    if cfg.beam > 1:
        if num > 1:
            raise ConfigError("--beam finds the one most likely text; it does not go with --num")
        return [beam_search(model, tokenizer, start, cfg, device)]
    dec = Decoder(model, tokenizer, start, cfg, num, device)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=dec.device)
    generator.seed() if cfg.seed is None else generator.manual_seed(cfg.seed)

    x = torch.tensor(dec.prime, device=dec.device).repeat(num, 1)  # (N, P)
    logits, hidden = model(x)
    logits = logits[:, -1]  # (N, V)
    stream = on_text is not None and num == 1
    sent = 0  # characters streamed so far: the text only grows, and stop rules cut only what is new

    def flush(final: bool) -> None:
        nonlocal sent
        if final:
            ready = len(dec.text(0))
        else:
            ready, shown = dec.end(0), dec.shown[0]
            while ready > sent and shown[ready - 1] == "\n":  # a line break may yet be cut: hold it back
                ready -= 1
        if ready > sent:
            on_text(dec.text(0)[sent:ready] if final else dec.shown[0][sent:ready])
            sent = ready

    step = 0
    while not all(dec.done):
        rows = list(range(num))
        processed = dec.process(logits, rows)
        if cfg.greedy:
            nxt = processed.argmax(-1)  # (N,)
        else:
            t = dec.temps[step % len(dec.temps)]
            probs = filter_logits(processed / t, cfg.top_k, cfg.top_p).softmax(-1)
            nxt = draw(probs, generator)  # (N,)
        for row, token in enumerate(nxt.tolist()):
            if not dec.done[row]:
                dec.append(row, token)
        if stream:
            flush(final=False)
        step += 1
        if not all(dec.done):  # no forward pass after the last token
            logits, hidden = model(nxt[:, None], hidden)
            logits = logits[:, -1]
    model.train(was_training)
    if stream:
        flush(final=True)
    return [dec.text(row) for row in range(num)]


@torch.no_grad()
def beam_search(model: CharRNN, tokenizer: Tokenizer, start: str, cfg: SampleConfig, device="cpu") -> str:
    """The most likely continuation under the model, by beam search with length normalisation.
    Finished beams are carried along unchanged until every beam has finished."""
    k = cfg.beam
    dec = Decoder(model, tokenizer, start, cfg, k, device)
    was_training = model.training
    model.eval()
    logits, hidden = model(torch.tensor(dec.prime, device=dec.device)[None])  # (1, P, V)
    logits, hidden = logits[:, -1].expand(k, -1), _select(hidden, torch.zeros(k, dtype=torch.long, device=dec.device))
    scores = torch.full((k,), NEG_INF, device=dec.device)
    scores[0] = 0.0  # all beams start identical: expand only the first
    vocab = logits.size(-1)
    while not all(dec.done):
        logp = dec.process(logits, list(range(k))).log_softmax(-1)  # (k, V)
        for row in range(k):
            if dec.done[row]:  # a finished beam continues only as itself, at no cost
                logp[row] = NEG_INF
                logp[row, tokenizer.unk_id] = 0.0
        candidates = (scores[:, None] + logp).flatten()  # (k * V,)
        top = torch.topk(candidates, k)
        parents, tokens = (top.indices // vocab).tolist(), (top.indices % vocab).tolist()
        dec.reorder(parents)
        scores = top.values
        for row, token in enumerate(tokens):
            if not dec.done[row]:
                dec.append(row, token)
        index = torch.tensor(parents, device=dec.device)
        logits, hidden = model(torch.tensor(tokens, device=dec.device)[:, None], _select(hidden, index))
        logits = logits[:, -1]
    model.train(was_training)
    normalised = [s / max(1, len(t)) ** cfg.length_alpha for s, t in zip(scores.tolist(), dec.tokens)]
    best = max(range(k), key=lambda r: normalised[r] if math.isfinite(normalised[r]) else NEG_INF)
    return dec.text(best)


class Stepper:
    """Step-by-step generation for interactive use: feed text, read the next-character
    distribution, continue, undo. Every step keeps its state, so undo recomputes nothing."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, start: str = "", device="cpu", seed: int | None = None):
        self.model, self.tokenizer, self.device = model.eval(), tokenizer, torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed() if seed is None else self.generator.manual_seed(seed)
        prime = [tokenizer.marker_id] if tokenizer.marker_id is not None else [tokenizer.unk_id + 1]
        self.states: list[tuple[list[int], torch.Tensor, object]] = []  # (ids after the prime, logits (V,), hidden)
        self.actions: list[int] = []  # how many states there were before each action: undo goes back one
        self._push(prime, None, [], keep=False)
        if start:
            self.feed(start)

    @torch.no_grad()
    def _push(self, ids: list[int], hidden, before: list[int], keep: bool = True) -> None:
        logits, hidden = self.model(torch.tensor(ids, device=self.device)[None], hidden)
        logits = logits[0, -1].float()
        logits[[self.tokenizer.unk_id, *self.tokenizer.label_ids]] = NEG_INF  # never offered: <unk>, labels
        self.states.append((before + ids if keep else before, logits, hidden))

    def feed(self, text: str) -> None:
        """Append text (refused with VocabularyError if the model cannot read it)."""
        tokens = self.tokenizer.encode(resolve_start(text, self.tokenizer, "text")).tolist()
        self.actions.append(len(self.states))
        for token in tokens:
            ids, _, hidden = self.states[-1]
            self._push([token], hidden, ids)

    def top(self, n: int) -> list[tuple[str, float]]:
        """The n most likely next tokens with their probabilities."""
        probs = self.states[-1][1].softmax(-1)
        values, indices = probs.topk(max(1, min(n, len(probs))))
        return [(self.tokenizer.vocab[i], p) for i, p in zip(indices.tolist(), values.tolist())]

    def continue_(self, tokens: int, temperature: float = 0.8) -> None:
        if not temperature > 0:
            raise ConfigError(f"--temperature must be above 0, not {temperature}")
        self.actions.append(len(self.states))
        for _ in range(tokens):
            probs = (self.states[-1][1] / temperature).softmax(-1)
            token = int(draw(probs[None], self.generator))
            ids, _, hidden = self.states[-1]
            self._push([token], hidden, ids)

    def undo(self) -> bool:
        """Take back the last action (a choice, a typed text, a continuation) as a whole."""
        if not self.actions:
            return False
        del self.states[self.actions.pop():]
        return True

    @property
    def text(self) -> str:
        return render(self.tokenizer.decode(self.states[-1][0]), self.tokenizer.marker)
