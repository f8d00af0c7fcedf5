"""Preparing a large corpus in bounded memory: char and word level, a second run from the cache,
and optionally a short training on the cached ids. Each step runs in a fresh process, which
reports its own peak RSS (and that of its jieba workers); a markdown table comes out.

    python benchmarks/prepare.py                       # ~100M characters of 全唐诗, built first
    python benchmarks/prepare.py --text 全唐诗.txt --word-chars 10000000 --train

The corpus is the text repeated (as files of one copy each, in a directory) up to --chars.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "corpora" / "chinese-poetry"
MB = 1e6


def build_text(out: Path) -> Path:
    """全唐诗 in Simplified, as `zhrnn corpus build` makes it."""
    subprocess.run([sys.executable, "-m", "zhrnn", "corpus", "build", "全唐诗", "--data", str(DATA),
                    "--convert", "t2s", "-o", str(out)], cwd=REPO, check=True)
    return out


def repeat(text: Path, chars: int, out_dir: Path) -> int:
    """Copies of text as out_dir/copy-NNN.txt, about `chars` characters in all (the last copy cut at
    a line end). Returns the bytes written."""
    out_dir.mkdir(parents=True)
    lines = text.read_text(encoding="utf-8").splitlines(keepends=True)
    written = total = 0
    for n in range(1_000_000):
        if written >= chars:
            break
        with open(out_dir / f"copy-{n:03d}.txt", "w", encoding="utf-8") as f:
            for line in lines:
                if written >= chars:
                    break
                f.write(line)
                written += len(line)
                total += len(line.encode("utf-8"))
    return total


def child_prepare(corpus: str, level: str, cache: str) -> dict:
    from zhrnn.text.pipeline import CorpusConfig
    from zhrnn.training.encoded import encode_corpus

    start = time.perf_counter()
    data = encode_corpus([corpus], CorpusConfig(), level, 1, None, lambda built, info: built, cache=cache)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": len(data.ids), "cached": data.cached, "vocab": len(data.tokenizer),
            "memmap": type(data.ids).__name__ == "memmap"}


def child_train(corpus: str, cache: str, out: str) -> dict:
    from zhrnn.training import fit as train

    start = time.perf_counter()
    train(corpus, progress=False, out_dir=out, cache_dir=cache, iters=20, save_freq=20, eval_tokens=10_000,
          hidden_size=64, embedding_size=32, num_layers=1, batch_size=16, seq_length=50, sample_len=20)
    return {"seconds": time.perf_counter() - start}


def peak_rss_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def run_child(*args: str) -> dict:
    """One step in a fresh interpreter: its result, wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"step {args} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def row(step: str, text: str, in_bytes: int | None, r: dict, note: str = "") -> str:
    speed = f"{in_bytes / MB / r['seconds']:.1f}" if in_bytes else "–"
    tokens = f"{r['tokens']:,}" if "tokens" in r else "–"
    return (f"| {step} | {text} | {r['seconds']:.1f} | {r['process_seconds']:.1f} | {speed} | {r['rss_main']:.0f} | "
            f"{r['rss_workers']:.0f} | {tokens} | {note} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, help="the text to repeat (default: build 全唐诗 from the shared corpora)")
    p.add_argument("--chars", type=int, default=100_000_000, help="characters of the char-level corpus")
    p.add_argument("--word-chars", type=int, help="characters of the word-level corpus (default --chars; "
                   "jieba cuts about 0.3 MB/s per core)")
    p.add_argument("--train", action="store_true", help="then train 20 steps from the cached char-level ids")
    p.add_argument("--workdir", type=Path, help="where the corpus and cache go (default: a temporary directory)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_prepare(*rest) if kind == "prepare" else child_train(*rest)
        result.update(rss_main=peak_rss_mb(resource.RUSAGE_SELF), rss_workers=peak_rss_mb(resource.RUSAGE_CHILDREN))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        text = args.text or build_text(tmp / "全唐诗.txt")
        char_dir, word_dir, cache = tmp / "char", tmp / "word", tmp / "cache"
        char_bytes = repeat(text, args.chars, char_dir)
        word_chars = args.word_chars or args.chars
        word_bytes = char_bytes if word_chars == args.chars else repeat(text, word_chars, word_dir)
        word_dir = char_dir if word_chars == args.chars else word_dir

        rows = []
        first = run_child("prepare", str(char_dir), "char", str(cache))
        rows.append(row("char, empty cache", f"{args.chars / 1e6:.0f}M chars", char_bytes, first))
        again = run_child("prepare", str(char_dir), "char", str(cache))
        same = again["cached"] and again["tokens"] == first["tokens"] and again["memmap"]
        rows.append(row("char, again", f"{args.chars / 1e6:.0f}M chars", None, again,
                        "cache hit, nothing re-tokenized" if same else "NOT a cache hit"))
        words = run_child("prepare", str(word_dir), "word", str(cache))
        rows.append(row("word (jieba)", f"{word_chars / 1e6:.0f}M chars", word_bytes, words,
                        f"vocabulary {words['vocab']:,}"))
        if args.train:
            trained = run_child("train", str(char_dir), str(cache), str(tmp / "run"))
            rows.append(row("train 20 steps", f"{args.chars / 1e6:.0f}M chars, cached", None, trained,
                            "char ids memory-mapped"))

    print("| step | text | prepare s | process s | MB/s | peak RSS MB | workers' peak RSS MB | tokens | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
