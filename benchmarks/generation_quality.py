"""Generation quality of decoding settings, on one model, in one run.

    python benchmarks/generation_quality.py --model runs/全唐诗 --corpus 全唐诗.txt [--num 100] [--len 100]

For each setting: distinct-1 / distinct-2 (unique characters / character pairs of each text,
averaged over texts, so settings with fewer texts are not favoured), repeated-4-gram rate (share of
4-grams that repeat one earlier in the same text), the longest span copied verbatim from the
training text (mean and max, line breaks included), 五言绝句 compliance: the share of outputs
whose first paragraph is exactly a 5x4 quatrain with ，。 in place, and the share of clauses
(between punctuation) that are 5 or 7 characters long. Form rows are 24-character
poems: compare their distinct-n with each other, not with the 100-character rows.

A second table (--meter, or --only-meter for it alone) is 格律: 五言绝句 and 七言律诗 by the form
alone, with --tones, and with --tones and 4 (the default) or 8 candidate lines, the same seeds: the share that passes
`zhrnn check` whole, its 平仄 rules alone (平仄, 孤平, 三平尾, 失粘, 失对) and its rhyme alone (出韵, 重韵), the model's own bits per character of its output
(the fluency cost of the constraint), the mean of each poem's least likely line (a junk line shows
here first), distinct-1/2 and the copied span.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zhrnn  # noqa: E402
from zhrnn.poetry import meter  # noqa: E402
from zhrnn.generation.score import score_text  # noqa: E402
from zhrnn.text.pipeline import CorpusConfig, load_corpus  # noqa: E402
from zhrnn.text.render import render  # noqa: E402

QUATRAIN = re.compile(r"^(\w{5}，\w{5}。){2}$")
STARTS = "春夏秋冬山水风月花雨江天云日夜人"

SETTINGS = {
    "plain t=1.0": dict(temperature=1.0, repetition_penalty=1.0, no_repeat_ngram=0),
    "t=0.8": dict(temperature=0.8, repetition_penalty=1.0, no_repeat_ngram=0),
    "greedy": dict(greedy=True, repetition_penalty=1.0, no_repeat_ngram=0),
    "greedy + no-repeat-4": dict(greedy=True, repetition_penalty=1.0, no_repeat_ngram=4),
    "beam 5 + no-repeat-4": dict(beam=5, repetition_penalty=1.0, no_repeat_ngram=4),
    "t=0.8 + no-repeat-4": dict(temperature=0.8, repetition_penalty=1.0, no_repeat_ngram=4),
    "t=0.8 + penalty 1.2 + no-repeat-4": dict(temperature=0.8, repetition_penalty=1.2, no_repeat_ngram=4),
    "defaults (t=0.8, no-repeat-4)": dict(),
}


def ngrams(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def longest_copied(text: str, corpus: str) -> int:
    """Longest substring of text that appears in the corpus (grows a window while it matches)."""
    best, i = 0, 0
    for j in range(len(text)):
        while i <= j and text[i : j + 1] not in corpus:
            i += 1
        best = max(best, j + 1 - i)
    return best


def distinct(text: str, n: int) -> float:
    grams = ngrams(text, n)
    return len(set(grams)) / max(1, len(grams))


def regular_clauses(texts: list[str]) -> float:
    """Share of the clauses (text between ，。？！ and line breaks, the last cut-off one of each text
    left out) that are 5 or 7 characters long, as in 五言 and 七言 verse."""
    clauses = [c for t in texts for c in re.split(r"[，。？！\n]", t)[:-1] if c]
    return sum(len(c) in (5, 7) for c in clauses) / max(1, len(clauses))


def measure(texts: list[str], corpus: str, form: bool = False) -> dict:
    flat = [t.replace("\n", "") for t in texts]
    rep4 = [1 - distinct(t, 4) for t in flat]
    copied = [longest_copied(t if not form else t.replace("\n", ""), corpus) for t in texts]
    # the first paragraph: one line of the corpus, or the whole of a --form poem (printed a sentence a line)
    first = [t.replace("\n", "") if form else t.split("\n")[0] for t in texts]
    return {
        "distinct-1": statistics.mean(distinct(t, 1) for t in flat),
        "distinct-2": statistics.mean(distinct(t, 2) for t in flat),
        "repeated-4-gram": statistics.mean(rep4),
        "copied mean": statistics.mean(copied),
        "copied max": max(copied),
        "五言绝句": sum(bool(QUATRAIN.match(f)) for f in first) / len(first),
        "clauses of 5 or 7": regular_clauses(texts),
    }


METER_SETTINGS = {
    "--tones off --candidates 1 (the form only)": dict(tones=None, candidates=1),
    "--tones --candidates 1": dict(tones="平水韵", candidates=1),
    "--tones --candidates 4 (the defaults)": dict(),
    "--tones --candidates 8": dict(candidates=8),
}
TONAL = {"平仄", "孤平", "三平尾", "失粘", "失对"}


def line_bits(score, marker: str) -> list[float]:
    """Bits per character of each line of a scored poem (the line's characters and its closing
    mark), as the model read the whole poem."""
    out, bits, chars = [], 0.0, 0
    for piece, b in zip(score.pieces, score.bits):
        if not piece.strip() or piece == marker:
            continue  # line breaks and paragraph markers: the poem's layout, not a line's words
        bits, chars = bits + b, chars + 1
        if piece[-1] in "，。？！；":
            out.append(bits / chars)
            bits, chars = 0.0, 0
    return out


def meter_table(model, corpus: str, num: int) -> None:
    header = ["form", "setting", "pass zhrnn check", "平仄 rules", "rhyme", "model bits/char", "worst line", "distinct-1",
              "distinct-2", "copied mean", "copied max", "s"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for form in ("五言绝句", "七言律诗"):
        for name, options in METER_SETTINGS.items():
            begin = time.perf_counter()
            texts = model.generate_many(num, form=form, seed=0, **options)
            seconds = time.perf_counter() - begin
            reports = [meter.check(t) for t in texts]
            kinds = [{p.kind for p in r.problems} for r in reports]
            scored = [score_text(model.model, model.tokenizer, t, model.info["corpus_config"]) for t in texts]
            bpc = sum(sum(s.bits) for s in scored) / sum(s.chars for s in scored)
            worst = statistics.mean(max(line_bits(score, model.tokenizer.marker)) for score in scored)
            m = measure(texts, corpus, form=True)
            print(f"| {form} | {name} | {sum(r.ok for r in reports)}/{num} | {sum(not k & TONAL for k in kinds)}/{num} | "
                  f"{sum(not k & {'出韵', '重韵'} for k in kinds)}/{num} | {bpc:.3f} | {worst:.2f} | {m['distinct-1']:.3f} | "
                  f"{m['distinct-2']:.3f} | {m['copied mean']:.1f} | {m['copied max']} | {seconds:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True, help="the training text, for the copied-span measure")
    ap.add_argument("--num", type=int, default=96)
    ap.add_argument("--len", type=int, default=100)
    ap.add_argument("--only", action="append", help="only this setting (repeatable), e.g. 'defaults (t=0.8, no-repeat-4)'")
    ap.add_argument("--meter", action="store_true", help="add the 格律 table (五言绝句 and 七言律诗, with and without --tones)")
    ap.add_argument("--only-meter", action="store_true", help="the 格律 table alone")
    args = ap.parse_args()
    model = zhrnn.load(args.model)
    marked = load_corpus(args.corpus, CorpusConfig(**model.info["corpus_config"]))
    corpus = render(marked.text, marked.marker)  # as people read it, line breaks and all
    best = model.info.get("best") or {}
    val = best.get("val_text_bpc")
    print(f"model {args.model} (step {model.info['step']}, val {'-' if val is None else f'{val:.3f}'} bits per text "
          f"character); "
          f"{args.num} texts of {args.len} characters per setting, starts cycled from {STARTS}")
    if args.only_meter:
        return meter_table(model, corpus, args.num)
    header = ["setting", "distinct-1", "distinct-2", "repeated-4-gram", "copied mean", "copied max", "五言绝句",
              "clauses of 5 or 7", "s"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))

    def row(name: str, texts: list[str], seconds: float, form: bool = False) -> None:
        m = measure(texts, corpus, form)
        print(f"| {name} | {m['distinct-1']:.3f} | {m['distinct-2']:.3f} | {m['repeated-4-gram']:.3f} | "
              f"{m['copied mean']:.1f} | {m['copied max']} | {m['五言绝句']:.0%} | {m['clauses of 5 or 7']:.0%} | "
              f"{seconds:.1f} |", flush=True)

    for name, options in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        begin, texts = time.perf_counter(), []
        per_start = max(1, args.num // len(STARTS))
        for k, start in enumerate(STARTS):
            if options.get("greedy") or options.get("beam", 1) > 1:  # deterministic: one text per start
                texts.append(model.generate(start, args.len, **options))
            else:
                texts += model.generate_many(per_start, start, args.len, seed=k, **options)
        row(name, texts, time.perf_counter() - begin)
    for name, options in {"plain t=1.0, --form 五言绝句": dict(temperature=1.0, repetition_penalty=1.0, no_repeat_ngram=0,
                                                           tones=None, candidates=1),
                          "defaults (t=0.8, no-repeat-4, --tones, --candidates 4), --form 五言绝句": dict()}.items():
        if args.only and name not in args.only:
            continue
        begin, texts = time.perf_counter(), []
        for k, start in enumerate(STARTS):
            texts += model.generate_many(max(1, args.num // len(STARTS)), start, seed=k, form="五言绝句", **options)
        row(name, texts, time.perf_counter() - begin, form=True)
    if args.meter:
        meter_table(model, corpus, args.num)


if __name__ == "__main__":
    main()
