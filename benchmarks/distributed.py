"""Training speed: one process vs N processes (torchrun / DDP) on this machine, same global batch.

    python benchmarks/distributed.py [--corpus corpora/唐诗选.txt] [--nproc 2] [--batch 32 64] [--iters 200]
    python benchmarks/distributed.py --curve [--corpus ...] [--iters 200]

Each configuration trains the default model (GRU 2x256) from scratch with `zhrnn train`:
one process with all cores as threads, and `--nproc-per-node N` with the cores shared out
(cores / N threads each), both with the same global batch, so both take the same steps.
Speed is measured between the two checkpoints of the run (step iters/2 and iters), which
leaves out start-up, the first steps and the corpus preparation. The runs alternate, and each
configuration's median over --repeat runs is reported. On a GPU machine, --device cuda runs
one process per GPU.

--curve instead trains the same model twice with dropout 0 and a validation part, once with one
process and once with N, and prints both loss curves (they should be one curve).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def speed(run_dir: Path, batch: int, seq: int) -> float:
    """Characters per second between the run's two checkpoints (char level: 1 token = 1 character)."""
    a, b = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()][-2:]
    return (b["step"] - a["step"]) * batch * seq / (b["time"] - a["time"])


def train(corpus: str, nproc: int, out: Path, args, *options: str) -> Path:
    cores = os.cpu_count() or 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(max(1, cores // nproc))}
    cmd = [sys.executable, "-m", "zhrnn", "train", corpus, "--iter", str(args.iters), "--device", args.device,
           "--len", "1", "--out-dir", str(out), "-q", *options]
    if nproc > 1:
        cmd += ["--nproc-per-node", str(nproc)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return out


def run(corpus: str, nproc: int, batch: int, args, out: Path) -> float:
    train(corpus, nproc, out, args, "--save-freq", str(args.iters // 2), "--batch-size", str(batch), "--val-fraction", "0")
    return speed(out, batch, 100)


def curves(args, tmp: Path) -> None:
    """One process vs N, same global batch (the first --batch), dropout 0: the two loss curves."""
    logs = {}
    for nproc in (1, args.nproc):
        out = train(args.corpus, nproc, tmp / f"curve-n{nproc}", args, "--save-freq", str(max(1, args.iters // 10)),
                    "--batch-size", str(args.batch[0]), "--dropout", "0")
        logs[nproc] = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    print(f"\n| step | train loss, 1 process | {args.nproc} processes | val bpc, 1 process | {args.nproc} processes |")
    print("|---|---|---|---|---|")
    for a, b in zip(logs[1], logs[args.nproc]):
        print(f"| {a['step']} | {a['train_loss']:.4f} | {b['train_loss']:.4f} | {a['val_bpc']:.4f} | {b['val_bpc']:.4f} |")
    pairs = list(zip(logs[1], logs[args.nproc]))
    print(f"\nlargest difference: train loss {max(abs(a['train_loss'] - b['train_loss']) for a, b in pairs):.5f} nats, "
          f"val {max(abs(a['val_bpc'] - b['val_bpc']) for a, b in pairs):.5f} bpc")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=str(REPO / "corpora" / "唐诗选.txt"))
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--curve", action="store_true", help="compare the loss curves of 1 and N processes")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.corpus}; "
          f"GRU 2x256 (defaults), seq 100, {args.iters} steps" + ("" if args.curve else f", median of {args.repeat}"))
    if args.curve:
        with tempfile.TemporaryDirectory() as tmp:
            curves(args, Path(tmp))
        return
    print("\n| global batch | 1 process (chars/s) | " f"{args.nproc} processes (chars/s) | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batch:
            found = {1: [], args.nproc: []}
            for i in range(args.repeat):
                for nproc in found:
                    found[nproc].append(run(args.corpus, nproc, batch, args, Path(tmp) / f"b{batch}-n{nproc}-{i}"))
            one, many = (statistics.median(found[n]) for n in found)
            print(f"| {batch} | {one:,.0f} | {many:,.0f} | {many / one:.2f} |", flush=True)


if __name__ == "__main__":
    main()
