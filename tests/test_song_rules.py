"""Songs that sound like songs (issue 31): line ends that rhyme by 十三辙 (--rhyme, --rhyme-scheme),
line lengths (--line-len) and a chorus that comes back whole (--structure), on a tiny model of
songs written for this test. Rhymes are checked by pypinyin's finals mapped to the groups here,
not by zhrnn's own tables."""
import logging

import pytest
import torch

from zhrnn.errors import ConfigError
from zhrnn.generation import SampleConfig

from .conftest import TINY

pytest.importorskip("pypinyin")

# Six short songs written for this test, each rhyming through (江阳, 梭波, 言前, 江阳, 遥条, 中东).
SONGS = [
    "月亮照在小河旁\n风吹稻花满村香\n走过街角的银行\n等你回到我身旁",
    "春天花开满山坡\n小鸟唱着快乐歌\n我们一起过小河\n你笑我也笑呵呵",
    "大雨下了一整天\n雨水流到小门前\n我在窗边看云烟\n想起那年的春天",
    "秋风吹落满地黄\n大雁飞向南方\n收了稻谷进了仓\n一家老小喜洋洋",
    "山高水长路迢迢\n小船摇过石板桥\n星星月亮对我笑\n明天早上再来找",
    "夜里灯火照天明\n远方传来读书声\n一路走来一路行\n心里有歌就有梦",
]
SONGBOOK = "\n\n".join(SONGS) + "\n"

# 十三辙 by pypinyin's finals (Style.FINALS: ü as v, the -i of 知 as i, which 十三辙 counts in 一七)
GROUP = {f: g for g, finals in {
    "发花": "a ia ua", "梭波": "o uo e", "乜斜": "ie ve", "怀来": "ai uai", "灰堆": "ei uei ui",
    "遥条": "ao iao", "油求": "ou iou iu", "言前": "an ian uan van", "人辰": "en in uen un vn",
    "江阳": "ang iang uang", "中东": "eng ing ong iong ueng", "一七": "i v er", "姑苏": "u"}.items()
    for f in finals.split()}


def rhyme_of(line: str) -> str | None:
    """The 十三辙 group of a line's last Chinese character, read in the line (pypinyin's own choice
    of reading for a character of several)."""
    from pypinyin import Style, lazy_pinyin

    han = [c for c in line if "\u4e00" <= c <= "\u9fff"]
    return GROUP.get(lazy_pinyin("".join(han), style=Style.FINALS)[-1]) if han else None


def songs_of(text: str) -> list[list[str]]:
    """The paragraphs (blocks between blank lines) of a sampled text, as lists of lines."""
    return [block.split("\n") for block in text.strip("\n").split("\n\n") if block]


@pytest.fixture(scope="module")
def singer(tmp_path_factory):
    from zhrnn.training import fit

    root = tmp_path_factory.mktemp("rhymes")
    (root / "歌.txt").write_text(SONGBOOK, encoding="utf-8")
    import zhrnn

    fit(root / "歌.txt", progress=False, out_dir=str(root / "run"), **{**TINY, "iters": 500})
    return zhrnn.load(root / "run")


def test_the_checker_reads_a_character_as_the_line_has_it():
    assert [rhyme_of(s.split("\n")[-1]) for s in SONGS] == ["江阳", "梭波", "言前", "江阳", "遥条", "中东"]
    assert rhyme_of("走过街角的银行") == "江阳" and rhyme_of("一路走来一路行") == "中东"


def test_a_song_with_a_rhyme_named_ends_every_line_in_it(singer):
    texts = singer.generate_many(6, rhyme="江阳", num_paragraphs=2, seed=3, temperature=1.3)
    lines = [line for text in texts for song in songs_of(text) for line in song]
    assert len(lines) >= 12 and all(rhyme_of(line) == "江阳" for line in lines), texts
    by_character = singer.generate_many(3, rhyme="光", num_paragraphs=1, seed=4, temperature=1.3)
    assert all(rhyme_of(line) == "江阳" for text in by_character for line in text.split("\n")), by_character


def test_the_first_line_chooses_the_rhyme_and_every_song_its_own(singer):
    chosen = set()
    for text in singer.generate_many(8, rhyme=True, num_paragraphs=2, seed=5, temperature=1.5):
        for song in songs_of(text):
            assert len({rhyme_of(line) for line in song}) == 1, text
            chosen.add(rhyme_of(song[0]))
    assert len(chosen) >= 2  # not one group for everything


def test_couplets_change_rhyme_every_two_lines_and_abab_rhymes_the_second_of_each_pair(singer):
    for text in singer.generate_many(6, rhyme=True, rhyme_scheme="aabb", num_paragraphs=1, seed=6, temperature=1.5,
                                     line_len="4-8"):
        lines = songs_of(text)[0]
        pairs = [lines[i:i + 2] for i in range(0, len(lines) - 1, 2)]
        assert all(rhyme_of(a) == rhyme_of(b) for a, b in pairs), text
        assert all(rhyme_of(p[0]) != rhyme_of(q[0]) for p, q in zip(pairs, pairs[1:])), text
    for text in singer.generate_many(6, rhyme=True, rhyme_scheme="abab", num_paragraphs=1, seed=7, temperature=1.5):
        lines = songs_of(text)[0]
        assert len({rhyme_of(line) for line in lines[1::2]}) == 1, text


def test_a_character_of_two_readings_rhymes_by_the_one_its_line_gives_it(singer):
    from zhrnn.generation.request import Request

    tok = singer.tokenizer
    line = Request(tok, "走过街角的银行", SampleConfig(rhyme="江阳"), 1, "cpu", singer.layout)
    ends = line.process(torch.zeros(1, len(tok)), 0)[0, tok.index["\n"]]
    assert torch.isfinite(ends)  # 银行: hang, 江阳
    assert not line.rhyme.table[tok.index["行"], line.rhyme.names.index("江阳")]  # alone, 行 is xing
    other = Request(tok, "一路走来一路行", SampleConfig(rhyme="江阳"), 1, "cpu", singer.layout)
    assert not torch.isfinite(other.process(torch.zeros(1, len(tok)), 0)[0, tok.index["\n"]])


def test_line_len_holds_on_every_line(singer):
    for text in singer.generate_many(6, line_len="5-6", num_paragraphs=2, seed=8, temperature=1.3):
        lengths = [len(line) for song in songs_of(text) for line in song]
        assert lengths and all(5 <= n <= 6 for n in lengths), text
    rhymed = singer.generate_many(4, line_len="3-5", rhyme="江阳", num_paragraphs=1, seed=9, temperature=1.3)
    assert all(3 <= len(line) <= 5 and rhyme_of(line) == "江阳" for text in rhymed for line in text.split("\n")), rhymed


def test_a_full_line_with_no_rhyme_offered_ends_where_it_must_and_says_so(singer, caplog):
    from zhrnn.generation.forms import Rhyme
    from zhrnn.generation.processors import LineRules

    tok = singer.tokenizer
    rhyme = Rhyme(tok, "江阳")
    rules = LineRules(tok, rhyme, "all", (2, 4), tok.index["\n"], rows=1)
    for ch in "春天花":
        rules.update(0, tok.index[ch], tok.index[ch])
    no_rhyme = torch.zeros(1, len(tok)).masked_fill(rhyme.allowed(rhyme.given), float("-inf"))  # as if banned before
    with caplog.at_level(logging.INFO, logger="zhrnn"):
        kept = rules(no_rhyme.clone(), [None], 0)  # one character before the end: nothing rhyming to take
        assert torch.equal(kept, no_rhyme) and "goes on" in caplog.text
        rules.update(0, tok.index["开"], tok.index["开"])
        ended = rules(no_rhyme.clone(), [None], 0)  # full: it ends, unrhymed
    assert torch.isfinite(ended[0]).nonzero().flatten().tolist() == sorted([tok.index["\n"], tok.marker_id])
    assert "ends unrhymed" in caplog.text


def test_structure_sings_the_first_chorus_again_word_for_word_and_writes_new_verses(singer):
    for text in singer.generate_many(4, structure="主副主副", seed=10, temperature=1.3):
        sections = songs_of(text)
        assert [len(s) for s in sections] == [4, 4, 4, 4], text
        assert sections[3] == sections[1] and sections[2] != sections[0], text
    short = singer.generate(structure="verse:2 chorus:3 verse:2 chorus", rhyme=True, seed=11, temperature=1.3)
    sections = songs_of(short)
    assert [len(s) for s in sections] == [2, 3, 2, 3] and sections[3] == sections[1], short
    assert all(len({rhyme_of(line) for line in s}) == 1 for s in sections), short  # a rhyme a section


def test_the_options_read_alike_from_the_command_line_json_and_python():
    from zhrnn.options import read_json

    assert SampleConfig(rhyme=True).rhyme == "auto" and SampleConfig(rhyme=False).rhyme is None
    assert read_json(SampleConfig, "rhyme", True) == "auto" and read_json(SampleConfig, "rhyme", "江阳") == "江阳"
    assert SampleConfig(rhyme=True).form is None and SampleConfig(rhyme=True).candidates == 4  # free text, drafted
    assert SampleConfig(line_len="6-12").line_range == (6, 12) and SampleConfig(line_len="8").line_range == (8, 8)
    assert SampleConfig(structure="主副主副").num_paragraphs == 4
    for bad, match in [(dict(line_len="12-6"), "--line-len"), (dict(rhyme="不存在的韵"), "--rhyme"),
                       (dict(form="五言绝句", line_len="5"), "poem form"), (dict(structure="verse bridge"), "--structure"),
                       (dict(structure="主副", num_paragraphs=3), "--structure")]:
        with pytest.raises(ConfigError, match=match):
            SampleConfig(**bad)


def test_the_cli_takes_a_bare_rhyme_and_refuses_a_bad_one_in_one_line(singer, tmp_path):
    from .conftest import assert_clean_error, run_cli

    ok = run_cli("sample", "--model", singer.path, "--rhyme", "--rhyme-scheme", "aabb", "--num-paragraphs", "1", "--seed", "1",
                 cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    assert_clean_error(run_cli("sample", "--model", singer.path, "--rhyme", "啊啊", cwd=tmp_path), "--rhyme")
    assert_clean_error(run_cli("sample", "--model", singer.path, "--line-len", "9-3", cwd=tmp_path), "--line-len")


def test_the_page_is_told_the_rhymes_and_takes_the_song_fields(singer):
    import threading

    from zhrnn.generation.sampling import Sampling
    from zhrnn.serve.batcher import Batcher, Job
    from zhrnn.serve.requests import Limits, sample_request

    batcher, seen, done = Batcher(singer.model, max_rows=8), [], threading.Event()
    cfg = SampleConfig(rhyme="auto", rhyme_scheme="aabb", line_len="4-8", num_paragraphs=1, seed=2, temperature=1.3)
    batcher.submit(Job(Sampling(singer.tokenizer, "", cfg, 2, layout=singer.layout),
                       lambda e: (seen.append(e), done.set()) if e[0] == "done" else None))
    assert done.wait(60)
    batcher.stop()
    _, texts, rhymes = seen[0]
    for text, sung in zip(texts, rhymes):  # the groups its couplets ended in, in order
        lines = songs_of(text)[0]
        assert sung == [rhyme_of(line) for line in lines[::2]][: len(sung)] and len(sung) >= len(lines) // 2, (text, sung)
    _, _, cfg = sample_request({"rhyme": True, "rhyme_scheme": "abab", "line_len": "6-12", "structure": "主副主副"}, Limits())
    assert (cfg.rhyme, cfg.rhyme_scheme, cfg.line_range, cfg.num_paragraphs) == ("auto", "abab", (6, 12), 4)


def test_structure_and_rhyme_under_a_singers_label(tmp_path):
    import zhrnn
    from zhrnn.training import fit

    for singer, songs in (("甲", SONGS[:3]), ("乙", SONGS[3:])):
        (tmp_path / "歌" / singer).mkdir(parents=True)
        for i, song in enumerate(songs):
            (tmp_path / "歌" / singer / f"{i}.txt").write_text(song + "\n", encoding="utf-8")
    fit(tmp_path / "歌", progress=False, out_dir=str(tmp_path / "run"), labels=True, label_min_count=1,
        paragraphs="file", **{**TINY, "iters": 300})
    model = zhrnn.load(tmp_path / "run")
    for text in model.generate_many(3, structure="主副主副", rhyme=True, label="甲", seed=12, temperature=1.3):
        sections = songs_of(text)
        assert [len(s) for s in sections] == [4, 4, 4, 4] and sections[3] == sections[1], text
        assert all(len({rhyme_of(line) for line in s}) == 1 for s in sections), text
