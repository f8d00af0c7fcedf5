"""Build the training text of the shipped 现代文 base from ../shared/corpora/modern, by one command:

    python scripts/build_modern.py ../shared/corpora/modern -o 现代文.txt

The sources are weighted by kind (SOURCES below), so that what users write (essays, stories,
everyday sentences, encyclopedic prose) leads and the formulaic parts (laws) or the older
vernacular (the classic novels, late-Qing fiction) do not dominate. A share of the Wikipedia
articles is converted to Traditional characters (OpenCC s2t), so the vocabulary and the model
cover what users of Traditional type. Documents (articles, chapters; groups of lines where a
source has one sentence a line) are drawn with a fixed seed and interleaved, so every kind is
spread through the text and the held-out paragraphs of `zhrnn train` come from all of them.
The output has one paragraph a line and no blank lines (`--paragraphs auto` reads it as lines).
The same sources, seed and code give the same file, byte for byte.
"""
from __future__ import annotations

import argparse
import hashlib
import lzma
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from zhrnn.text.script import convert  # noqa: E402


@dataclass(frozen=True)
class Source:
    path: str  # under the modern/ folder
    kind: str
    chars: int | None = None  # take documents until this many characters (None: all of it)
    repeat: int = 1  # copies of what is taken (weight for small sources close to what users write)
    lines_per_document: int = 0  # group this many lines into one document (sources of one sentence a line)
    traditional: float = 0.0  # share of the taken documents converted to Traditional


SOURCES = (
    Source("zhwiki-2023-slice/overweightbarracuda_science_fair2324.txt.xz", "encyclopedia", 16_000_000,
           traditional=0.12),
    Source("zhwiki-2023-slice/KazuhiraDZ_NLP-Learning.txt.xz", "encyclopedia"),
    Source("zhwiki-extract-sample/zhwiki_AA_wiki_00_simplified.txt.xz", "encyclopedia"),
    Source("wiki-derived-cc-by-sa/cmrc2018_drcd_paragraphs_simplified.txt.xz", "encyclopedia"),
    Source("wiki-derived-cc-by-sa/xquad_zh_paragraphs.txt.xz", "encyclopedia"),
    Source("wiki-derived-cc-by-sa/ud_gsdsimp_dev_test_sentences.txt.xz", "encyclopedia", lines_per_document=20),
    Source("luxun-pd/luxun.txt.xz", "modern literature", repeat=2),
    Source("gutenberg-zh-vernacular/modern_1920s_30s.txt.xz", "modern literature", repeat=2),
    Source("tatoeba-cmn/tatoeba_cmn_simplified.txt.xz", "everyday sentences", repeat=2, lines_per_document=20),
    Source("bible-cuv-1919/cuv_simplified.txt.xz", "1919 translation", lines_per_document=30),
    Source("classic-vernacular-novels/红楼梦.txt.xz", "classic novels", lines_per_document=40),
    Source("classic-vernacular-novels/水浒传.txt.xz", "classic novels", lines_per_document=40),
    Source("classic-vernacular-novels/西游记.txt.xz", "classic novels", lines_per_document=40),
    Source("classic-vernacular-novels/三国演义.txt.xz", "classic novels", 400_000, lines_per_document=40),
    Source("gutenberg-zh-vernacular/late_qing_novels.txt.xz", "late-Qing fiction", 1_200_000,
           lines_per_document=40),
    Source("gutenberg-zh-vernacular/ming_qing_vernacular.txt.xz", "late-Qing fiction", 500_000,
           lines_per_document=40),
    Source("prc-laws-lawrefbook/national.txt.xz", "laws", 800_000),
)
SEED = 20261203


def documents(text: str, lines_per_document: int) -> list[list[str]]:
    """The source's documents as lists of paragraphs: blank-line separated blocks, or fixed groups of lines."""
    if lines_per_document:
        lines = [line.strip().replace("^", "＾") for line in text.splitlines() if line.strip()]
        return [lines[i:i + lines_per_document] for i in range(0, len(lines), lines_per_document)]
    docs, current = [], []
    for line in text.splitlines():
        line = line.strip().replace("^", "＾")  # '^' starts a paragraph in zhrnn's training text
        if line:
            current.append(line)
        elif current:
            docs.append(current)
            current = []
    if current:
        docs.append(current)
    return docs


def take(source: Source, docs: list[list[str]], rng: random.Random) -> list[list[str]]:
    """Documents drawn in a seeded order until the source's character budget, then repeated."""
    if source.chars is not None:
        order = list(range(len(docs)))
        rng.shuffle(order)
        chosen, total = [], 0
        for i in order:
            if total >= source.chars:
                break
            chosen.append(i)
            total += sum(len(p) for p in docs[i])
        docs = [docs[i] for i in sorted(chosen)]  # the source's own order among the chosen
    if source.traditional:
        picks = set(rng.sample(range(len(docs)), round(len(docs) * source.traditional)))
        docs = [[convert(p, "s2t") for p in d] if i in picks else d for i, d in enumerate(docs)]
    return docs * source.repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modern", type=Path, help="the modern/ corpora folder (../shared/corpora/modern)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    pool: list[list[str]] = []
    kinds: dict[str, int] = {}
    for source in SOURCES:
        path = args.modern / source.path
        if not path.is_file():
            print(f"build_modern: {path} is missing", file=sys.stderr)
            return 1
        docs = take(source, documents(lzma.open(path, "rt", encoding="utf-8").read(), source.lines_per_document), rng)
        chars = sum(len(p) for d in docs for p in d)
        kinds[source.kind] = kinds.get(source.kind, 0) + chars
        print(f"{source.path}: {len(docs):,} documents, {chars:,} characters", file=sys.stderr)
        pool.extend(docs)
    rng.shuffle(pool)
    text = "".join(p + "\n" for d in pool for p in d)
    args.output.write_text(text, encoding="utf-8")
    total = sum(kinds.values())
    for kind, chars in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:20s} {chars:>12,} {chars / total:6.1%}", file=sys.stderr)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    print(f"{args.output}: {total:,} characters in {len(pool):,} documents, sha256 {digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
