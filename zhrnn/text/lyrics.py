"""Song lyrics as LRC files ([00:12.34] timestamps, [ti:]/[ar:] tags): the words alone, one song a
paragraph. Part of the decoding stage: a .lrc file's text is cleaned here before the pipeline
sees it (decoding.read_pieces)."""
from __future__ import annotations

import re

# [mm:ss], [mm:ss.xx], [mm:ss:xx], several on one line (a chorus sung at each of them)
TIMESTAMP = re.compile(r"\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\]")
TAG = re.compile(r"^\[(ti|ar|al|by|offset|length|re|ve|au|la|id|kana|#)\s*:([^\]]*)\]$", re.IGNORECASE)
# credit lines (作词：…, 作曲 : …, 制作人：…): names, not words of the song
CREDIT = re.compile(r"^(作词|作曲|词曲|编曲|制作人?|监制|演唱|原唱|翻唱|词|曲|混音|录音|母带|和声|配唱|吉他|贝斯|鼓|键盘|"
                    r"弦乐|出品|发行|OP|SP|Lyrics?|Composer|Arranger|Producer)\s*[:：]", re.IGNORECASE)


def clean_lrc(text: str, credits: bool = False) -> tuple[str, str | None]:
    """The lyric lines of an LRC text (timestamps and tags gone, empty timed lines dropped, credit
    lines dropped unless credits) joined by '\\n', and the artist of its [ar:] tag."""
    lines, artist = [], None
    for raw in text.splitlines():
        line = raw.strip()
        tag = TAG.match(line)
        if tag:
            if tag.group(1).lower() == "ar" and tag.group(2).strip():
                artist = tag.group(2).strip()
            continue
        line = TIMESTAMP.sub("", line).strip()
        if not line or not credits and CREDIT.match(line):
            continue
        lines.append(line)
    return "\n".join(lines), artist
