"""What --tones costs: 格律 compliance (zhrnn check), the model's own bits per character of its output,
distinct-1 and sampling time, with and without the masks, on the shipped 唐诗 (48 poems, seed 0).

    python benchmarks/tones_cost.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statistics  # noqa: E402
import time  # noqa: E402

from zhrnn import api  # noqa: E402
from zhrnn.generation import meter  # noqa: E402
from zhrnn.generation.score import score_text  # noqa: E402

m = api.load("唐诗")
cc = m.info["corpus_config"]
print("| form | masks | pass zhrnn check | model bits/char of the output | distinct-1 | s |")
print("|---|---|---|---|---|---|")
for form in ("五言绝句", "七言律诗"):
    for tones in (None, "平水韵"):
        t = time.perf_counter()
        texts = m.generate_many(48, form=form, tones=tones, seed=0)
        secs = time.perf_counter() - t
        bits = [score_text(m.model, m.tokenizer, x, cc) for x in texts]
        bpc = sum(sum(b.bits) for b in bits) / sum(b.chars for b in bits)
        ok = sum(meter.check(x).ok for x in texts)
        d1 = statistics.mean(len(set(x)) / len(x) for x in (y.replace("\n", "") for y in texts))
        print(f"| {form} | {'--tones' if tones else 'none'} | {ok}/48 | {bpc:.3f} | {d1:.3f} | {secs:.1f} |", flush=True)
