"""A count-based floor: interpolated Kneser-Ney character n-grams (modified discounts, Chen &
Goodman 1998), counted from a zhrnn run's own training split and scored on the very validation
targets its training log scores, beside the run's model on the same targets.

    python benchmarks/kneser_ney.py 全唐诗.txt --model runs/全唐诗     # the run's text options and split
    python benchmarks/kneser_ney.py 唐诗.txt [--convert t2s] [--labels]  # zhrnn train's defaults, no model

The split, vocabulary and evaluation streams are zhrnn's own (encode_corpus, split_ids, and
eval_streams: 32 stretches spread over the validation part, eval_tokens targets in all, as
Trainer.evaluate reads them), so a figure here and one in a run's log.jsonl count the same targets. Two figures each, by definition:
  val_bpc       every target of the evaluation streams except context labels (paragraph markers
                and line breaks included), in bits per character, as the log's val_bpc
  val_text_bpc  the same targets, text characters only (markers, line breaks and labels
                excluded), as the log's val_text_bpc
The model reads each evaluation stream with its hidden state carried, as training evaluates; an
n-gram looks at the characters before each target (up to order - 1 of them). Char level only.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn.api import TextModel  # noqa: E402
from zhrnn.text.pipeline import CorpusConfig  # noqa: E402
from zhrnn.training.batches import eval_streams, stream_starts  # noqa: E402
from zhrnn.training.encoded import encode_corpus  # noqa: E402
from zhrnn.training.plan import TrainConfig  # noqa: E402
from zhrnn.training.split import SPLITS, split_ids  # noqa: E402
from zhrnn.training.validation import target_nats  # noqa: E402


class KneserNey:
    """P(w | h) = max(c(h w) - D(c), 0) / c(h) + gamma(h) P(w | h minus its first character),
    with raw counts at the highest order, continuation counts (distinct left neighbours) below
    it, three discounts per order (for counts 1, 2 and 3+) and a uniform distribution over the
    vocabulary at the bottom, so that a character never seen in training still has a probability."""

    def __init__(self, ids: list[int], order: int, vocab_size: int):
        self.order, self.vocab_size = order, vocab_size
        grams = {order: Counter(zip(*(ids[i:] for i in range(order))))}
        for k in range(order - 1, 0, -1):  # a k-gram's continuation count: the (k+1)-gram types ending in it
            grams[k] = Counter(g[1:] for g in grams[k + 1])
        self.grams = grams
        self.discounts, self.totals, self.kinds = {}, {}, {}
        for k, counts in grams.items():
            n = Counter(c for c in counts.values() if c <= 4)  # how many n-grams were seen once, twice, 3, 4 times
            y = n[1] / (n[1] + 2 * n[2]) if n[1] and n[2] else 0.5
            self.discounts[k] = (0.0, 1 - 2 * y * n[2] / n[1] if n[1] else 0.5,
                                 2 - 3 * y * n[3] / n[2] if n[2] else 1.0, 3 - 4 * y * n[4] / n[3] if n[3] else 1.5)
            # above zero, as zhrnn's counts keep them: where a text repeats whole blocks (a chorus sung
            # three times) few n-grams are seen exactly twice, and the formula goes far below zero
            self.discounts[k] = tuple(max(x, 0.01) if i else x for i, x in enumerate(self.discounts[k]))
            totals, kinds = defaultdict(int), defaultdict(lambda: [0, 0, 0])
            for gram, c in counts.items():
                totals[gram[:-1]] += c
                kinds[gram[:-1]][min(c, 3) - 1] += 1  # continuations seen once, twice, 3+ times
            self.totals[k], self.kinds[k] = dict(totals), dict(kinds)

    def prob(self, history: tuple[int, ...], token: int) -> float:
        """P(token | the last order-1 ids of history)."""
        p = 1.0 / self.vocab_size
        for k in range(1, self.order + 1):
            if len(history) < k - 1:
                break
            context = history[len(history) - k + 1:] if k > 1 else ()
            total = self.totals[k].get(context)
            if not total:
                break  # an unseen context: no longer one is seen either
            count = self.grams[k].get(context + (token,), 0)
            d = self.discounts[k]
            once, twice, more = self.kinds[k][context]
            gamma = (d[1] * once + d[2] * twice + d[3] * more) / total
            p = max(count - d[min(count, 3)], 0.0) / total + gamma * p
        return p


def model_bits(model: TextModel, rows: torch.Tensor, cfg: TrainConfig) -> np.ndarray:
    """(s*L,) bits of each target, the state carried along each stream, as Trainer.evaluate scores."""
    return (target_nats(model.model, rows, cfg.seq_length) / math.log(2)).flatten().numpy()


def report(name: str, bits: np.ndarray, counted: np.ndarray, text: np.ndarray, seconds: float) -> None:
    print(f"| {name} | {bits[counted].sum() / counted.sum():.3f} | {bits[text].sum() / text.sum():.3f} | {seconds:.0f} s |",
          flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="+", help="the run's text file(s)")
    p.add_argument("--model", help="a run directory, checkpoint or shipped model: its text options, split and vocabulary")
    p.add_argument("--convert", help="without --model: OpenCC conversion of the text (as zhrnn train --convert)")
    p.add_argument("--labels", action="store_true", help="without --model: paragraphs start with 'label<TAB>' (as zhrnn train --labels)")
    p.add_argument("--orders", default="3,5", help="n-gram orders (default 3,5)")
    p.add_argument("--split", choices=SPLITS, help="hold out this way instead of as the run did: an old model, "
                   "trained on the tail, scored on the held-out paragraphs a new run uses")
    args = p.parse_args(argv)

    corpus_cfg, cfg, model = CorpusConfig(convert=args.convert, labels=args.labels), TrainConfig(), None
    choose = lambda built, info: built  # noqa: E731 (the text's own vocabulary, as a new run builds it)
    if args.model:
        model = TextModel.from_checkpoint(args.model, counts=False)  # the network alone, beside the counts
        corpus_cfg = CorpusConfig(**(model.info.get("corpus_config") or {}))
        cfg = TrainConfig.from_dict(model.info.get("train_config") or {})
        choose = lambda built, info: model.tokenizer  # noqa: E731 (the model's vocabulary, as a resumed run keeps it)
    if args.split:
        cfg = replace(cfg, split=args.split)
    if cfg.level != "char":
        raise SystemExit("kneser_ney.py: char-level runs only")
    start = time.perf_counter()
    data = encode_corpus(args.corpus, corpus_cfg, cfg.level, cfg.min_count, cfg.max_vocab, choose,
                         labels=model.tokenizer.labels if model else None, cache=cfg.cache_dir)
    split = split_ids(data.ids, cfg.seq_length, cfg.val_fraction, cfg.split, data.tokenizer)
    if split.val is None:
        raise SystemExit("kneser_ney.py: the text is too short for a validation part")
    tok = data.tokenizer
    rows = eval_streams(split.val, cfg.seq_length, cfg.eval_tokens)  # (s, L+1), as Trainer.evaluate reads them
    starts, length = stream_starts(len(split.val), cfg.seq_length, cfg.eval_tokens)
    positions = (starts[:, None] + np.arange(1, length + 1)).flatten()  # (s*L,) where each target stands, row after row
    val = np.asarray(split.val, dtype=np.int64)
    targets = val[positions]
    counted = tok.char_lengths()[targets] > 0  # labels are given, not predicted
    text = counted & (targets != tok.marker_id) & (targets != tok.index.get("\n", -1))
    print(f"{', '.join(args.corpus)}: {len(split.train):,} training and {len(split.val):,} validation tokens "
          f"({split.describe()}), vocabulary {len(tok):,}; {counted.sum():,} targets scored, "
          f"{text.sum():,} of them text characters; prepared in {time.perf_counter() - start:.0f} s")
    print(f"options: {asdict(corpus_cfg)}, seq_length {cfg.seq_length}, eval_tokens {cfg.eval_tokens:,}\n")
    print("| model | val_bpc | val_text_bpc | time |")
    print("|---|---|---|---|")
    train = split.train.astype(np.int64).tolist()
    history = val.tolist()
    for order in map(int, args.orders.split(",")):
        start = time.perf_counter()
        kn = KneserNey(train, order, len(tok))
        kn_bits = np.array([-math.log2(kn.prob(tuple(history[max(0, i - order + 1): i]), history[i]))
                            for i in positions.tolist()])
        report(f"Kneser-Ney {order}-gram", kn_bits, counted, text, time.perf_counter() - start)
    if model is not None:
        start = time.perf_counter()
        step = model.info.get("step")
        bits = model_bits(model, rows, cfg)
        report(f"{args.model} (step {step})", bits, counted, text, time.perf_counter() - start)
        mixture(bits, kn_bits, order, rows.size(0), counted, text)


def mixture(model: np.ndarray, kn: np.ndarray, order: int, rows: int, counted: np.ndarray, text: np.ndarray) -> None:
    """The model and the last n-gram interpolated, p = w p_model + (1 - w) p_ngram: the weight
    chosen on the first half of the streams (by text characters), every figure of the three on the
    second half, so the mixture is not judged on the text its weight was fitted to."""
    half = np.zeros_like(counted)
    half[len(half) // rows * (rows // 2):] = True  # rows are row after row: the later streams
    fit, held = text & ~half, text & half

    def mixed(w: float) -> np.ndarray:
        return -np.log2(w * np.exp2(-model) + (1 - w) * np.exp2(-kn))

    weights = np.linspace(0.05, 1.0, 20)
    w = weights[np.argmin([mixed(w)[fit].mean() for w in weights])]
    print(f"\nInterpolated with the Kneser-Ney {order}-gram, weight {w:.2f} on the model (chosen on the first "
          f"{rows // 2} streams); figures on the other {rows - rows // 2}:\n")
    print("| model | val_bpc | val_text_bpc |\n|---|---|---|")
    for name, bits in (("the model", model), (f"Kneser-Ney {order}-gram", kn), ("mixture", mixed(w))):
        c, t = counted & half, held
        print(f"| {name} | {bits[c].sum() / c.sum():.3f} | {bits[t].sum() / t.sum():.3f} |", flush=True)


if __name__ == "__main__":
    main()
