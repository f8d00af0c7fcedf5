"""On the real corpora kept beside the project (skipped where they are absent)."""
import json

from zhrnn.text.pipeline import CorpusConfig, load_corpus
from zhrnn.text.tokenizer import build_tokenizer

from .conftest import shared


def poems_text(path, limit=300) -> str:
    return "".join("".join(p["paragraphs"]) + "\n" for p in json.loads(path.read_text(encoding="utf-8"))[:limit])


def encodable(text: str, encoding: str) -> str:
    """The lines of text that the legacy encoding can represent (Big5 lacks rare characters)."""
    keep = []
    for line in text.splitlines():
        try:
            line.encode(encoding)
            keep.append(line)
        except UnicodeEncodeError:
            pass
    return "\n".join(keep) + "\n"


def test_real_tang_poems_in_big5_and_song_ci_in_gbk_decode_like_their_utf8_twins(tmp_path):
    tang = encodable(poems_text(shared("chinese-poetry", "quantangshi", "poet.tang.3000.json")), "big5")
    song = encodable(poems_text(shared("chinese-poetry", "songci", "ci.song.1000.json")), "gbk")
    for text, encoding in [(tang, "big5"), (song, "gbk")]:
        (tmp_path / "u.txt").write_text(text, encoding="utf-8")
        (tmp_path / "l.txt").write_bytes(text.encode(encoding))
        assert len(text) > 5000
        assert load_corpus(tmp_path / "l.txt").text == load_corpus(tmp_path / "u.txt").text


def test_tang_poems_are_traditional_and_t2s_makes_them_simplified(tmp_path):
    (tmp_path / "tang.txt").write_text(poems_text(shared("chinese-poetry", "quantangshi", "poet.tang.0.json")), encoding="utf-8")
    assert load_corpus(tmp_path / "tang.txt").script == "traditional"
    assert load_corpus(tmp_path / "tang.txt", CorpusConfig(convert="t2s")).script == "simplified"


def test_the_shakespeare_directory_is_one_english_corpus_that_round_trips():
    corpus = load_corpus(shared("shakespeare"))
    assert len(corpus.encodings) == 11 and corpus.paragraphs > 10_000
    tok = build_tokenizer(corpus.text, "char", marker=corpus.marker)
    assert len(tok) < 120  # ASCII letters, digits, punctuation
    assert tok.decode(tok.encode(corpus.text)) == corpus.text
