"""Do context labels help? Two models on the same 词, one told each 词's 词牌, one not.

    python benchmarks/labels.py --data ../shared/corpora/chinese-poetry [--top 10] [--iters 600]
    python benchmarks/labels.py --model 宋词 --text 宋词.tsv [--top 10]   # a trained model, its own split

The 词 of the `top` most common 词牌 in 全宋词 are shuffled (seed 0) and split: 5% held out.
Model A trains on "词牌<TAB>text" lines with --labels, model B on the same lines without the
label; same architecture, steps and seed. On the held-out 词 we report bits per character of
the text (the label itself is given, not scored) per 词牌: A with the right label, A with a wrong
one (the next 词牌 in the list: does the label steer?), and B.

With --model, one labelled model (the shipped 宋词, or a run) is read on the 词 its own run held
out (its split of --text, the text it trained on), for the `top` most common 词牌 among them: told
the right 词牌, a wrong one (the next in the list), and not told, where the label is summed out
under the model's own guess, p(text) = sum over labels l of p(l | ^) p(text | l). The figures count
every token after the label up to the next paragraph (the 词 and its line break), per text character.
"""
from __future__ import annotations

import argparse
import random
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhrnn  # noqa: E402
from zhrnn.text.pipeline import CorpusConfig  # noqa: E402
from zhrnn.text.poetry import BuildConfig, build  # noqa: E402
from zhrnn.generation.score import score_text  # noqa: E402
from zhrnn.training.encoded import encode_corpus  # noqa: E402
from zhrnn.training.plan import TrainConfig  # noqa: E402
from zhrnn.training.split import split_ids  # noqa: E402


def bpc(model, lines: list[str]) -> float:
    """Bits per character of the lines' text (a label before a tab is context, not scored)."""
    bits = chars = 0.0
    for line in lines:
        s = score_text(model.model, model.tokenizer, line, model.info["corpus_config"])
        bits, chars = bits + sum(s.bits), chars + s.chars
    return bits / chars


def held_out(model, text: str) -> list[np.ndarray]:
    """The paragraphs (marker, label, 词, line break) that the model's run held out of text."""
    corpus_cfg = CorpusConfig(**model.info["corpus_config"])
    cfg = TrainConfig.from_dict(model.info["train_config"])
    data = encode_corpus([text], corpus_cfg, cfg.level, cfg.min_count, cfg.max_vocab, lambda built, info: model.tokenizer,
                         labels=model.tokenizer.labels, cache=cfg.cache_dir)
    split = split_ids(data.ids, cfg.seq_length, cfg.val_fraction, cfg.split, data.tokenizer)
    print(f"{text}: {split.describe()}", flush=True)
    val = np.asarray(split.val, dtype=np.int64)
    starts = np.flatnonzero(val == model.tokenizer.marker_id)
    return [p for p in np.split(val, starts[1:]) if len(p) > 2 and p[0] == model.tokenizer.marker_id]


@torch.no_grad()
def after_label_nats(model, paragraph: np.ndarray, labels: list[int]) -> torch.Tensor:
    """(len(labels),) nats of each token after the label, the paragraph read after each of labels."""
    rows = torch.as_tensor(paragraph).repeat(len(labels), 1)  # (n, T)
    rows[:, 1] = torch.as_tensor(labels)
    model.model.eval()
    nats, _ = model.model(rows[:, :-1], targets=rows[:, 1:])  # (n*(T-1),)
    return nats.double().view(len(labels), -1)[:, 1:].sum(1)  # targets from the first after the label


def trained_model(args) -> None:
    model = zhrnn.load(args.model)
    tok = model.tokenizer
    label_ids = tok.label_ids
    name_of = {tok.index[t]: name for name, t in tok.labels.items()}
    paragraphs = held_out(model, args.text)
    text_lengths = tok.text_lengths()
    with torch.no_grad():  # p(label | ^), the model's own guess when it is not told
        logits, _ = model.model(torch.tensor([[tok.marker_id]]))
        guess = torch.log_softmax(logits[0, -1].double(), -1)[label_ids]  # adaptive logits are log-probabilities too
    counts = Counter(name_of[int(p[1])] for p in paragraphs if int(p[1]) in name_of)
    top = [name for name, _ in counts.most_common(args.top)]
    print(f"{len(paragraphs)} held-out 词, {len(counts)} of its 词牌 among them; the {len(top)} most common, "
          f"at most {args.per} 词 each:\n")
    print("| 词牌 | held-out 词 | right label | wrong label | not told (label summed out) |")
    print("|---|---|---|---|---|")
    rows = []
    for i, name in enumerate(top):
        right, wrong = tok.index[tok.labels[name]], tok.index[tok.labels[top[(i + 1) % len(top)]]]
        bits = np.zeros(3)
        chars = 0
        for p in [p for p in paragraphs if int(p[1]) == right][: args.per]:
            nats = after_label_nats(model, p, [right, wrong])
            every = after_label_nats(model, p, label_ids)  # (labels,)
            summed = -torch.logsumexp(guess - every, 0)
            bits += np.array([nats[0].item(), nats[1].item(), summed.item()]) / math.log(2)
            chars += int(text_lengths[p[2:]].sum())
        rows.append((name, min(counts[name], args.per), *(bits / chars)))
        print("| {} | {} | {:.3f} | {:.3f} | {:.3f} |".format(*rows[-1]), flush=True)
    total = sum(r[1] for r in rows)
    means = [sum(r[1] * r[k] for r in rows) / total for k in (2, 3, 4)]
    print("| all (weighted by 词) | {} | {:.3f} | {:.3f} | {:.3f} |".format(total, *means))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="the chinese-poetry dataset directory (to train the two models)")
    p.add_argument("--model", help="instead, read this labelled model on its run's held-out 词 (needs --text)")
    p.add_argument("--text", help="with --model: the text the model trained on (zhrnn corpus build 全宋词 --label rhythmic)")
    p.add_argument("--top", type=int, default=10, help="most common 词牌 to keep")
    p.add_argument("--per", type=int, default=20, help="with --model: at most this many held-out 词 of each 词牌 "
                   "(summing the label out reads each 词 once per label)")
    p.add_argument("--iters", type=int, default=600)
    p.add_argument("--out", default="runs/labels-benchmark")
    args = p.parse_args()
    if args.model:
        if not args.text:
            p.error("--model needs --text")
        return trained_model(args)
    if not args.data:
        p.error("give --data (train two models) or --model with --text")

    text, _ = build(["全宋词"], BuildConfig(label="rhythmic"), data=args.data)
    lines = [line for line in text.splitlines() if "\t" in line]
    top = [name for name, _ in Counter(line.split("\t")[0] for line in lines).most_common(args.top)]
    lines = [line for line in lines if line.split("\t")[0] in top]
    random.Random(0).shuffle(lines)
    n_val = len(lines) // 20
    train_lines, val_lines = lines[n_val:], lines[:n_val]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "labelled.tsv").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    (out / "plain.txt").write_text("\n".join(line.split("\t", 1)[1] for line in train_lines) + "\n", encoding="utf-8")
    print(f"{len(train_lines)} 词 for training, {len(val_lines)} held out, {len(top)} 词牌", flush=True)

    common = dict(iters=args.iters, save_freq=args.iters, val_fraction=0.02, split="tail", progress=False)
    models, times = {}, {}
    for name, corpus, extra in (("labelled", "labelled.tsv", {"labels": True}), ("plain", "plain.txt", {})):
        began = time.perf_counter()
        models[name] = zhrnn.train(out / corpus, out_dir=str(out / name), **extra, **common)
        times[name] = time.perf_counter() - began
        print(f"{name}: {args.iters} steps in {times[name] / 60:.1f} min", flush=True)

    print("\n| 词牌 | held-out 词 | labelled, right label | labelled, wrong label | no labels |")
    print("|---|---|---|---|---|")
    rows = []
    for i, label in enumerate(top):
        held = [line for line in val_lines if line.split("\t")[0] == label]
        wrong = top[(i + 1) % len(top)]
        text_only = [line.split("\t", 1)[1] for line in held]
        rows.append((label, len(held), bpc(models["labelled"], held),
                     bpc(models["labelled"], [f"{wrong}\t{t}" for t in text_only]), bpc(models["plain"], text_only)))
        print("| {} | {} | {:.3f} | {:.3f} | {:.3f} |".format(*rows[-1]), flush=True)
    total = sum(r[1] for r in rows)
    means = [sum(r[1] * r[k] for r in rows) / total for k in (2, 3, 4)]
    print("| all (weighted by 词) | {} | {:.3f} | {:.3f} | {:.3f} |".format(total, *means))


if __name__ == "__main__":
    main()
