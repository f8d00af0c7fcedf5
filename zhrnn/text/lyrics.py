"""Song lyrics as LRC files ([00:12.34] timestamps, [ti:]/[ar:] tags): the words alone, one song a
paragraph. Part of the decoding stage: a .lrc file's text is cleaned here before the pipeline
sees it (decoding.read_pieces)."""
from __future__ import annotations

import re

# [mm:ss], [mm:ss.xx], [mm:ss:xx], several at a line's start (a chorus sung at each of them)
STAMPS = re.compile(r"^((?:\s*\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\])+)")
STAMP = re.compile(r"\[(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
WORD_STAMP = re.compile(r"<\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?>")  # enhanced LRC: a time before each word
TAG = re.compile(r"^\[([A-Za-z#][\w#]*)\s*:([^\]]*)\]$")  # [ti:], [ar:], [offset:], [kuwo:] ... (not a time)
_ROLE = (r"作[词詞]|作曲|[词詞]曲|[编編]曲|[制製]作人?|[监監][制製]|演唱|原唱|翻唱|[词詞]|曲|混音|[录錄]音|母[带帶]|和[声聲]|"
         r"配唱|吉他|[贝貝]斯|鼓|[键鍵][盘盤]|弦[乐樂]|出品|[发發]行|OP|SP|Lyrics?|Composer|Arranger|Producer")
# credit lines (作词：…, 作词/作曲 : …, 製作人：…): names, not words of the song
CREDIT = re.compile(rf"^(?:{_ROLE})(?:\s*[/／&、]\s*(?:{_ROLE}))*\s*[:：]", re.IGNORECASE)


def clean_lrc(text: str, credits: bool = False) -> tuple[str, str | None]:
    """The lyric lines of an LRC text in the order they are sung (a line with several timestamps
    once at each; timestamps and tags gone, empty timed lines dropped, credit lines dropped unless
    credits) joined by '\\n', and the artist of its [ar:] tag."""
    timed: list[tuple[float, int, str]] = []
    artist, now = None, 0.0
    for k, raw in enumerate(text.lstrip("\ufeff").splitlines()):
        line = raw.strip()
        tag = TAG.match(line)
        if tag:
            if tag.group(1).lower() == "ar" and tag.group(2).strip():
                artist = tag.group(2).strip()
            continue
        stamps = STAMPS.match(line)
        times = [int(m) * 60 + int(s) + float(f"0.{f or 0}") for m, s, f in STAMP.findall(stamps.group(1))] if stamps else []
        line = WORD_STAMP.sub("", line[stamps.end():] if stamps else line).strip().replace("\t", " ")
        now = min(times, default=now)  # an untimed line stays where it stands
        if not line or not credits and CREDIT.match(line):
            continue
        timed += [(t, k, line) for t in times or [now]]
    timed.sort(key=lambda entry: entry[:2])
    return "\n".join(line for _, _, line in timed), artist
