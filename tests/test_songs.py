"""Songs and other texts of several-line paragraphs: blocks between blank lines found by
themselves, shown with a blank line between them, choruses allowed to come back, whole songs
sampled (issue 16)."""
import pytest
import torch

import zhrnn
from zhrnn.text.pipeline import CorpusConfig, load_corpus, prepare

from .conftest import POEMS, TINY, run_cli

# Three short songs written for this test, each ending in its chorus sung twice.
SONGS = [
    "春风吹过小河边\n柳枝轻摇燕归来\n我们唱吧唱到天明\n我们唱吧唱到天明",
    "夏日蝉鸣绿荫浓\n荷花开满池塘中\n一起走吧走向远方\n一起走吧走向远方",
    "秋月照亮山间路\n霜叶飘落满溪红\n回家去吧带着思念\n回家去吧带着思念",
]
SONGBOOK = "\n\n".join(SONGS) + "\n"


@pytest.fixture(scope="module")
def singer(tmp_path_factory):
    from zhrnn.training import fit

    root = tmp_path_factory.mktemp("songs")
    (root / "歌.txt").write_text(SONGBOOK, encoding="utf-8")
    return fit(root / "歌.txt", progress=False, out_dir=str(root / "run"), **{**TINY, "iters": 500})


def test_auto_takes_blank_line_blocks_for_songs_and_lines_for_one_poem_a_line():
    songs = prepare(SONGBOOK)
    assert songs.layout == "blank" and songs.paragraphs == 3
    assert songs.text.startswith("^春风吹过小河边\n柳枝轻摇燕归来\n") and songs.text.count("^") == 3
    assert songs.info.repeated_lines == pytest.approx(3 / 12)
    poems = prepare(POEMS)
    assert poems.layout == "line" and poems.paragraphs == 4
    # prose with a blank line between one-line paragraphs is still one paragraph a line
    prose = prepare("第一段。\n\n第二段。\n\n第三段。\n")
    assert prose.layout == "line" and prose.paragraphs == 3 and prose.info.repeated_lines == 0
    assert prepare(SONGBOOK, CorpusConfig(paragraphs="line")).paragraphs == 12  # asked for: kept
    # not songs: a heading over a file of poems a line, two such files, a text already marked
    many = "\n".join(f"第{i}首诗，只有一行。" for i in range(200))
    assert prepare("全唐诗\n\n" + many + "\n").layout == "line"
    assert prepare(many + "\n\n" + many + "\n").layout == "line"
    marked = prepare("^一二三\n四五六\n\n^七八九\n十\n")
    assert marked.layout == "line" and marked.text == "^一二三\n四五六\n\n^七八九\n十\n"
    # repeats are counted in the paragraph they are in, whatever order the paragraphs come in
    shares = []
    for order in (["甲\n乙\n甲", "丙", "丁\n戊"], ["丁\n戊", "丙", "甲\n乙\n甲"]):
        text = prepare("\n\n".join(order) + "\n", CorpusConfig(paragraphs="blank"))
        text.text  # a complete pass fills in the counts
        shares.append(text.info.repeated_lines)
    assert shares == [pytest.approx(1 / 5)] * 2  # one repeat in the 5 lines of the two multi-line paragraphs


def test_corpus_inspect_says_which_it_takes(tmp_path):
    (tmp_path / "歌.txt").write_text(SONGBOOK, encoding="utf-8")
    (tmp_path / "诗.txt").write_text(POEMS, encoding="utf-8")
    songs = run_cli("corpus", "inspect", "歌.txt", cwd=tmp_path)
    assert songs.returncode == 0, songs.stderr
    assert "3 blocks between blank lines, 4.0 lines each" in songs.stdout
    assert "paragraphs          one a line" in run_cli("corpus", "inspect", "诗.txt", cwd=tmp_path).stdout


def test_a_memorised_song_comes_back_whole_chorus_and_all_then_a_blank_line(singer):
    model = zhrnn.load(singer.run_dir)
    assert model.layout.blocks and model.layout.chorus
    assert model.info["corpus_config"]["paragraphs"] == "blank"  # what auto chose, kept with the model
    state = torch.load(singer.checkpoint, weights_only=True)  # the layout is the run's, not the tokenizer's
    assert state["layout"] == {"marker": "^", "blocks": True, "chorus": True} and "blocks" not in state["tokenizer"]
    # greedy, every other option at its default: the chorus is sung twice, then the next song
    two = model.generate("春", greedy=True, num_paragraphs=2)
    assert two == SONGS[0] + "\n\n" + SONGS[1]
    assert model.generate("夏", greedy=True, num_paragraphs=1) == SONGS[1]
    # the whole output bans repeats when asked to: then the chorus cannot come back
    assert model.generate("春", greedy=True, num_paragraphs=1, no_repeat_scope="text") != SONGS[0]


def test_num_paragraphs_gives_whole_paragraphs_past_the_default_length(trained):
    model = zhrnn.load(trained.run_dir)
    text = model.generate("床", greedy=True, num_paragraphs=8)  # 8 poems of about 24 characters: past --len 100
    assert len(text) > 100 and text.count("\n") == 7 and text.startswith(POEMS.replace("\n", "", 0)[:50])
    assert len(model.generate("床", greedy=True, num_paragraphs=8, length=30)) == 30  # an explicit --len still cuts


def lrc_folder(root):
    """Two singers' songs as LRC files, nested, with every kind of timestamp, tags and credits."""
    (root / "山歌人").mkdir(parents=True)
    (root / "海风" / "旧歌").mkdir(parents=True)
    (root / "山歌人" / "春.lrc").write_text(
        "[ti:春天]\n[ar:山歌人]\n[al:第一张]\n[by:某人]\n[offset:0]\n[00:00.00]作词：某某\n[00:01.00]作曲 : 某某\n"
        "[00:05.12]春风吹过小河边\n[00:09.30]柳枝轻摇燕归来\n[00:12.00]\n[00:14.10][01:20.33]我们唱吧唱到天明\n",
        encoding="utf-8")
    (root / "海风" / "旧歌" / "夏.lrc").write_text(  # no [ar:]: the singer's folder names the singer
        "[00:03:10]夏日蝉鸣绿荫浓\n[00:07]荷花开满池塘中\n[length: 03:20]\n[re:editor]\n[ve:1.0]\n", encoding="utf-8")
    return root


def test_lrc_files_give_one_song_a_paragraph_with_no_timestamp_tag_or_credit(tmp_path):
    from zhrnn.text.tokenizer import build_tokenizer

    corpus = load_corpus(lrc_folder(tmp_path / "歌词"))
    assert corpus.layout == "blank"
    # the chorus line, stamped [00:14.10][01:20.33], is sung at both times
    assert corpus.text == "^春风吹过小河边\n柳枝轻摇燕归来\n我们唱吧唱到天明\n我们唱吧唱到天明\n^夏日蝉鸣绿荫浓\n荷花开满池塘中\n"
    vocab = set(build_tokenizer(corpus.text, "char", marker=corpus.marker).vocab)
    assert not vocab & set("[]:：.0123456789tiarloffsetbyengvhlcd作词曲某")
    labelled = load_corpus(tmp_path / "歌词", CorpusConfig(labels=True, label_min_count=1))
    assert set(labelled.labels) == {"山歌人", "海风"}  # from [ar:], and from the folder below the one given


def test_a_folder_of_lrc_songs_trains_and_samples_a_song_by_its_singer(tmp_path):
    lrc_folder(tmp_path / "歌词")
    train = run_cli("train", "歌词", "--labels", "--label-min-count", "1", "--out-dir", "run", "--iter", "60",
                    "--hidden-size", "32", "--embedding-size", "16", "--num-layers", "1", "--seq-length", "16",
                    "--batch-size", "8", "--save-freq", "60", "--val-fraction", "0",
                    "--dropout", "0.1", cwd=tmp_path)  # learned by heart: the singer's songs come back whole
    assert train.returncode == 0, train.stderr
    assert "blocks between blank lines" in train.stderr  # --paragraphs auto says what it took
    song = run_cli("sample", "--model", "run", "--label", "山歌人", "--num-paragraphs", "1", "--seed", "0", cwd=tmp_path)
    assert song.returncode == 0, song.stderr
    assert song.stdout.strip() and "[" not in song.stdout and "\n\n" not in song.stdout.strip()


def test_credit_lines_stay_when_asked_for(tmp_path):
    kept = load_corpus(lrc_folder(tmp_path / "歌词"), CorpusConfig(keep_credits=True))
    assert kept.text.startswith("^作词：某某\n作曲 : 某某\n春风吹过小河边\n")


def test_lrc_details_order_by_time_bom_unknown_tags_traditional_credits_and_one_song_alone(tmp_path):
    from zhrnn.text.lyrics import clean_lrc

    text = ("\ufeff[ti:x]\n[ar:甲]\n[kuwo:123]\n[00:00.00]作詞：某\n[00:00.50]作词/作曲：某\n[00:05]一\n"
            "[00:09][00:20]副歌\t唱\n[00:14]二<00:14.50>字\n无时间\n[00:25]三\n")
    assert clean_lrc(text) == ("一\n副歌 唱\n二字\n无时间\n副歌 唱\n三", "甲")
    (tmp_path / "独唱.lrc").write_text("[ar:乙]\n[00:01]第一句\n[00:03]第二句\n", encoding="utf-8")
    alone = load_corpus(tmp_path / "独唱.lrc", CorpusConfig(labels=True, label_min_count=1))
    assert alone.layout == "blank" and alone.paragraphs == 1 and set(alone.labels) == {"乙"}  # one song, one paragraph


def test_the_shijing_songbook_of_the_worked_example_reads_as_305_songs_by_section(tmp_path):
    import subprocess
    import sys

    from .conftest import REPO, shared

    data = shared("chinese-poetry", "shijing")
    subprocess.run([sys.executable, REPO / "scripts" / "shijing_lrc.py", data, "-o", tmp_path / "诗经歌词"], check=True,
                   capture_output=True)
    corpus = load_corpus(tmp_path / "诗经歌词", CorpusConfig(labels=True))
    assert corpus.layout == "blank" and corpus.paragraphs == 305
    assert {"郑风", "周南", "鹿鸣之什"} <= set(corpus.labels) and "[" not in corpus.text and "作词" not in corpus.text


def test_a_folder_of_one_song_files_trains_a_song_a_paragraph(tmp_path):
    for singer, name, song in [("山歌人", "1.txt", SONGS[0]), ("山歌人", "2.txt", SONGS[1]), ("海风", "3.txt", SONGS[2])]:
        (tmp_path / "歌" / singer).mkdir(parents=True, exist_ok=True)
        verses = song.split("\n")
        # a verse, a blank line, the chorus: inside one file, the blank line does not end the song
        (tmp_path / "歌" / singer / name).write_text("\n".join(verses[:2]) + "\n\n" + "\n".join(verses[2:]) + "\n",
                                                     encoding="utf-8")
    by_file = load_corpus(tmp_path / "歌", CorpusConfig(paragraphs="file"))
    assert by_file.text == "".join(f"^{song}\n" for song in SONGS) and by_file.info.layout == "blank"
    assert load_corpus(tmp_path / "歌").paragraphs == 6  # left to auto: the blank lines cut each song in two
    labelled = load_corpus(tmp_path / "歌", CorpusConfig(paragraphs="file", labels=True, label_min_count=1))
    assert set(labelled.labels) == {"山歌人", "海风"}


def test_line_scoped_repeats_let_a_line_end_four_times_a_paragraph_not_forever():
    from zhrnn.generation import SampleConfig, sample
    from zhrnn.text.tokenizer import CharTokenizer

    from .test_decoding import Bigram

    tok = CharTokenizer.build("甲乙丙\n")
    # greedy on its own sings 甲乙 forever: each line's best next character is the line break
    table = {"^": {"甲": 1.0}, "\n": {"甲": 1.0}, "甲": {"乙": 1.0}, "乙": {"\n": 0.9, "丙": 0.1},
             "丙": {"\n": 0.9, "丙": 0.1}}
    greedy = dict(length=80, greedy=True, no_repeat_scope="line")
    lines = sample(Bigram(tok, table), tok, cfg=SampleConfig(**greedy))[0].split("\n")
    assert lines[:9] == ["甲乙"] * 4 + ["甲乙丙"] * 4 + ["甲乙丙丙"]
    assert max(lines[:-1].count(line) for line in lines[:-1]) == 4  # the last may be cut by --len
    unbanned = sample(Bigram(tok, table), tok, cfg=SampleConfig(**greedy, no_repeat_ngram=0))[0].split("\n")
    assert set(unbanned[:-1]) == {"甲乙"}  # with no bans at all, the loop


def test_a_run_from_the_cache_says_again_how_auto_cut_the_paragraphs(tmp_path, caplog):
    import logging

    from zhrnn.training.encoded import encode_corpus

    (tmp_path / "歌.txt").write_text(SONGBOOK, encoding="utf-8")
    for cached in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="zhrnn"):
            found = encode_corpus([tmp_path / "歌.txt"], CorpusConfig(), "char", 1, None, lambda built, info: built,
                                  cache=tmp_path / "cache")
        assert found.cached == cached and "the 3 blocks between blank lines" in caplog.text


def test_samples_of_a_song_model_are_set_apart_from_its_songs(singer):
    out = run_cli("sample", "--model", str(singer.run_dir), "--start", "春", "--greedy", "--num", "2",
                  "--num-paragraphs", "2", cwd=singer.run_dir.parent)
    assert out.returncode == 0, out.stderr
    two = SONGS[0] + "\n\n" + SONGS[1]  # two songs a sample, a blank line between them
    assert out.stdout == f"{two}\n\n* * *\n\n{two}\n"


def test_the_layout_of_checkpoints_from_before_it_was_saved_on_its_own():
    from zhrnn.text.layout import Layout

    tokenizer = {"level": "char", "vocab": ["<unk>", "^"], "marker": "^"}
    # 2026-12: the flags rode on the tokenizer
    assert Layout.from_checkpoint({"tokenizer": {**tokenizer, "blocks": True, "chorus": True}}) == Layout("^", True, True)
    # before that: a run read with --paragraphs blank had blocks, and nothing had choruses
    assert Layout.from_checkpoint({"tokenizer": tokenizer, "corpus_config": {"paragraphs": "blank"}}) == Layout("^", True)
    assert Layout.from_checkpoint({"tokenizer": {**tokenizer, "marker": None}}) == Layout(None)
    saved = Layout("^", blocks=True)
    assert Layout.from_checkpoint({"tokenizer": tokenizer, "layout": saved.to_dict()}) == saved
