"""Sampling text from a CharRNN: prime with '^' + the start text, then draw one token at a time.

The hidden state is carried from step to step, so each new character costs one step of the RNN
(the prefix is never re-run), and --num N streams run together as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import script
from .corpus import render
from .errors import ConfigError, VocabularyError
from .model import CharRNN
from .tokenizer import Tokenizer


@dataclass
class SampleConfig:
    length: int = 100  # characters in each output, the start text included
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    seed: int | None = None

    def __post_init__(self):
        if self.length < 1:
            raise ConfigError(f"--len must be at least 1, not {self.length}")
        if self.length > 1_000_000:
            raise ConfigError(f"--len {self.length} is too large (at most 1000000)")
        if not self.greedy and not self.temperature > 0:
            raise ConfigError(f"--temperature must be above 0, not {self.temperature} (use --greedy for the most likely text)")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"--top-k must be at least 1, not {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1], not {self.top_p}")


def resolve_start(start: str, tokenizer: Tokenizer) -> str:
    """The start text as the model can read it: typed in Simplified, it finds a Traditional model's
    characters (选 -> 選) and back. Raises VocabularyError when no script variant is known."""
    if not tokenizer.unknown_chars(start):
        return start
    for variant in script.variants(start)[1:]:
        if not tokenizer.unknown_chars(variant):
            return variant
    missing = "".join(tokenizer.unknown_chars(start)[:10])
    raise VocabularyError(f"the model does not know the start character(s) {missing}; try another --start")


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """logits (N, V) with everything outside the top-k / nucleus top-p set to -inf."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already cover top_p (the first is always kept)
        drop = (cumulative - sorted_logits.softmax(-1)) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def sample(model: CharRNN, tokenizer: Tokenizer, start: str = "", cfg: SampleConfig | None = None,
           num: int = 1, device: torch.device | str = "cpu") -> list[str]:
    """num texts of cfg.length characters, each beginning with start (rendered: no markers)."""
    cfg = cfg or SampleConfig()
    if num < 1:
        raise ConfigError(f"--num must be at least 1, not {num}")
    start = resolve_start(start, tokenizer)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device)
    if cfg.seed is None:
        generator.seed()
    else:
        generator.manual_seed(cfg.seed)

    prime = ([tokenizer.marker_id] if tokenizer.marker_id is not None else []) + tokenizer.encode(start).tolist()
    if not prime:  # no marker and no start: begin from the most common token
        prime = [tokenizer.unk_id + 1]
    x = torch.tensor(prime, device=device).repeat(num, 1)  # (N, P)
    logits, hidden = model(x)
    logits = logits[:, -1].float()  # (N, V)

    # Characters each token adds to the printed text: the marker prints as nothing (at a line
    # start) or one line break, so count it as 0 and let render() settle it.
    char_len = torch.tensor(tokenizer.char_lengths(), device=device)
    if tokenizer.marker_id is not None:
        char_len[tokenizer.marker_id] = 0
    produced = torch.full((num,), len(start), device=device)
    out = []
    # Every token but the marker adds at least one character; the cap stops a model that only
    # emits markers from looping for ever.
    max_steps = 2 * max(0, cfg.length - len(start)) + 16
    while bool((produced < cfg.length).any()) and len(out) < max_steps:
        logits[:, tokenizer.unk_id] = float("-inf")  # <unk> is never emitted
        if cfg.greedy:
            nxt = logits.argmax(-1)  # (N,)
        else:
            probs = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (N,)
        out.append(nxt)
        produced += char_len[nxt]
        if bool((produced < cfg.length).any()):  # no forward pass after the last token
            logits, hidden = model(nxt[:, None], hidden)
            logits = logits[:, -1].float()
    model.train(was_training)

    tokens = torch.stack(out, 1).tolist() if out else [[] for _ in range(num)]  # (N, steps)
    marker = tokenizer.marker
    texts = []
    for row in tokens:
        text = render((marker or "") + start + tokenizer.decode(row), marker)
        texts.append(text[: cfg.length])
    return texts
