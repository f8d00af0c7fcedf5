"""How much the counts give at each size (issue 29): a model's held-out figures with counts of
several orders, pruned to several sizes, counted from its own training split.

    python benchmarks/counts_size.py pretrained/唐诗.pt 唐诗.txt --orders 5,3 --mb 48,20,6

The text is read, split and scored as the model's run did (training.counting.run_split); the network is
scored once, and each count model beside it on the same targets: bits per text character of the
counts alone and of the mixture (each half of the streams scored with the weights fitted on the
other half), and the counts' size as saved.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn import checkpoint  # noqa: E402
from zhrnn.counts import Counts  # noqa: E402
from zhrnn.model import network  # noqa: E402
from zhrnn.training.counting import run_split  # noqa: E402
from zhrnn.training.validation import target_nats  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("text", nargs="+")
    ap.add_argument("--orders", default="5,3")
    ap.add_argument("--mb", default="48,20,6", help="sizes to prune to, in MB as saved")
    args = ap.parse_args()
    state = checkpoint.load(args.model)
    split, val = run_split(state, args.text)  # read and split as the model's run did
    tok_size = val.vocab_size
    nats = target_nats(network(state), val.rows, val.seq_length)
    print(f"network: {val.bpc(nats)[1]:.4f} bits per text character")
    print("| order | at most | entries | size as saved | mixture | counts alone | weights | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for order in map(int, args.orders.split(",")):
        for most in map(float, args.mb.split(",")):
            began = time.perf_counter()
            counts = Counts.build(split.train, tok_size, order, max_bytes=int(most * 1e6))
            val.counts, val._counted = counts, None
            mixed, weights = val._mixture(nats)
            saved = counts.state_dict()
            size = sum(t.numel() * t.element_size() for level in saved["levels"] for t in level.values())
            alone = val.bpc(-torch.log(val._counted[0]))[1]
            print(f"| {order} | {most:g} MB | {counts.num_entries():,} | {size / 1e6:.1f} MB | {val.bpc(mixed)[1]:.4f} | "
                  f"{alone:.4f} | {', '.join(f'{w:.2f}' for w in weights.tolist())} | "
                  f"{time.perf_counter() - began:.1f} |", flush=True)


if __name__ == "__main__":
    main()
