"""Training recipes compared at a fixed wall-clock budget (issue 14, part 2): each variant is a
`zhrnn train --time BUDGET` run with its own options, one after the other (never two at once:
on a few cores they would slow each other), judged by the validation figures of its final
evaluation.

    python benchmarks/recipes.py 全唐诗.txt --time 5m --convert t2s \\
        --variant "windows=" --variant "stateful=--stateful" --variant "tied=--stateful --tie-embedding"

Every variant reads the same text with the same split (the default paragraph split) and is
scored on the same validation targets (eval_streams: 32 stretches spread over the held-out
paragraphs), so its figures compare with each other and with benchmarks/kneser_ney.py on the same
text:
  val_bpc       every validation target but context labels (markers and line breaks included)
  val_text_bpc  the same targets, text characters only (markers, line breaks, labels excluded)
The budget counts training, evaluations and checkpoints (what --time counts), not reading the
text: the encoded text is cached, so each run starts within seconds. Results are appended as
JSON lines to --results as each run finishes, so a long comparison survives an interruption.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn import checkpoint  # noqa: E402

from generation_quality import longest_copied  # noqa: E402  (benchmarks/ is on the path when run as a script)


def samples(run_dir: Path, start: str, corpus_text: str) -> dict:
    """What the run writes (`zhrnn sample --start START --len 100 --num 3 --seed 0`, the first of
    three shown) and the longest span of each copied from the training text."""
    import zhrnn

    texts = zhrnn.load(run_dir).generate_many(3, start, 100, seed=0)
    return {"sample": texts[0], "copied": [longest_copied(t.replace("\n", ""), corpus_text) for t in texts]}


def run(corpus: list[str], budget: str, common: list[str], name: str, options: list[str], out: Path) -> dict:
    run_dir = out / name
    if (run_dir / "ckpt.pt").exists():
        raise SystemExit(f"{run_dir} already has a run; choose another --out or remove it")
    command = [sys.executable, "-m", "zhrnn", "train", *corpus, "--time", budget, "--out-dir", str(run_dir), "-q",
               *common, *options]
    began = time.time()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - began
    if done.returncode:
        raise SystemExit(f"variant {name} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return summary(run_dir, name, options, budget, shlex.join(command[1:]), wall)


def summary(run_dir: Path, name: str, options: list[str], budget: str, command: str, wall: float | None) -> dict:
    """The figures of a finished run: its last evaluation (the end of the budget), its best."""
    records = [json.loads(line) for line in open(run_dir / "log.jsonl", encoding="utf-8")]
    last = records[-1]
    state = checkpoint.load(run_dir, last=True)
    params = sum(t.numel() for t in {t.data_ptr(): t for t in state["model"].values()}.values())  # a tied matrix once
    return {"variant": name, "options": " ".join(options), "time": budget, "steps": last["step"],
            "val_bpc": last["val_bpc"], "val_text_bpc": last["val_text_bpc"],
            "best_val_text_bpc": min(r["val_text_bpc"] for r in records if r["val_text_bpc"] is not None),
            # with the counts mixed in (--ngram), and the counts alone, on the same targets
            "mix_val_text_bpc": last.get("mix_val_text_bpc"), "counts_val_text_bpc": last.get("counts_val_text_bpc"),
            "best": {k: v for k, v in (state.get("best") or {}).items() if k != "evals_since"},
            "chars_per_s": last["chars_per_s"], "elapsed": last["elapsed"], "wall_s": wall and round(wall, 1),
            "params": params, "learning_rate": (state.get("schedule") or {}).get("peak", state["train_config"]["learning_rate"]),  # the peak, chosen or given
            "command": command, "date": time.strftime("%Y-%m-%d %H:%M")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", nargs="+")
    p.add_argument("--time", required=True, help="the budget of every variant: 5m, 30m, ...")
    p.add_argument("--variant", action="append", required=True, metavar="NAME=OPTIONS",
                   help="a variant: its name and its zhrnn train options (NAME= for the defaults)")
    p.add_argument("--out", default="runs/recipes", help="where the runs go (a directory per variant)")
    p.add_argument("--results", default="recipes.jsonl", help="JSON lines, one per finished variant")
    p.add_argument("--sample-start", metavar="TEXT",
                   help="after each run, 3 samples of 100 characters from TEXT (seed 0) and their longest span "
                        "copied from the training text")
    args, common = p.parse_known_args()  # anything else goes to every variant: --convert t2s, --paragraphs blank
    out = Path(args.out)
    for variant in args.variant:
        name, _, options = variant.partition("=")
        result = run(args.corpus, args.time, common, name, shlex.split(options), out)
        if args.sample_start is not None:
            from zhrnn.text.pipeline import load_corpus

            result.update(samples(out / name, args.sample_start, load_corpus(args.corpus).text))
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(result, ensure_ascii=False) + "\n")
        mixed = "" if result["mix_val_text_bpc"] is None else \
            f"  mixed {result['mix_val_text_bpc']:.3f}  counts {result['counts_val_text_bpc']:.3f}"
        print(f"{name:16} steps {result['steps']:6}  val {result['val_bpc']:.3f}  text {result['val_text_bpc']:.3f}{mixed}  "
              f"{result['chars_per_s']:>7,} chars/s  {result['params']:,} params"
              + (f"  copied {result['copied']}" if "copied" in result else ""), flush=True)


if __name__ == "__main__":
    main()
