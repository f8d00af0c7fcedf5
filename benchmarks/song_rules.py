"""Songs that rhyme (issue 31): what --rhyme, --rhyme-scheme, --line-len and --structure do to a
song model's output, and what they cost it, in one run, the same seeds for every setting.

    python benchmarks/song_rules.py --model runs/歌 --corpus 歌.txt [--num 24]

For each setting, over --num songs (`--num-paragraphs 1` from no start text, seeds 0 ..):
  rhymed     the share of the lines the scheme names (all: every line after the first of its
             song; abab: the even lines after the second; aabb: the second of each couplet) whose
             last Chinese character is in the rhyme group of the line it rhymes with, by a checker
             of its own (pypinyin's finals mapped to 十三辙 here, not zhrnn's tables)
  bits       the model's own bits per character of its output (scored as its training text was):
             what a constraint costs it in fluency. Drafting lines (--candidates, 4 by default under
             --rhyme and --line-len) lowers it by itself: compare a rule with the free row of as
             many drafts to see what the rule costs
  lines      characters per line: mean, standard deviation, shortest, longest
  chorus     under --structure: the share of songs whose every later chorus is the first, word for word
  s/song     wall time per song
The corpus row applies the same checker to the training text's own songs (its blank-line blocks).
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhrnn  # noqa: E402
from zhrnn.generation.score import score_text  # noqa: E402

# 十三辙 by pypinyin's finals (Style.FINALS writes ü as v and the -i of 知 as i, which 十三辙 counts in 一七)
GROUP = {f: g for g, finals in {
    "发花": "a ia ua", "梭波": "o uo e", "乜斜": "ie ve", "怀来": "ai uai", "灰堆": "ei uei ui",
    "遥条": "ao iao", "油求": "ou iou iu", "言前": "an ian uan van", "人辰": "en in uen un vn",
    "江阳": "ang iang uang", "中东": "eng ing ong iong ueng", "一七": "i v er", "姑苏": "u"}.items()
    for f in finals.split()}

SETTINGS = [
    ("free", ""),
    ("free, 4 drafts a line", "--candidates 4"),
    ("--rhyme (4 drafts a line)", "--rhyme"),
    ("--rhyme --candidates 1", "--rhyme --candidates 1"),
    ("--rhyme --candidates 8", "--rhyme --candidates 8"),
    ("--rhyme --line-len 6-12", "--rhyme --line-len 6-12"),
    ("--rhyme --rhyme-scheme abab", "--rhyme --rhyme-scheme abab"),
    ("--rhyme --rhyme-scheme aabb", "--rhyme --rhyme-scheme aabb"),
    ("--rhyme 江阳", "--rhyme 江阳"),
    ("--line-len 6-12", "--line-len 6-12"),
    ("--structure 主副主副", "--structure 主副主副"),
    ("--structure 主副主副 --rhyme", "--structure 主副主副 --rhyme"),
]


def rhyme_of(line: str) -> str | None:
    from pypinyin import Style, lazy_pinyin

    han = "".join(c for c in line if "\u4e00" <= c <= "\u9fff")
    return GROUP.get(lazy_pinyin(han, style=Style.FINALS)[-1]) if han else None


def rhymed_lines(lines: list[str], scheme: str) -> tuple[int, int]:
    """(lines that rhyme with the line they should, lines the scheme names) of one song or section."""
    ends = [rhyme_of(line) for line in lines]
    if scheme == "aabb":
        pairs = [(i, i - 1) for i in range(1, len(lines), 2)]
    elif scheme == "abab":
        pairs = [(i, 1) for i in range(3, len(lines), 2)]
    else:
        pairs = [(i, 0) for i in range(1, len(lines))]
    return sum(ends[i] is not None and ends[i] == ends[j] for i, j in pairs), len(pairs)


def sections(text: str) -> list[list[str]]:
    return [[line for line in block.split("\n") if line] for block in text.strip("\n").split("\n\n") if block.strip()]


def measure(model, flags: str, num: int) -> dict:
    options = flag_options(flags)
    scheme = options.get("rhyme_scheme", "all")
    began = time.perf_counter()
    texts = [model.generate(num_paragraphs=None if "structure" in options else 1, seed=seed, **options)
             for seed in range(num)]
    seconds = (time.perf_counter() - began) / num
    hit = named = 0
    lengths, whole = [], 0
    for text in texts:
        parts = sections(text)
        for part in parts:
            h, n = rhymed_lines(part, scheme)
            hit, named = hit + h, named + n
            lengths += [len(line) for line in part]
        if "structure" in options:
            kinds = options["structure"]
            choruses = [p for p, k in zip(parts, list(kinds)) if k == "副"]
            whole += len(choruses) >= 2 and all(c == choruses[0] for c in choruses)
    scored = [score_text(model.model, model.tokenizer, t, model.info.get("corpus_config")) for t in texts if t.strip()]
    return {"rhymed": hit / max(named, 1), "bits": sum(sum(s.bits) for s in scored) / sum(s.chars for s in scored),
            "mean": statistics.mean(lengths), "sd": statistics.pstdev(lengths), "min": min(lengths),
            "max": max(lengths), "chorus": whole / num if "structure" in options else None, "seconds": seconds,
            "empty": sum(not t.strip() for t in texts), "first": texts[0]}


def flag_options(flags: str) -> dict:
    words, out = shlex.split(flags), {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else True
            out[word[2:].replace("-", "_")] = int(value) if isinstance(value, str) and value.isdigit() else value
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", help="the training text, for its own share of rhymed lines")
    p.add_argument("--num", type=int, default=24)
    p.add_argument("--samples", action="store_true", help="print the first song of each setting")
    args = p.parse_args()
    model = zhrnn.load(args.model)
    print("| setting | rhymed | bits/char of its output | chars/line: mean ± sd (min–max) | chorus whole | s/song |")
    print("|---|---|---|---|---|---|")
    if args.corpus:
        songs = sections(Path(args.corpus).read_text(encoding="utf-8"))
        hit = sum(rhymed_lines(s, "all")[0] for s in songs)
        named = sum(rhymed_lines(s, "all")[1] for s in songs)
        lengths = [len(line) for s in songs for line in s]
        print(f"| the training text ({len(songs)} songs) | {hit / named:.1%} | | {statistics.mean(lengths):.1f} ± "
              f"{statistics.pstdev(lengths):.1f} ({min(lengths)}–{max(lengths)}) | | |")
    firsts = []
    for name, flags in SETTINGS:
        m = measure(model, flags, args.num)
        chorus = "" if m["chorus"] is None else f"{m['chorus']:.0%}"
        empty = f" ({m['empty']} of {args.num} empty)" if m["empty"] else ""
        print(f"| {name}{empty} | {m['rhymed']:.1%} | {m['bits']:.3f} | {m['mean']:.1f} ± {m['sd']:.1f} "
              f"({m['min']}–{m['max']}) | {chorus} | {m['seconds']:.2f} |", flush=True)
        firsts.append((name, m["first"]))
    if args.samples:
        for name, text in firsts:
            print(f"\n{name}:\n{text}")


if __name__ == "__main__":
    main()
