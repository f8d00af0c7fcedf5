"""Fine-tuning a shipped model vs training from scratch on a small corpus, same steps and time.

    python benchmarks/finetune.py --data ../shared/corpora/chinese-poetry [--author 苏轼] [--base 唐诗]

The corpus: one poet's 词 from 全宋词 (苏轼: a few hundred), shuffled (seed 0), the last 10% held
out. The shipped 唐诗 model never saw 宋词, so the held-out 词 are new to both runs. Both runs use
the same architecture (the base model's), steps, batch and seed; we print validation bits per
character at every evaluation and the wall time of each run.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhrnn  # noqa: E402
from zhrnn.poetry import BuildConfig, build  # noqa: E402


def curve(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the chinese-poetry dataset directory")
    p.add_argument("--author", default="苏轼")
    p.add_argument("--base", default="唐诗", help="the model to fine-tune (a shipped name or a checkpoint)")
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--out", default="runs/finetune-benchmark")
    args = p.parse_args()

    text, count = build(["全宋词"], BuildConfig(authors=(args.author,)), data=args.data)
    lines = text.splitlines()
    random.Random(0).shuffle(lines)
    n_val = max(1, len(lines) // 10)
    held, kept = lines[:n_val], lines[n_val:]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / f"{args.author}.txt"
    corpus.write_text("\n".join(kept + held) + "\n", encoding="utf-8")  # held-out 词 last: the validation tail
    val_fraction = (sum(map(len, held)) + 2 * len(held)) / (sum(map(len, lines)) + 2 * len(lines))  # + '^' and '\n'
    print(f"{args.author}: {len(kept)} 词 for training, {len(held)} held out ({val_fraction:.1%} of the text)", flush=True)

    common = dict(iters=args.iters, save_freq=args.eval_every, val_fraction=val_fraction, progress=False)
    runs = {}
    for name, extra in (("scratch", {}), (f"init-from {args.base}", {"init_from": args.base})):
        run_dir = out / name.replace(" ", "-")
        began = time.perf_counter()
        zhrnn.train(corpus, out_dir=str(run_dir), **extra, **common)
        runs[name] = (time.perf_counter() - began, curve(run_dir))
        print(f"{name}: {args.iters} steps in {runs[name][0] / 60:.1f} min", flush=True)

    names = list(runs)
    print("\n| step | " + " | ".join(f"{n} (val bpc)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for i, record in enumerate(runs[names[0]][1]):
        print(f"| {record['step']} | " + " | ".join(f"{runs[n][1][i]['val_bpc']:.3f}" for n in names) + " |")
    print("| best | " + " | ".join(f"{min(r['val_bpc'] for r in runs[n][1]):.3f}" for n in names) + " |")
    print("| wall time | " + " | ".join(f"{runs[n][0] / 60:.1f} min" for n in names) + " |")


if __name__ == "__main__":
    main()
