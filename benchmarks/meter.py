"""The 格律 checker on real regulated verse: the 绝句 and 律诗 of 唐诗三百首.

    python benchmarks/meter.py --data ../shared/corpora/chinese-poetry [--strict] [--modern] [--show 出韵]

Every poem of the four 近体 sections (五言绝句, 七言绝句, 五言律诗, 七言律诗) is checked as
`zhrnn check` checks it, in its Traditional text. Poems that rhyme in 仄 (古绝 such as 春晓 and
江雪, which the anthology files with the 绝句) and poems not of 4 or 8 equal lines are counted apart:
近体 rhymes in 平. For the rest: how many keep every rule, and how many problems of each kind the
others have (拗救 and other licences that the checker does not model show up as 平仄 problems).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn.poetry import meter  # noqa: E402
from zhrnn.poetry.tones import ZE, tones  # noqa: E402

SECTIONS = ("五言絕句", "七言絕句", "五言律詩", "七言律詩")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the chinese-poetry dataset directory")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--modern", action="store_true")
    p.add_argument("--show", action="append", default=[], help="print the poems with this kind of problem (repeatable)")
    args = p.parse_args()
    book = json.loads((Path(args.data) / "mengxue" / "tangshisanbaishou.json").read_text(encoding="utf-8"))
    print("| section | poems | 仄韵 (古绝) | other shapes | checked | keep every rule | share |")
    print("|---|---|---|---|---|---|---|")
    kinds_all: Counter = Counter()
    totals = Counter()
    for section in book["content"]:
        if section["type"] not in SECTIONS:
            continue
        row = Counter()
        for poem in section["content"]:
            lines = meter.split_lines("".join(poem["paragraphs"]))
            row["poems"] += 1
            if all(tones(t[-1], args.modern) == {ZE} for t in lines[1::2]):
                row["仄韵"] += 1
                continue
            try:
                report = meter.check(lines, strict=args.strict, modern=args.modern)
            except ValueError:
                row["shape"] += 1
                continue
            row["checked"] += 1
            row["ok"] += report.ok
            kinds = Counter(problem.kind for problem in report.problems)
            kinds_all.update(kinds)
            if set(kinds) & set(args.show):
                print(f"\n{poem['author']}《{poem['chapter']}》\n{meter.render(report)}\n", file=sys.stderr)
        totals.update(row)
        print(f"| {section['type']} | {row['poems']} | {row['仄韵']} | {row['shape']} | {row['checked']} | {row['ok']} | "
              f"{row['ok'] / max(1, row['checked']):.0%} |")
    print(f"| all | {totals['poems']} | {totals['仄韵']} | {totals['shape']} | {totals['checked']} | {totals['ok']} | "
          f"{totals['ok'] / max(1, totals['checked']):.0%} |")
    print("\nProblems in the poems that break a rule: " + ", ".join(f"{k} {n}" for k, n in kinds_all.most_common()))


if __name__ == "__main__":
    main()
