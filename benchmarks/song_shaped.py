"""A song-shaped modern text to measure on (issue 29): the shape of a singer's songbook without
anyone's lyrics. Lines are the clauses of the Tatoeba Mandarin sentences (CC BY 2.0 FR, in
../shared/corpora/modern/tatoeba-cmn), 4 to 14 characters, punctuation dropped as lyrics print
it; each song is verse, chorus, verse, chorus, chorus (the chorus sung again word for word), one
line a line, songs parted by a blank line, until the text has --chars characters.

    python benchmarks/song_shaped.py ../shared/corpora/modern/tatoeba-cmn -o 歌.txt --chars 60000
    python benchmarks/song_shaped.py ../shared/corpora/modern/tatoeba-cmn -o 韵歌.txt --rhymed   # issue 31

--rhymed: every line of a song ends on one 十三辙 rhyme (drawn for each song from the groups with
clauses enough, by song_rules.py's checker), as a lyricist rhymes a song through; otherwise the
lines rhyme by chance (about one in eight).

What matters for the measurement is what a real songbook shares with it: short lines, a small
text, and whole blocks repeated inside a song, which a network learns by heart first.
"""
from __future__ import annotations

import argparse
import lzma
import random
import re
from pathlib import Path

CLAUSE = re.compile(r"[^，。？！；：、,.?!;:\s\"“”‘’《》（）()]+")


def clauses(folder: Path) -> list[str]:
    text = lzma.open(folder / "tatoeba_cmn_simplified.txt.xz", "rt", encoding="utf-8").read()
    out, seen = [], set()
    for clause in CLAUSE.findall(text):
        if 4 <= len(clause) <= 14 and clause not in seen:
            seen.add(clause)
            out.append(clause)
    return out


def songs(lines: list[str], chars: int, seed: int, rhymed: bool = False) -> list[str]:
    rng = random.Random(seed)
    rng.shuffle(lines)
    if rhymed:  # one pool of clauses per rhyme group, a song drawn from one of them
        from song_rules import rhyme_of

        by_group: dict[str, list[str]] = {}
        for line in lines:
            by_group.setdefault(rhyme_of(line), []).append(line)
        pools = {g: iter(ls) for g, ls in by_group.items() if g and len(ls) >= 500}
        weights = {g: len(by_group[g]) for g in pools}
    pool = iter(lines)
    out, total = [], 0
    while total < chars:
        if rhymed:
            pool = pools[rng.choices(list(weights), list(weights.values()))[0]]
        verse1, chorus, verse2 = ([next(pool) for _ in range(rng.choice((4, 6, 8)))] for _ in range(3))
        song = verse1 + chorus + verse2 + chorus + chorus
        out.append("\n".join(song))
        total += sum(map(len, song))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="../shared/corpora/modern/tatoeba-cmn")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--chars", type=int, default=60_000, help="text characters, line breaks not counted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rhymed", action="store_true", help="every line of a song on one 十三辙 rhyme (needs pypinyin)")
    args = parser.parse_args()
    built = songs(clauses(args.folder), args.chars, args.seed, args.rhymed)
    args.out.write_text("\n\n".join(built) + "\n", encoding="utf-8")
    lines = sum(song.count("\n") + 1 for song in built)
    print(f"{args.out}: {len(built)} songs, {lines} lines, "
          f"{sum(len(s) - s.count(chr(10)) for s in built):,} characters")


if __name__ == "__main__":
    main()
