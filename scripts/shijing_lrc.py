"""Lay out 诗经 (chinese-poetry, public domain) as a folder of LRC song files, one folder per
section (周南, 郑风, 鹿鸣之什 ...) as if each were a singer: the worked example of README_zh.md
(from a folder of .lrc files to `zhrnn sample --label 郑风 --num-paragraphs 2`).

    python scripts/shijing_lrc.py ../shared/corpora/chinese-poetry/shijing -o 诗经歌词

Each song gets the tags and timestamps a downloaded .lrc has ([ti:], [ar:], [al:], a credit line,
a line every four seconds, an empty timed line between stanzas), so that training shows them
removed; a line is a sentence of the stanza (up to its 。？！).
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def lrc(title: str, section: str, chapter: str, stanzas: list[str]) -> str:
    out = [f"[ti:{title}]", f"[ar:{section}]", f"[al:诗经·{chapter}]", "[by:zhrnn scripts/shijing_lrc.py]",
           "[00:00.00]作词：佚名"]
    seconds = 2.0
    for k, stanza in enumerate(stanzas):
        if k:
            out.append(f"[{int(seconds // 60):02d}:{seconds % 60:05.2f}]")  # the pause between stanzas
            seconds += 2
        for line in re.findall(r"[^。？！]+[。？！]?", stanza):
            out.append(f"[{int(seconds // 60):02d}:{seconds % 60:05.2f}]{line}")
            seconds += 4
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the shijing folder of chinese-poetry (shijing.json)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the folder to write (one subfolder per section)")
    args = ap.parse_args()
    poems = json.loads((args.data / "shijing.json").read_text(encoding="utf-8"))
    for i, poem in enumerate(poems, 1):
        folder = args.out / poem["section"]
        folder.mkdir(parents=True, exist_ok=True)
        text = lrc(poem["title"], poem["section"], poem["chapter"], poem["content"])
        (folder / f"{i:03d} {poem['title']}.lrc").write_text(text, encoding="utf-8")
    print(f"wrote {len(poems)} songs under {args.out}")


if __name__ == "__main__":
    main()
