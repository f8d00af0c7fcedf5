"""Do context labels help? Two models on the same 词, one told each 词's 词牌, one not.

    python benchmarks/labels.py --data ../shared/corpora/chinese-poetry [--top 10] [--iters 600]

The 词 of the `top` most common 词牌 in 全宋词 are shuffled (seed 0) and split: 5% held out.
Model A trains on "词牌<TAB>text" lines with --labels, model B on the same lines without the
label; same architecture, steps and seed. On the held-out 词 we report bits per character of
the text (the label itself is given, not scored) per 词牌: A with the right label, A with a wrong
one (the next 词牌 in the list: does the label steer?), and B.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhrnn  # noqa: E402
from zhrnn.text.poetry import BuildConfig, build  # noqa: E402
from zhrnn.generation.score import score_text  # noqa: E402


def bpc(model, lines: list[str]) -> float:
    """Bits per character of the lines' text (a label before a tab is context, not scored)."""
    bits = chars = 0.0
    for line in lines:
        s = score_text(model.model, model.tokenizer, line, model.info["corpus_config"])
        bits, chars = bits + sum(s.bits), chars + s.chars
    return bits / chars


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the chinese-poetry dataset directory")
    p.add_argument("--top", type=int, default=10, help="most common 词牌 to keep")
    p.add_argument("--iters", type=int, default=600)
    p.add_argument("--out", default="runs/labels-benchmark")
    args = p.parse_args()

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
