"""Fine-tuning a shipped model vs training from scratch on a small corpus, same steps and time.

    python benchmarks/finetune.py --data ../shared/corpora/chinese-poetry [--author 苏轼] [--base 唐诗]

The corpus: one poet's 词 from 全宋词 (苏轼: a few hundred), shuffled (seed 0), the last 10% held
out. The shipped 唐诗 model never saw 宋词, so the held-out 词 are new to both runs. Both runs use
the same architecture (the base model's), steps, batch and seed. The fine-tuned model keeps the
base's 6.5k-character vocabulary (plus the new characters), so its steps cost more than those of
a scratch model whose vocabulary is only this poet's: we print validation bits per character at
every evaluation with the minutes elapsed, and compare the runs at equal wall time.
--report-only prints the tables again from the run directories.
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
from zhrnn.text.poetry import BuildConfig, build  # noqa: E402


def curve(run_dir: Path) -> list[dict]:
    """The run's evaluations, each with the minutes since training began (run.json is written then)."""
    began = (run_dir / "run.json").stat().st_mtime
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{**r, "minutes": (r["time"] - began) / 60} for r in records]


def report(runs: dict[str, list[dict]]) -> None:
    names = list(runs)
    print("\n| step | " + " | ".join(f"{n}: val bpc (min)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for i, record in enumerate(runs[names[0]]):
        cells = [f"{runs[n][i]['val_bpc']:.3f} ({runs[n][i]['minutes']:.1f})" for n in names]
        print(f"| {record['step']} | " + " | ".join(cells) + " |")
    budget = min(r[-1]["minutes"] for r in runs.values())  # the shorter run's wall time
    print(f"\nBest validation bpc within {budget:.1f} min (the shorter run's time):")
    for n in names:
        print(f"- {n}: {min(r['val_bpc'] for r in runs[n] if r['minutes'] <= budget + 1e-9):.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the chinese-poetry dataset directory")
    p.add_argument("--author", default="苏轼")
    p.add_argument("--base", default="唐诗", help="the model to fine-tune (a shipped name or a checkpoint)")
    p.add_argument("--iters", type=int, default=400)
    # one rate for both (the fine-tuning default; a short run from scratch would get 8e-3 by default)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--out", default="runs/finetune-benchmark")
    p.add_argument("--report-only", action="store_true", help="print the tables of finished runs")
    args = p.parse_args()
    out = Path(args.out)
    names = ("scratch", f"init-from {args.base}")
    if args.report_only:
        report({n: curve(out / n.replace(" ", "-")) for n in names})
        return

    text, count = build(["全宋词"], BuildConfig(authors=(args.author,)), data=args.data)
    lines = text.splitlines()
    random.Random(0).shuffle(lines)
    n_val = max(1, len(lines) // 10)
    held, kept = lines[:n_val], lines[n_val:]
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / f"{args.author}.txt"
    corpus.write_text("\n".join(kept + held) + "\n", encoding="utf-8")  # held-out 词 last: the validation tail
    val_fraction = (sum(map(len, held)) + 2 * len(held)) / (sum(map(len, lines)) + 2 * len(lines))  # + '^' and '\n'
    print(f"{args.author}: {len(kept)} 词 for training, {len(held)} held out ({val_fraction:.1%} of the text)", flush=True)

    common = dict(iters=args.iters, learning_rate=args.learning_rate, save_freq=args.eval_every, val_fraction=val_fraction, split="tail", progress=False)
    for name, extra in zip(names, ({}, {"init_from": args.base})):
        began = time.perf_counter()
        zhrnn.train(corpus, out_dir=str(out / name.replace(" ", "-")), **extra, **common)
        print(f"{name}: {args.iters} steps in {(time.perf_counter() - began) / 60:.1f} min", flush=True)
    report({n: curve(out / n.replace(" ", "-")) for n in names})


if __name__ == "__main__":
    main()
