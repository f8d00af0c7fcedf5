"""Generating text from a CharRNN: prime with '^' + the start text, then one token at a time.

The hidden state is carried from step to step, so each new character costs one step of the RNN
(the prefix is never re-run), and --num N streams run together as one batch. Each step the
logits pass through the Decoder's processors (decoder.py, processors.py), for sampling, greedy
decoding and beam search alike:
    <unk> -> labels -> form -> rhyme -> repetition penalty -> no-repeat n-gram [-> temperature, top-k, top-p]
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import ConfigError
from ..model import CharRNN, map_hidden
from ..text.tokenizer import Tokenizer
from .config import SampleConfig
from .decoder import Decoder
from .processors import NEG_INF


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of probs (N, V), by inverse CDF: one uniform number per row, where
    torch.multinomial draws an exponential per vocabulary entry (with 6,521 tokens and 64 streams
    that was two thirds of a sampling step). A token of probability 0 is never drawn."""
    cdf = probs.float().cumsum(-1)  # (N, V)
    # just under the total, so rounding never lands past the last token that can be drawn
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:] * (1 - 1e-6)
    return torch.searchsorted(cdf, u, right=True).squeeze(1)  # (N,)


def _select(hidden, index: torch.Tensor):
    """Reorder the streams (dim 1) of a GRU/RNN state or an LSTM (h, c) pair."""
    return map_hidden(hidden, lambda h: h.index_select(1, index))


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
    dec = Decoder(tokenizer, start, cfg, num, device)
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
            ready, shown = dec.end(0), dec.streams[0].shown
            while ready > sent and shown[ready - 1] == "\n":  # a line break may yet be cut: hold it back
                ready -= 1
        if ready > sent:
            on_text(dec.text(0)[sent:ready] if final else shown[sent:ready])
            sent = ready

    step = 0
    while not all(dec.done):
        processed = dec.process(logits, step)
        if cfg.greedy:
            nxt = processed.argmax(-1)  # (N,)
        else:
            nxt = draw(dec.warp(processed, step).softmax(-1), generator)  # (N,)
        for row, token in enumerate(nxt.tolist()):
            if not dec.streams[row].done:
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
    dec = Decoder(tokenizer, start, cfg, k, device)
    was_training = model.training
    model.eval()
    logits, hidden = model(torch.tensor(dec.prime, device=dec.device)[None])  # (1, P, V)
    logits, hidden = logits[:, -1].expand(k, -1), _select(hidden, torch.zeros(k, dtype=torch.long, device=dec.device))
    scores = torch.full((k,), NEG_INF, device=dec.device)
    scores[0] = 0.0  # all beams start identical: expand only the first
    vocab = logits.size(-1)
    step = 0
    while not all(dec.done):
        logp = dec.process(logits, step).log_softmax(-1)  # (k, V)
        for row in range(k):
            if dec.streams[row].done:  # a finished beam continues only as itself, at no cost
                logp[row] = NEG_INF
                logp[row, tokenizer.unk_id] = 0.0
        candidates = (scores[:, None] + logp).flatten()  # (k * V,)
        top = torch.topk(candidates, k)
        parents, tokens = (top.indices // vocab).tolist(), (top.indices % vocab).tolist()
        dec.reorder(parents)
        scores = top.values
        for row, token in enumerate(tokens):
            if not dec.streams[row].done:
                dec.append(row, token)
        step += 1
        index = torch.tensor(parents, device=dec.device)
        logits, hidden = model(torch.tensor(tokens, device=dec.device)[:, None], _select(hidden, index))
        logits = logits[:, -1]
    model.train(was_training)
    normalised = [s / max(1, len(b.tokens)) ** cfg.length_alpha for s, b in zip(scores.tolist(), dec.streams)]
    best = max(range(k), key=lambda r: normalised[r] if math.isfinite(normalised[r]) else NEG_INF)
    return dec.text(best)
