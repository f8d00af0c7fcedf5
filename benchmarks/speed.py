"""Training at a fixed wall-clock budget: characters/second and validation bits per character
for zhrnn and the two baselines of benchmarks/baselines.py, in one run on one machine.

    python benchmarks/speed.py                                  # 全唐诗 (t2s), 5 and 15 minutes
    python benchmarks/speed.py --minutes 1 --only "zhrnn default"   # a quick look

Every configuration trains on the same encoded text (zhrnn's cache), draws its random windows
from the same seed, and is scored on the same validation windows (the first --eval-tokens of the held-out
5%). The baselines train at a constant learning rate, so one run scored at 5 and at 15 minutes
stands for both budgets; zhrnn's schedule (warmup + cosine) is fitted to each budget, so it
trains once per budget. Evaluation time is not counted in the budget.

FLOPs are counted from the matrix multiplies (forward x 3 for forward + backward; the
adaptive softmax's clusters weighted by how often their tokens are targets), and reported
against a float32 matrix-multiply peak measured at the start of the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import BASELINES, BATCH, EMBEDDING, HIDDEN, LAYERS, LEARNING_RATE, SEQ  # noqa: E402
from prepare import build_text  # noqa: E402

from zhrnn.text.pipeline import CorpusConfig  # noqa: E402
from zhrnn.training.batches import Batches  # noqa: E402
from zhrnn.training.split import split_ids  # noqa: E402
from zhrnn.training.build import prepare_run  # noqa: E402
from zhrnn.training.encoded import encode_corpus  # noqa: E402


# zhrnn configurations: name -> options of zhrnn.train
ZHRNN = {
    "zhrnn default": {},
    "zhrnn 2x512 adaptive, batch 64": dict(hidden_size=HIDDEN, embedding_size=EMBEDDING, batch_size=BATCH),
    "zhrnn 2x512 full, batch 64": dict(hidden_size=HIDDEN, embedding_size=EMBEDDING, batch_size=BATCH, output_layer="full"),
}
SPEED_ONLY = {"zhrnn 2x512 full, batch 64"}  # the baseline's own config: its speed is the question
# Trained for the shortest budget only (the loop's speed and its curve are the fused model's;
# a 2-core machine has not the hours for every configuration at every budget)
SHORT = ("GRUCell loop", "zhrnn 2x512 adaptive, batch 64")


def matmul_peak(n: int = 4096, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n matrix multiply: the ceiling the model's FLOPs are held to."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def step_flops(vocab: int, emb: int, hidden: int, layers: int, tokens: int, cutoffs: list[int],
               target_share: Callable[[int, int], float]) -> float:
    """Multiply-add FLOPs of one training step: forward, and twice that for the backward."""
    macs = sum(3 * hidden * ((emb if layer == 0 else hidden) + hidden) for layer in range(layers))
    if not cutoffs:
        macs += hidden * vocab
    else:  # head: the frequent tokens + one logit per cluster; a cluster only for its targets
        edges = cutoffs + [vocab]
        macs += hidden * (cutoffs[0] + len(cutoffs))
        for i in range(len(cutoffs)):
            width = int(hidden // 4.0 ** (i + 1))
            macs += target_share(edges[i], edges[i + 1]) * (hidden * width + width * (edges[i + 1] - edges[i]))
    return 3 * 2 * macs * tokens


@dataclass
class Run:
    name: str
    step: Callable[[], None]
    score: Callable[[], float]  # validation bits per character
    tokens_per_step: int
    flops_per_step: float
    calibrate: Callable[[float, float], None] | None = None  # (budget s, seconds per step) -> fit schedule


def timed(run: Run, budgets: list[float], peak: float) -> list[dict]:
    """Train until each budget (seconds of training, evaluation excluded) and score there."""
    elapsed, steps, out = 0.0, 0, []
    for budget in budgets:
        while elapsed < budget:
            start = time.perf_counter()
            run.step()
            elapsed += time.perf_counter() - start
            steps += 1
            if steps == 8:  # the first steps are slower (allocations): time the next ones
                settled = elapsed
            if steps == 16 and run.calibrate:
                run.calibrate(budget, (elapsed - settled) / 8)
        bpc = run.score()
        speed = steps * run.tokens_per_step / elapsed
        gflops = steps * run.flops_per_step / elapsed / 1e9
        out.append({"config": run.name, "minutes": round(budget / 60, 2), "steps": steps,
                    "chars_per_s": round(speed), "val_bpc": round(bpc, 4), "gflops": round(gflops, 1),
                    "peak_share": round(gflops / peak, 3)})
        print(json.dumps(out[-1], ensure_ascii=False), flush=True)
    return out


def eval_windows(ids: np.ndarray, batch_size: int, seq_length: int, max_tokens: int):
    """Fixed, non-overlapping (B, T+1) windows over the validation ids, each read from a zero
    state: the baselines here carry no state from one call to the next, so zhrnn is scored the
    same way in this benchmark (its trainer carries the state: training/batches.eval_streams)."""
    n = min((len(ids) - 1) // seq_length, max(1, max_tokens // seq_length))
    data = torch.from_numpy(np.asarray(ids[: n * seq_length + 1], dtype=np.int64))  # only what is read
    windows = torch.stack([data[i * seq_length : i * seq_length + seq_length + 1] for i in range(n)])
    return windows.split(batch_size)  # tuple of (b, T+1)


def bits(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], val: np.ndarray, eval_tokens: int) -> float:
    """Bits per character of the same validation windows for every model (char level: a token
    is a character)."""
    nats, count = 0.0, 0
    with torch.no_grad():
        for window in eval_windows(val, BATCH, SEQ, eval_tokens):  # (b, T+1)
            nats += loss(window[:, :-1], window[:, 1:]).double().sum().item()
            count += window[:, 1:].numel()
    return nats / count / math.log(2)


def baseline_run(name: str, vocab: int, train: np.ndarray, val: np.ndarray, eval_tokens: int, share) -> Run:
    torch.manual_seed(0)
    model = BASELINES[name](vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    batches = Batches(train, BATCH, SEQ, torch.device("cpu"), seed=0)

    def step():
        loss = model(*batches.next()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def score():
        model.eval()
        try:
            return bits(model, val, eval_tokens)
        finally:
            model.train()

    flops = step_flops(vocab, EMBEDDING, HIDDEN, LAYERS, BATCH * SEQ, [], share)
    return Run(name, step, score, BATCH * SEQ, flops)


def zhrnn_run(name: str, options: dict, corpus: Path, val: np.ndarray, eval_tokens: int, share, out_dir: Path) -> Run:
    # 2e-3: the rate of the tables (zhrnn's default follows the length of a run now, which calibrate
    # sets only after the build)
    trainer = prepare_run([corpus], {"seed": 0, "learning_rate": 2e-3, **options, "out_dir": str(out_dir), "iters": 10**6})
    m, cfg = trainer.model_cfg, trainer.cfg

    def calibrate(budget: float, seconds_per_step: float):  # the cosine ends at the budget
        trainer.schedule = replace(trainer.schedule, end=max(cfg.warmup + 1, int(budget / seconds_per_step)))

    def score():
        trainer.model.eval()
        try:
            return bits(lambda x, y: trainer.model(x, targets=y)[0], val, eval_tokens)
        finally:
            trainer.model.train()

    tokens = cfg.batch_size * cfg.seq_length
    flops = step_flops(m.vocab_size, m.embedding_size, m.hidden_size, m.num_layers, tokens, m.cutoffs, share)
    print(f"# {name}: {trainer.describe()}", flush=True)
    return Run(name, trainer.train_step, score, tokens, flops, calibrate)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, help="prepared text (default: build 全唐诗, Simplified, from ../shared)")
    p.add_argument("--minutes", type=float, nargs="+", default=[5, 15], help="training budgets (default 5 15)")
    p.add_argument("--speed-minutes", type=float, default=1.0, help="budget of the speed-only configs")
    p.add_argument("--eval-tokens", type=int, default=100_000)
    p.add_argument("--only", nargs="+", help="run only these configurations (names as printed)")
    p.add_argument("--short", nargs="*", default=list(SHORT),
                   help="configurations trained for the shortest budget only (default: %(default)s)")
    p.add_argument("--json", type=Path, help="append the result records here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = args.corpus or build_text(tmp / "全唐诗.txt")
        data = encode_corpus([corpus], CorpusConfig(), "char", 1, None, lambda built, info: built)
        vocab = len(data.tokenizer)
        split = split_ids(data.ids, SEQ, 0.05, "paragraphs", data.tokenizer)  # what zhrnn's trainer holds out
        counts = np.bincount(np.asarray(split.train), minlength=vocab)
        share = lambda lo, hi: counts[lo:hi].sum() / counts.sum()  # noqa: E731
        peak = matmul_peak()
        bf16 = matmul_peak(512, 2, torch.bfloat16)  # whether bf16 could pay on this CPU (it needs AVX-512 BF16 / AMX)
        print(f"# {corpus.name}: {len(data.ids):,} tokens, vocabulary {vocab:,}; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
              f"matmul peak float32 {peak:.1f} GFLOP/s, bfloat16 {bf16:.1f} GFLOP/s", flush=True)
        budgets = sorted(m * 60 for m in args.minutes)
        wanted = lambda name: not args.only or name in args.only  # noqa: E731
        records = []
        for name in BASELINES:
            if wanted(name):
                run = baseline_run(name, vocab, split.train, split.val, args.eval_tokens, share)
                records += timed(run, budgets[:1] if name in args.short else budgets, peak)
        for name, options in ZHRNN.items():
            if not wanted(name):
                continue
            for budget in ([args.speed_minutes * 60] if name in SPEED_ONLY else budgets[:1] if name in args.short else budgets):
                run = zhrnn_run(name, options, corpus, split.val, args.eval_tokens, share, tmp / f"run{len(records)}")
                records += timed(run, [budget], peak)
        for r in records:
            r.update(peak_gflops=round(peak, 1), corpus=corpus.name, vocab=vocab, threads=torch.get_num_threads())
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print("\n| configuration | budget (min) | steps | chars/s | val bpc | GFLOP/s | % of peak |")
        print("|---|---|---|---|---|---|---|")
        for r in records:
            print(f"| {r['config']} | {r['minutes']:g} | {r['steps']} | {r['chars_per_s']:,} | {r['val_bpc']:.3f} "
                  f"| {r['gflops']:.1f} | {100 * r['peak_share']:.0f}% |")


if __name__ == "__main__":
    main()
