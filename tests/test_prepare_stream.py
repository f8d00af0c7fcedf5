"""The one text pipeline does not depend on where the text is cut: with chunks of a few dozen
bytes, whose edges fall inside paragraphs, inside '\\r\\n' pairs and inside multi-byte
characters (UTF-8 and GBK alike), a corpus gives the same ids, vocabulary, info and warnings
as with each file read as one piece. The ids are also the tokenizer's own encoding of the
prepared text (the encoded cache counts and remaps them without it).
"""
import logging

import numpy as np
import pytest

from zhrnn.text import decoding
from zhrnn.text.pipeline import CorpusConfig, PreparedText, load_corpus
from zhrnn.training import encoded
from zhrnn.training.encoded import encode_corpus
from zhrnn.errors import ConfigError, CorpusError
from zhrnn.text.tokenizer import CharTokenizer, WordTokenizer

POEMS = ["床前明月光，疑是地上霜。举头望明月，低头思故乡。", "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
         "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。",
         "我們今天去學校上課，老師說明天要考試。", "大家都很緊張，但是我覺得沒問題！"]
POETS = ["李白", "杜甫", "李白", "杜甫", "李白", "王维"]  # 王维 under --label-min-count 10 (8 times)


def lines(labelled: bool, marked: bool) -> list[str]:
    out = []
    for i, poem in enumerate(POEMS * 3):
        line = f"{POETS[i % len(POETS)]}\t{poem}" if labelled else poem
        out.append(("^" if marked else "　　") + line)
        if i % 3 == 2:
            out.append("　" if i % 2 else "")  # blank lines (one with full-width space) part paragraphs
    return out


def write_corpus(root, labelled=False, marked=False):
    """Three files that together touch every joint: CRLF with a '\\r' at the very end (the '\\n'
    joining the next file completes it), a stray marker, an emoji, GBK, a BOM, no final newline."""
    text = lines(labelled, marked)
    root.mkdir()
    a = "\r\n".join(text) + "\r"
    if not marked:
        a = a.replace("黄河入海流", "黄河^入海流 😀")
    (root / "a.txt").write_bytes(a.encode("utf-8"))
    (root / "b.txt").write_bytes("\n".join(text[::-1]).encode("gbk"))
    (root / "c.txt").write_bytes("\n".join(text[1::2]).encode("utf-8-sig"))
    return root


def shrink_chunks(monkeypatch):
    monkeypatch.setattr(decoding, "CHUNK_BYTES", 37)  # never a whole character's multiple in UTF-8 or GBK
    monkeypatch.setattr(decoding, "DETECT_BYTES", 301)  # a file's head: still enough to tell GBK from Big5
    monkeypatch.setattr(encoded, "WORD_CHUNK_CHARS", 45)
    monkeypatch.setattr(encoded, "REMAP_IDS", 13)


@pytest.fixture
def tiny_chunks(monkeypatch):
    shrink_chunks(monkeypatch)


def keep(built, info):
    return built


def warnings_of(caplog, run):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = run()
    return result, [r.getMessage() for r in caplog.records if r.name.startswith("zhrnn")]


def assert_same(path, cfg, level, tmp_path, caplog, monkeypatch, chosen=keep):
    """Prepared with each file as one piece, then in tiny chunks: the same in every respect."""
    prepare = lambda cache: encode_corpus([path], cfg, level, 1, None, chosen, cache=tmp_path / cache)  # noqa: E731
    whole, whole_warnings = warnings_of(caplog, lambda: prepare("whole"))
    shrink_chunks(monkeypatch)
    new, new_warnings = warnings_of(caplog, lambda: prepare("tiny"))
    assert new.info == whole.info
    assert np.array_equal(new.ids, whole.ids) and new.ids.dtype == whole.ids.dtype == np.uint16
    assert new.tokenizer.to_dict() == whole.tokenizer.to_dict()
    assert new_warnings == whole_warnings
    assert np.array_equal(whole.ids, whole.tokenizer.encode(load_corpus(path, cfg).text))
    return new


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("paragraphs", ["line", "blank", "off"])
@pytest.mark.parametrize("convert", [None, "t2s"])
def test_tiny_chunks_prepare_the_same_ids_vocabulary_and_info(tmp_path, caplog, monkeypatch, level, paragraphs, convert):
    path = write_corpus(tmp_path / "text")
    new = assert_same(path, CorpusConfig(paragraphs=paragraphs, convert=convert), level, tmp_path, caplog, monkeypatch)
    assert new.info.chars > 5 * decoding.CHUNK_BYTES  # many chunks, so many edges


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("paragraphs", ["line", "blank"])
def test_labels_counted_over_the_whole_text(tmp_path, caplog, monkeypatch, level, paragraphs):
    path = write_corpus(tmp_path / "text", labelled=True)
    min_count = 10 if paragraphs == "line" else 2  # blank: only a paragraph's first line has its label read
    cfg = CorpusConfig(paragraphs=paragraphs, labels=True, label_min_count=min_count)
    new = assert_same(path, cfg, level, tmp_path, caplog, monkeypatch)
    assert "李白" in new.info.labels
    assert paragraphs == "blank" or "王维" not in new.info.labels  # 8 times, under min_count


@pytest.mark.parametrize("level", ["char", "word"])
def test_an_already_marked_text_is_used_as_is(tmp_path, caplog, monkeypatch, level):
    path = write_corpus(tmp_path / "text", marked=True)
    new = assert_same(path, CorpusConfig(normalize="NFKC"), level, tmp_path, caplog, monkeypatch)
    markers = sum(f.read_bytes().decode("gbk" if f.name == "b.txt" else "utf-8-sig").count("^") for f in path.iterdir())
    assert new.info.paragraphs == markers > 30  # the markers of the text, counted over all chunks


def test_word_level_through_the_worker_pool_equals_in_process(tmp_path, tiny_chunks, monkeypatch):
    path = write_corpus(tmp_path / "text")
    alone = encode_corpus([path], CorpusConfig(), "word", 1, None, keep, cache=tmp_path / "alone")
    pools = []
    real = encoded.multiprocessing.get_context
    monkeypatch.setattr(encoded.multiprocessing, "get_context", lambda *a: pools.append(a) or real(*a))
    monkeypatch.setattr(encoded, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(encoded, "_workers", lambda size: 2)
    pooled = encode_corpus([path], CorpusConfig(), "word", 1, None, keep, cache=tmp_path / "pooled")
    assert pools == [("spawn",)]
    assert np.array_equal(pooled.ids, alone.ids)
    assert pooled.tokenizer.vocab == alone.tokenizer.vocab and pooled.info == alone.info


def test_another_char_vocabulary_chosen_remaps_the_ids(tmp_path, caplog, monkeypatch):
    """A resumed model's vocabulary: other ids, and a character it lacks becomes <unk>."""
    def reordered(built, info):
        vocab = [t for t in built.vocab if t != "霜"]
        return CharTokenizer([vocab[0], *reversed(vocab[1:]), "龘"], built.marker)

    new = assert_same(write_corpus(tmp_path / "text"), CorpusConfig(), "char", tmp_path, caplog, monkeypatch,
                      chosen=reordered)
    assert 0 in set(new.ids.tolist())  # 霜, as <unk>


def test_a_word_vocabulary_without_some_words_spells_them_out(tmp_path, caplog, monkeypatch):
    """A fine-tuned base that lacks words of this text: those become their characters (more ids
    than the text's own vocabulary gives), and a character it lacks becomes <unk>."""
    def fewer_words(built, info):
        dropped = {t for t in built.vocab if len(t) > 1 and t != "<unk>"}
        dropped = set(sorted(dropped)[::2]) | {"霜"}
        return WordTokenizer([t for t in built.vocab if t not in dropped], built.marker, built.script)

    path = write_corpus(tmp_path / "text")
    own = encode_corpus([path], CorpusConfig(), "word", 1, None, keep, cache=tmp_path / "own")
    new = assert_same(path, CorpusConfig(), "word", tmp_path, caplog, monkeypatch, chosen=fewer_words)
    assert len(new.ids) > len(own.ids)
    assert new.tokenizer.decode(new.ids).replace("<unk>", "霜") == own.tokenizer.decode(own.ids)


def test_a_word_vocabulary_for_char_level_ids_is_refused(tmp_path):
    path = write_corpus(tmp_path / "text")
    words = lambda built, info: WordTokenizer(built.vocab, built.marker)
    with pytest.raises(ConfigError, match="word-level"):
        encode_corpus([path], CorpusConfig(), "char", 1, None, words, cache=tmp_path / "cache")


def test_bad_bytes_past_the_head_give_the_same_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_bytes("\n".join(POEMS * 20).encode("utf-8") + b"\xff" + "尾".encode("utf-8"))
    cfg = CorpusConfig(encoding="utf-8")
    with pytest.raises(CorpusError) as old:  # the file read as one block
        load_corpus(path, cfg)
    shrink_chunks(monkeypatch)
    with pytest.raises(CorpusError) as new:
        encode_corpus([path], cfg, "char", 1, None, keep, cache=tmp_path / "cache")
    assert str(new.value) == str(old.value) and "\n" not in str(new.value)
    with pytest.raises(CorpusError, match=r"is not valid utf-8 at byte \d+, though its first 301 bytes"):
        encode_corpus([path], CorpusConfig(), "char", 1, None, keep, cache=tmp_path / "cache")


def test_temporary_files_go_when_done_and_on_failure(tmp_path, tiny_chunks):
    text = write_corpus(tmp_path / "text")
    done = encode_corpus([text], CorpusConfig(), "word", 1, None, keep, cache=tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "encoded").iterdir()
    ids = f"ids-{encoded.vocab_digest(done.tokenizer)}.npy"
    assert sorted(p.name for p in entry.iterdir()) == [".lock", "corpus.json", "corpus.json.check", ids, f"{ids}.check"]
    (text / "d.txt").write_bytes(b"PK\x03\x04\x00\x00")  # a binary file, read after the others
    with pytest.raises(CorpusError, match="binary"):
        encode_corpus([text], CorpusConfig(), "word", 1, None, keep, cache=tmp_path / "cache")
    for entry in (tmp_path / "cache" / "encoded").iterdir():
        assert not [p for p in entry.iterdir() if p.name.startswith(".") and p.name != ".lock"]  # the lock stays


def test_no_chunk_holds_the_whole_text(tmp_path, tiny_chunks, monkeypatch):
    sizes = []
    real = PreparedText.chunks

    def measured(self):
        for chunk in real(self):
            sizes.append(len(chunk))
            yield chunk

    monkeypatch.setattr(PreparedText, "chunks", measured)
    data = encode_corpus([write_corpus(tmp_path / "text")], CorpusConfig(), "char", 1, None, keep, cache=tmp_path / "c")
    assert sum(sizes) == data.info.chars and max(sizes) < 100  # a line or two at a time


def test_a_line_past_the_longest_is_cut_at_sentence_ends_wherever_the_pieces_fall(caplog):
    from zhrnn.text.pipeline import cut_at_lines

    text = "短行。\n" + "这是一句。" * 100 + "\n尾巴" + "又一句话。" * 30
    for at in (3, 37, 200, len(text) - 5):  # the long line starts, runs over, or ends inside a piece
        with caplog.at_level(logging.WARNING):
            out = "".join(cut_at_lines([text[:at], text[at:]], longest=40))
        assert out.replace("\n", "") == text.replace("\n", "")  # only line breaks added
        assert max(len(line) for line in out.split("\n")) <= 40
        assert all(line.endswith("。") for line in out.split("\n")[1:-1] if len(line) > 30)  # at sentence ends
    assert caplog.text.count("is cut at sentence ends") == 4  # once a text
    assert "".join(cut_at_lines(["a\nb", "c\n", "d"], longest=40)) == "a\nbc\nd"  # short lines: as they were
