"""Batch-1 sampling speed with a run's counts against without them, each measurement paired with
its baseline (issue 29): one TextModel with the counts and one without, each writing --len
characters from --start --repeats times (seeds 0, 1, ...) in turns; the fastest of each. On a
shared machine single timings swing widely; the pair, taken in turns, moves together.

    python benchmarks/counts_speed.py runs/recipes/唐诗-5m runs/recipes/评论-5m
    # to compare two versions of the code, run it from a checkout of each
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn.api import TextModel  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="+", help="run directories or checkpoints that hold counts")
    p.add_argument("--len", dest="length", type=int, default=300)
    p.add_argument("--start", default="我")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    for path in args.model:
        mixed, alone = TextModel.from_checkpoint(path, counts=True), TextModel.from_checkpoint(path, counts=False)
        times = {mixed: [], alone: []}
        for seed in range(args.repeats):
            for model in (mixed, alone):
                began = time.perf_counter()
                model.generate_many(1, start=args.start, length=args.length, seed=seed)
                times[model].append(time.perf_counter() - began)
        with_counts, without = (args.length / min(times[m]) for m in (mixed, alone))
        print(f"{path}: with counts {with_counts:,.0f} chars/s, network alone {without:,.0f}: "
              f"{100 * (with_counts / without - 1):+.0f}%", flush=True)


if __name__ == "__main__":
    main()
