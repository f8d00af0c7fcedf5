"""`zhrnn corpus build` (the chinese-poetry builder) and `zhrnn corpus inspect`."""
import json
import re

import pytest

from zhrnn.text import poetry
from zhrnn.errors import ConfigError, CorpusError
from zhrnn.text.inspection import inspect
from zhrnn.text.poetry import BuildConfig, build, clean, form_of

from .conftest import assert_clean_error, run_cli, shared

# Four schemas of the dataset, in files whose names say nothing: records are found by fields.
FLAT = [  # 全唐诗: a list of poems
    {"author": "李白", "title": "靜夜思", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
    {"author": "李白", "title": "重複", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
    {"author": "佚名", "title": "殘", "paragraphs": ["□□明月光，疑是地上霜。"]},
]
NESTED = {  # 唐诗三百首: a book of sections of poems, the form in a field of the section
    "title": "唐詩三百首",
    "content": [{"type": "五言絕句", "content": [
        {"chapter": "登鸛雀樓", "author": "王之渙", "paragraphs": ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]},
    ]}],
}
CI = [{"author": "苏轼", "rhythmic": "水调歌头", "paragraphs": ["明月几时有？把酒问青天。"]}]  # 全宋词
PROSE = [{"chapter": "学而篇", "paragraphs": ["子曰：学而时习之。", "有子曰：其为人也孝弟。"]}]  # 论语
NOTES = [{"author": "某", "title": "注", "paragraphs": ["春眠不觉晓（一作晨），处处闻啼[鸟]。"]}]


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    for name, value in {"a.json": FLAT, "b.json": NESTED, "c.json": CI, "d.json": PROSE, "e.json": NOTES}.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return root


def test_records_are_found_by_their_fields_in_every_schema(dataset):
    text, count = build([str(dataset)], BuildConfig())
    assert text.splitlines() == [
        "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",  # the duplicate and the □ poem are dropped
        "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。",
        "明月几时有？把酒问青天。",
        "子曰：学而时习之。",  # an untitled chapter is a list of separate passages
        "有子曰：其为人也孝弟。",
        "春眠不觉晓，处处闻啼鸟。",  # the editor's note removed, the restored character kept
    ]
    assert count == 6


def test_labels_titles_conversion_and_filters(dataset):
    text, _ = build([str(dataset)], BuildConfig(convert="t2s", label="author", title=True, forms=("五言绝句",)))
    assert text.splitlines() == [
        "李白\t《静夜思》床前明月光，疑是地上霜。举头望明月，低头思故乡。",
        "王之涣\t《登鹳雀楼》白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",  # the chapter names the poem
    ]
    # an author typed in Simplified finds the Traditional record, and a 词牌 filter keeps one 词
    text, _ = build([str(dataset)], BuildConfig(authors=("王之涣",)))
    assert text.startswith("白日依山盡")
    text, _ = build([str(dataset)], BuildConfig(rhythmics=("水調歌頭",), label="rhythmic", author_line=True))
    assert text == "水调歌头\t苏轼：明月几时有？把酒问青天。\n"
    text, count = build([str(dataset)], BuildConfig(min_len=10, max_len=11))
    assert count == 1 and text.startswith("有子曰")


def test_form_and_cleaning_rules():
    assert form_of("床前明月光，疑是地上霜。举头望明月，低头思故乡。") == "五言绝句"
    assert form_of("白日依山尽，黄河入海流。" * 4) == "五言律诗"
    assert form_of("朝辞白帝彩云间，千里江陵一日还。") == "七言"
    assert form_of("明月几时有？把酒问青天。不知天上宫阙，今夕是何年。") == "杂言"
    assert clean("春眠（一作（晨）眠）不觉晓。") == "春眠不觉晓。"
    assert clean("□□不觉晓。") is None and clean("語渾{山/淪}。") is None
    # a note between two marks leaves one mark: the sentence end where there is one
    assert clean("穿耳胡僧笑點頭。（見《金石萃編》）。") == "穿耳胡僧笑點頭。"
    assert clean("就中小女有所翳，（下缺）（同上）。") == "就中小女有所翳。"
    assert clean("悲夫！（一作哉）。") == "悲夫！" and clean("何時？（一作年）。歸來") == "何時？歸來"
    assert clean("（見《柳河東集》）。") is None  # nothing but the note


def test_builder_refusals(dataset, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown form"):
        BuildConfig(forms=("六言",))
    with pytest.raises(CorpusError, match="no records passed"):
        build([str(dataset)], BuildConfig(authors=("杜甫",)))
    with pytest.raises(CorpusError, match="neither a file"):
        build(["不存在的集"], BuildConfig())
    with pytest.raises(CorpusError, match="--data DIR"):  # a collection name without the data
        build(["全唐诗"], BuildConfig(), data=str(tmp_path / "nowhere"))
    # offline: the download fails with one clear message naming the way out
    monkeypatch.setattr(poetry, "DOWNLOAD_URL", "http://127.0.0.1:9/chinese-poetry.zip")
    with pytest.raises(CorpusError, match="cannot download.*--data DIR"):
        build(["全唐诗"], BuildConfig(), data=str(tmp_path / "cache" / "chinese-poetry"), fetch=True)
    assert not (tmp_path / "cache" / "chinese-poetry").exists()


def test_cli_build_then_train_with_labels(dataset, tmp_path):
    out = tmp_path / "诗.tsv"
    proc = run_cli("corpus", "build", dataset, "-o", out, "--label", "author", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").startswith("李白\t床前")
    assert_clean_error(run_cli("corpus", "build", "全唐诗", "-o", out, "--data", tmp_path / "none", cwd=tmp_path),
                       "no chinese-poetry data")


def test_inspect_counts_coverage_script_and_encoding(tmp_path):
    path = tmp_path / "繁.txt"
    # 10 characters: 春 x6, 風 x2 (Traditional-only), 花 x1, 。x1
    path.write_bytes("春春春風花\n春春春風。\n".encode("big5"))
    report = inspect([path])
    assert report.encodings[str(path)] == "cp950"
    assert (report.chars, report.distinct, report.paragraphs) == (10, 4, 2)
    assert report.cjk_share == 1.0
    assert report.cover_99 == 4 and coverage_of(report, 0.6) == 1
    assert report.traditional_share == pytest.approx(2 / 9)  # 風 of the nine Han characters
    assert report.simplified_share == 0.0


def coverage_of(report, share):
    from zhrnn.text.inspection import coverage
    import numpy as np

    return coverage(np.array([6, 2, 1, 1]), share)


def test_notes_leave_no_doubled_punctuation_in_real_records():
    """Records of 全唐诗 whose last line is an editor's note after the final 。 (3,399 lines of the
    built corpus ended in 。。, 1,216 of them in the validation tail)."""
    data = shared("chinese-poetry", "quantangshi")
    files = [data / f"poet.tang.{n}.json" for n in (50000, 51000, 53000)]
    text, count = build([str(f) for f in files], BuildConfig(convert="t2s"))
    assert count > 2000
    lines = text.splitlines()
    assert not [line for line in lines if re.search("[，。？！；：、]{2}", line) or re.match("[，。？！；：、]", line)]
    assert any(line.endswith("穿耳胡僧笑点头。") for line in lines)
    assert any(line.endswith("就中小女有所翳。") for line in lines)


def test_real_collections_from_the_shared_dataset():
    data = shared("chinese-poetry")
    text, count = build(["唐诗三百首"], BuildConfig(convert="t2s", label="author"), data=str(data))
    assert 300 <= count <= 330  # 唐诗三百首 has 3xx poems, each one record
    assert "李白\t" in text and "\t床前明月光" in text
    text, count = build(["论语"], BuildConfig(), data=str(data))
    assert count > 400 and text.startswith("子曰：“学而时习之")
    report = inspect([data / "quantangshi" / "poet.tang.0.json"])
    assert report.traditional_share > 0.2 and report.simplified_share < 0.02
