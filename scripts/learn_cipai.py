"""Learn the line pattern of each 词牌 from the chinese-poetry 全宋词 JSON and write
zhrnn/poetry/cipai.json, the table behind `zhrnn sample --form 水调歌头`.

    python scripts/learn_cipai.py ../shared/corpora/chinese-poetry/songci [--min-count 5]

A pattern is the ci with every character replaced by □ and its punctuation kept; for each 词牌
the most common pattern is taken, if at least --min-count ci share it. Only these patterns (line
lengths and punctuation) are written, none of the poems' text.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

PUNCTUATION = "，。、？！；："


def learn(folder: Path, min_count: int) -> dict[str, str]:
    patterns: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in sorted(folder.glob("*.json")):
        records = json.loads(path.read_text(encoding="utf-8"))
        for record in records if isinstance(records, list) else []:
            text, name = "".join(record.get("paragraphs") or []), record.get("rhythmic")
            if text and name:
                patterns[name][re.sub(f"[^{PUNCTUATION}]", "□", text)] += 1
    table = {}
    for name, counts in sorted(patterns.items(), key=lambda kv: -sum(kv[1].values())):
        pattern, count = counts.most_common(1)[0]
        if count >= min_count and pattern.startswith("□"):
            table[name] = pattern
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("songci", type=Path, help="folder of ci.song.*.json (and other files of the same schema)")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "zhrnn" / "poetry" / "cipai.json")
    args = ap.parse_args()
    table = learn(args.songci, args.min_count)
    args.out.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(table)} 词牌 written to {args.out}")


if __name__ == "__main__":
    main()
