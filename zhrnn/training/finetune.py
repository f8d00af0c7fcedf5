"""Starting a run from a trained model (--init-from) whose vocabulary lacks some of the new text.

The new tokenizer is the old vocabulary with the new tokens appended, so every old id keeps its
meaning; the embedding and output layer grow by the new rows while all old weights stay as they
were. This is what spares users the "vocabulary mismatch" dead end of char-rnn and textgenrnn.
"""
from __future__ import annotations

import logging

import torch

from ..errors import ConfigError
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def extend_tokenizer(base: Tokenizer, built: Tokenizer, labels: dict[str, str]) -> Tokenizer:
    """base's vocabulary + the tokens of built (the new text's) that base lacks, in built's order."""
    if base.level != built.level:
        raise ConfigError(f"--init-from: the model is {base.level}-level; train it with --level {base.level}")
    if base.marker != built.marker:
        raise ConfigError(f"--init-from: the model marks paragraphs with {base.marker!r}; use the same --marker/--paragraphs")
    new = [t for t in built.vocab if t not in base.index]
    if new:
        log.info("--init-from: %d new token(s) get new rows (e.g. %s); the %d known keep their weights",
                 len(new), "".join(new[:8]), len(base))
    return type(base)(base.vocab + new, base.marker, base.script, {**base.labels, **labels})


def grow_state(base_state: dict, model: torch.nn.Module) -> dict:
    """base_state's weights for `model`, whose vocabulary is base's with rows appended.

    Old rows are copied; new rows keep the model's fresh initialisation, except that a new
    output bias starts at the mean old bias, so a new character begins as likely as a typical one
    rather than at an arbitrary value."""
    target = model.state_dict()
    # parameters with a row per token: the embedding, and the full output or the adaptive
    # output's last cluster (new tokens are appended, so they all fall into it)
    cutoffs = model.config.cutoffs
    grown = {"embedding.weight", "head.weight", "head.bias"} | ({f"head.tail.{len(cutoffs) - 1}.1.weight"} if cutoffs else set())
    out = {}
    for name, value in base_state.items():
        fresh = target[name]
        value = value.to(fresh.dtype)
        if name in grown and value.shape != fresh.shape:
            old = value.shape[0]
            fresh = fresh.clone()
            fresh[:old] = value
            if name == "head.bias":
                fresh[old:] = value.mean()
            value = fresh
        elif value.shape != fresh.shape:
            raise ConfigError(f"--init-from: {name} has shape {tuple(value.shape)}, the model needs {tuple(fresh.shape)}")
        out[name] = value
    return out
