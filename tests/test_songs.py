"""Songs and other texts of several-line paragraphs: blocks between blank lines found by
themselves, shown with a blank line between them, choruses allowed to come back, whole songs
sampled (issue 16)."""
import pytest

import zhrnn
from zhrnn.text.pipeline import CorpusConfig, prepare

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


def test_corpus_inspect_says_which_it_takes(tmp_path):
    (tmp_path / "歌.txt").write_text(SONGBOOK, encoding="utf-8")
    (tmp_path / "诗.txt").write_text(POEMS, encoding="utf-8")
    songs = run_cli("corpus", "inspect", "歌.txt", cwd=tmp_path)
    assert songs.returncode == 0, songs.stderr
    assert "3 blocks between blank lines, 4.0 lines each" in songs.stdout
    assert "paragraphs          one a line" in run_cli("corpus", "inspect", "诗.txt", cwd=tmp_path).stdout


def test_a_memorised_song_comes_back_whole_chorus_and_all_then_a_blank_line(singer):
    model = zhrnn.load(singer.run_dir)
    assert model.tokenizer.blocks and model.tokenizer.chorus
    assert model.info["corpus_config"]["paragraphs"] == "blank"  # what auto chose, kept with the model
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
