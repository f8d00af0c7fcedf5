"""Decoding: characters/second of generate_many for a few settings, and a digest of the texts,
for the zhrnn of a checkout. Run it on two checkouts, alternating, to see whether a change to
decoding altered its speed or its output (equal digests: the very same texts).

    python benchmarks/decoding.py                    # this checkout
    python benchmarks/decoding.py --repo ../old      # another (e.g. git worktree add ../old <rev>)
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

CASES = [  # name, shipped model, generate_many options
    ("唐诗, 64 streams, defaults", "唐诗", dict(num=64, start="春", length=200, seed=1)),
    ("唐诗, 64 streams, repetition penalty 1.2", "唐诗", dict(num=64, start="春", length=200, seed=1, repetition_penalty=1.2)),
    ("唐诗, 1 stream, defaults", "唐诗", dict(num=1, start="春", length=200, seed=1)),
    ("宋词, 64 streams, --label 浣溪沙", "宋词", dict(num=64, start="", length=200, seed=1, label="浣溪沙")),
    ("唐诗, 64 streams, --form 七言律诗 --rhyme", "唐诗", dict(num=64, start="", length=200, seed=1, form="七言律诗", rhyme=True)),
    ("唐诗, --beam 5", "唐诗", dict(num=1, start="春", length=200, beam=5)),
    ("唐诗, 8 streams, --form 七言律诗 --candidates 8", "唐诗", dict(num=8, start="", seed=1, form="七言律诗", candidates=8)),
]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout to measure")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per case; the median is reported")
    args = p.parse_args(argv)
    sys.path.insert(0, str(args.repo.resolve()))
    import zhrnn  # the checkout's, not an installed one

    print(f"# {Path(zhrnn.__file__).parent}")
    models = {}
    for name, model, options in CASES:
        m = models.setdefault(model, zhrnn.load(model))
        options = dict(options)
        num = options.pop("num")
        texts = m.generate_many(num, **options)  # warm-up, and the texts the digest is of
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            m.generate_many(num, **options)
            times.append(time.perf_counter() - start)
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:10]
        print(f"{name}\t{sum(map(len, texts)) / statistics.median(times):,.0f} chars/s\t{digest}", flush=True)


if __name__ == "__main__":
    main()
