"""Sampling speed: characters/second with one stream and with many, time from the command's
start to the first character, model load time, float32 against int8 weights.

    python benchmarks/sampling.py                # the shipped 唐诗 model and a 2x512 GRU
    python benchmarks/sampling.py --model pretrained/现代文.pt --no-int8   # a model of its own, with and
                                                  # without the n-gram counts it holds (--no-counts)

One sampling step reads every weight of the RNN and the output layer once (and one row of the
embedding). The "DRAM reference" is those bytes over the read bandwidth of memory measured in the
same run: the speed of a step bound by reading its weights from memory (weights this small may
also sit in the caches, which are faster still). The 2x512 GRU has random weights (speed only); the quality of
int8 is the bits per character the shipped model gives corpora/唐诗选.txt with either weights.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from zhrnn import checkpoint
from zhrnn.api import TextModel
from zhrnn.model import CharRNN, ModelConfig
from zhrnn.generation.score import score_text

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ROOT / "corpora" / "唐诗选.txt"


def read_bandwidth(gigabytes: float = 1.0) -> float:
    """GB/s of summing a float32 tensor far larger than the caches."""
    x = torch.ones(int(gigabytes * 2**30 / 4))
    x.sum()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        x.sum()
        times.append(time.perf_counter() - start)
    return x.numel() * 4 / min(times) / 1e9


def weight_bytes(model: CharRNN, int8: bool) -> int:
    """Bytes one step reads: every weight but the embedding (of which it reads one row). With
    int8 the weight matrices of the RNN and output layers take a byte per value, biases stay float."""
    total = 0
    for name, p in model.named_parameters():
        if not name.startswith("embedding"):
            total += p.numel() * (1 if int8 and "weight" in name else p.element_size())
    return total


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.inference_mode()
def model_step(model: CharRNN, batch: int, steps: int = 200) -> float:
    """Seconds of one forward step at this batch, the hidden state carried: the model alone."""
    x = torch.ones(batch, 1, dtype=torch.long)
    _, hidden = model(x)

    def run():
        h = hidden
        for _ in range(steps):
            _, h = model(x, h)

    return median_time(run, 3) / steps


def first_character(path: Path, int8: bool, counts: bool = True) -> tuple[float, float]:
    """Seconds from starting `zhrnn sample --stream` to its first character, and to its end."""
    cmd = [sys.executable, "-m", "zhrnn", "sample", "--model", str(path), "--start", "春", "--len", "100",
           "--stream", "--seed", "1"] + (["--int8"] if int8 else []) + ([] if counts else ["--no-counts"])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    proc.stdout.read(1)
    first = time.perf_counter() - start
    proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return first, time.perf_counter() - start


def measure(name: str, path: Path, int8: bool, length: int, streams: int, bandwidth: float,
            counts: bool = True) -> dict:
    load = median_time(lambda: TextModel.from_checkpoint(path, int8=int8, counts=counts), 3)
    tm = TextModel.from_checkpoint(path, int8=int8, counts=counts)
    bytes_ = weight_bytes(TextModel.from_checkpoint(path, counts=False).model, int8)
    one = median_time(lambda: tm.generate_many(1, start="春", length=length, seed=1), 3)
    many = median_time(lambda: tm.generate_many(streams, start="春", length=length, seed=1), 3)
    step1 = model_step(tm.model, 1)
    first, whole = first_character(path, int8, counts)
    row = {"model": name, "int8": int8, "weights_mb": bytes_ / 1e6, "load_s": load, "first_char_s": first,
           "command_s": whole, "dram_cps": bandwidth * 1e9 / bytes_, "model_step_cps": 1 / step1,
           "one_cps": length / one, "many_cps": streams * length / many}
    row["ratio"] = row["many_cps"] / row["one_cps"]
    if name.startswith("唐诗") and HELD_OUT.exists():
        row["bpc"] = score_text(tm.model, tm.tokenizer, HELD_OUT.read_text(encoding="utf-8"),
                                (tm.info.get("corpus_config") or {})).bpc
    print(row, flush=True)
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--len", dest="length", type=int, default=200, help="characters per text (default 200)")
    p.add_argument("--streams", type=int, default=64, help="texts generated as one batch (default 64)")
    p.add_argument("--model", action="append", help="measure this checkpoint instead (repeatable); one holding "
                   "n-gram counts is measured with them and without (--no-counts)")
    p.add_argument("--no-int8", dest="int8", action="store_false", help="float32 weights only")
    args = p.parse_args(argv)

    bandwidth = read_bandwidth()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; read bandwidth {bandwidth:.1f} GB/s", flush=True)
    if args.model:
        rows = []
        for path in args.model:
            has_counts = checkpoint.load(path).get("counts") is not None
            for counts in ((True, False) if has_counts else (False,)):
                for int8 in ((False, True) if args.int8 else (False,)):
                    name = f"{Path(path).stem}{' with counts' if counts else ' network alone' if has_counts else ''}"
                    rows.append(measure(name, Path(path), int8, args.length, args.streams, bandwidth, counts))
        table(rows, args.streams)
        return
    shipped = TextModel.from_checkpoint("唐诗")
    with tempfile.TemporaryDirectory() as tmp:
        # a 2x512 GRU on the shipped model's vocabulary (random weights: its speed is the question)
        torch.manual_seed(0)
        big = CharRNN(ModelConfig(vocab_size=len(shipped.tokenizer), hidden_size=512, embedding_size=256))
        big_path = checkpoint.save({"model": big.state_dict(), "model_config": vars(big.config),
                                    "tokenizer": shipped.tokenizer.to_dict()}, Path(tmp) / "gru512.pt")
        models = {f"唐诗 (shipped, GRU 2x{shipped.model.config.hidden_size}, {shipped.model.config.output_layer})": shipped.path,
                  f"GRU 2x512 ({big.config.output_layer})": big_path}
        rows = [measure(name, path, int8, args.length, args.streams, bandwidth)
                for name, path in models.items() for int8 in ((False, True) if args.int8 else (False,))]
    table(rows, args.streams)


def table(rows: list[dict], streams: int) -> None:
    print(f"\n| model | weights | load | first char | 1 stream | DRAM reference | model alone | {streams} streams | × | bpc |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        bpc = f"{r['bpc']:.3f}" if "bpc" in r else "–"
        print(f"| {r['model']}{' int8' if r['int8'] else ''} | {r['weights_mb']:.1f} MB | {r['load_s']:.2f} s "
              f"| {r['first_char_s']:.2f} s | {r['one_cps']:,.0f} | {r['dram_cps']:,.0f} | {r['model_step_cps']:,.0f} "
              f"| {r['many_cps']:,.0f} | {r['ratio']:.0f}× | {bpc} |")


if __name__ == "__main__":
    main()
