"""Counts for a model that was trained without them (the shipped models, runs from before the
counts, runs with --ngram off): its text encoded with its own vocabulary and options, split as
its run split it, the training part counted and the mixture's weights fitted on the held-out
streams, exactly as a run does (build.make_counts, validation.Validation).

    zhrnn export pretrained/唐诗.pt --counts 唐诗.txt -o pretrained/唐诗.pt
"""
from __future__ import annotations

import logging
import time

import numpy as np

from .encoded import encode_corpus
from .plan import TrainConfig
from .split import Split, split_ids
from .validation import Evaluation, Validation
from ..counts import COUNTED_TOKENS, MAX_BYTES, Counts
from ..errors import ConfigError, CorpusError
from ..model import network
from ..text.pipeline import CorpusConfig
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def add_counts(state: dict, paths: list[str], ngram: str = "auto", cache: str | None = None,
               max_mb: float | None = None) -> Evaluation:
    """Count the training split of the text a checkpoint state was trained on and put the counts
    (with their weights) into the state. Returns the figures on the held-out streams."""
    cfg = TrainConfig.from_dict({**state["train_config"], "ngram": ngram})
    if cfg.ngram_order is None:
        raise ConfigError("--ngram off: no counts to add")
    split, validation = run_split(state, paths, cache)
    began = time.perf_counter()
    counts = Counts.build(split.train[:COUNTED_TOKENS], validation.vocab_size, cfg.ngram_order,
                          MAX_BYTES if max_mb is None else int(max_mb * 1e6))
    log.info("%d-gram counts of %s training tokens: %s entries, %.1f MB, in %.1f s", cfg.ngram_order,
             f"{min(len(split.train), COUNTED_TOKENS):,}", f"{counts.num_entries():,}", counts.saved_bytes() / 1e6,
             time.perf_counter() - began)
    validation.counts = counts
    ev, weights = validation(network(state))
    state["counts"] = {**counts.state_dict(), "weights": weights}
    return ev


def run_split(state: dict, paths: list[str], cache: str | None = None) -> tuple[Split, Validation]:
    """The text a checkpoint state was trained on, read with its options and vocabulary and split
    as its run split it, and the run's held-out streams (benchmarks/counts_size.py reads them too)."""
    import torch

    cfg = TrainConfig.from_dict(state["train_config"])
    tokenizer = Tokenizer.from_dict(state["tokenizer"])
    text = encode_corpus(paths, CorpusConfig(**state.get("corpus_config", {})), cfg.level, cfg.min_count,
                         cfg.max_vocab, lambda built, info: tokenizer, labels=tokenizer.labels, cache=cache)
    unknown = float((np.asarray(text.ids) == tokenizer.unk_id).mean())
    if unknown > 0.01:
        raise CorpusError(f"{unknown:.0%} of the text is not in the model's vocabulary: is it the text the model "
                          "was trained on (and its options, e.g. --convert)?")
    if text.info.fingerprint != state.get("corpus", {}).get("fingerprint"):
        log.warning("this is not the text the model was trained on (or not read the same way): its held-out part "
                    "differs from the run's, and the figures may count text the network trained on")
    split = split_ids(text.ids, cfg.seq_length, cfg.val_fraction, cfg.split, tokenizer)  # the method the run used
    if split.val is None:
        raise CorpusError("the text is too short to hold out a part to fit the counts' weights on")
    return split, Validation(split.val, cfg.seq_length, cfg.eval_tokens, tokenizer, torch.device("cpu"))
