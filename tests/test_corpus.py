"""Reading text: encodings, newlines, paragraph markers, OpenCC, directories, refusals."""

import pytest

from zhrnn.text.decoding import decode
from zhrnn.text.pipeline import CorpusConfig, load_corpus
from zhrnn.text.render import render
from zhrnn.errors import CorpusError

SIMPLIFIED = "第一段：我们今天去学校上课，老师说明天要考试。\n第二段：大家都很紧张，但是我觉得没问题！\n"
TRADITIONAL = "我們今天去學校上課，老師說明天要考試。\n大家都很緊張，但是我覺得沒問題！\n"


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("text, encoding", [
    (SIMPLIFIED, "gbk"), (SIMPLIFIED, "gb18030"), (SIMPLIFIED, "gb2312"),
    (TRADITIONAL, "big5"), (TRADITIONAL, "gbk"),
    (SIMPLIFIED, "utf-8-sig"), (SIMPLIFIED, "utf-16"), (TRADITIONAL, "utf-32"),
])
def test_legacy_and_bom_files_give_the_same_corpus_as_their_utf8_twin(tmp_path, text, encoding):
    twin = load_corpus(write(tmp_path, "utf8.txt", text.encode("utf-8")))
    other = load_corpus(write(tmp_path, f"{encoding}.txt", text.encode(encoding)))
    assert other.text == twin.text
    assert other.text.startswith("^第一段" if text is SIMPLIFIED else "^我們")


@pytest.mark.parametrize("text", ["café crème", "Grüße, Straße", "¿Qué tal? ñandú", "Привет, мир", "ＡＢＣ，。"])
def test_short_utf8_text_in_any_language_stays_utf8(text):
    assert decode(text.encode("utf-8")) == (text, "utf-8")


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"  \n\t\n  ", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), "binary"),
    ("café au lait, crème brûlée".encode("latin-1"), "--encoding"),
    ("中文".encode("utf-8") + "中文".encode("gbk") + b"\xff\xfe\xfd", "--encoding"),
])
def test_unreadable_files_are_refused_with_a_reason(tmp_path, data, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(write(tmp_path, "bad.txt", data))


def test_explicit_encoding_reads_latin1_and_reports_wrong_ones(tmp_path):
    path = write(tmp_path, "fr.txt", "café crème".encode("latin-1"))
    assert load_corpus(path, CorpusConfig(encoding="latin-1")).text == "^café crème\n"
    with pytest.raises(CorpusError, match="not valid utf-8"):
        load_corpus(path, CorpusConfig(encoding="utf-8"))


def test_newlines_are_normalised_and_fullwidth_punctuation_kept(tmp_path):
    path = write(tmp_path, "crlf.txt", "　　你好，世界！\r\n再见？\r第三行\n".encode("utf-8"))
    # full-width indentation is trimmed (the marker marks the paragraph), ，！？ stay full-width
    assert load_corpus(path).text == "^你好，世界！\n^再见？\n^第三行\n"


def test_paragraph_modes(tmp_path):
    path = write(tmp_path, "p.txt", "第一行\n第二行\n\n\n第三行\n".encode("utf-8"))
    assert load_corpus(path, CorpusConfig(paragraphs="line")).text == "^第一行\n^第二行\n^第三行\n"
    blank = load_corpus(path, CorpusConfig(paragraphs="blank"))
    assert blank.text == "^第一行\n第二行\n^第三行\n" and blank.paragraphs == 2
    assert load_corpus(path, CorpusConfig(paragraphs="off")).text == "第一行\n第二行\n\n\n第三行\n"


def test_a_corpus_that_already_has_markers_is_used_as_is(tmp_path):
    marked = "^床前明月光，\n疑是地上霜。\n^春眠不觉晓，\n处处闻啼鸟。\n"
    assert load_corpus(write(tmp_path, "m.txt", marked.encode("utf-8"))).text == marked
    inline = "^第一段^第二段"
    assert load_corpus(write(tmp_path, "i.txt", inline.encode("utf-8"))).text == inline + "\n"


def test_render_hides_markers_and_breaks_paragraphs():
    assert render("^春眠不觉晓\n^夜来风雨声\n", "^") == "春眠不觉晓\n夜来风雨声\n"
    assert render("^第一段^第二段", "^") == "第一段\n第二段"
    assert render("a^b", None) == "a^b"


def test_opencc_conversion_and_script_detection(tmp_path):
    path = write(tmp_path, "t.txt", TRADITIONAL.encode("utf-8"))
    assert load_corpus(path).script == "traditional"
    converted = load_corpus(path, CorpusConfig(convert="t2s"))
    assert converted.script == "simplified"
    assert converted.text.startswith("^我们今天去学校上课，老师说明天要考试。")


def test_a_directory_of_txt_files_is_one_corpus_in_name_order(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text("乙\n", encoding="utf-8")
    (tmp_path / "d" / "sub" / "c.txt").write_bytes("丙\n".encode("gbk"))
    (tmp_path / "d" / "a.txt").write_text("甲\n", encoding="utf-8")
    (tmp_path / "d" / "skip.md").write_text("不读\n", encoding="utf-8")
    corpus = load_corpus(tmp_path / "d")
    assert corpus.text == "^甲\n^乙\n^丙\n"
    assert sorted(corpus.encodings.values()) == ["gb18030", "utf-8", "utf-8"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt or .lrc files"):
        load_corpus(tmp_path / "empty")
