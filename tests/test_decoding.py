"""Decoding strategies, poem forms, acrostics, stop rules, streaming, scoring, interactive mode."""
import io
import math
import re

import pytest
import torch

import zhrnn
from zhrnn.errors import ConfigError
from zhrnn.generation import SampleConfig, Stepper, beam_search
from zhrnn.generation.request import Request
from zhrnn.interactive import run as interactive
from zhrnn.generation.score import heatmap_html, score_text
from zhrnn.text.layout import Layout

from .conftest import POEMS, run_cli


@pytest.fixture(scope="module")
def model(trained):
    return zhrnn.load(trained.run_dir)


def fourgrams(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(len(text) - 3)]


@pytest.mark.parametrize("form, pattern", [
    ("五言绝句", r"(\w{5}，\w{5}。\n?){2}"),
    ("七言绝句", r"(\w{7}，\w{7}。\n?){2}"),  # the model never saw a 7-character line: the mask makes it anyway
    ("五言律诗", r"(\w{5}，\w{5}。\n?){4}"),
    ("□□□，□□。", r"\w{3}，\w{2}。"),
])
def test_every_output_has_the_form_exactly(model, form, pattern):
    for temperature in (0.5, 1.0, 3.0):
        poems = model.generate_many(12, form=form, temperature=temperature, seed=1)
        assert all(re.fullmatch(pattern, p) for p in poems), poems


def test_acrostic_puts_the_characters_at_each_line_start(model):
    for poem in model.generate_many(8, acrostic="春白千床", seed=2):  # acrostic alone implies 五言绝句
        clauses = re.split("[，。\n]+", poem.strip("\n"))
        assert [c[0] for c in clauses if c] == list("春白千床") and re.fullmatch(r"(\w{5}，\w{5}。\n?){2}", poem)
    poem = model.generate("床前", form="七言绝句", acrostic="床春白千", seed=3)
    assert poem.startswith("床前") and [c[0] for c in re.split("[，。\n]+", poem) if c] == list("床春白千")


def test_form_refuses_what_cannot_fit(model):
    with pytest.raises(ConfigError, match="does not fit"):
        model.generate("床前明月光疑", form="五言绝句")  # a character where the form wants ，
    with pytest.raises(ConfigError, match="lines"):
        model.generate(acrostic="床春白千床春白千床", form="五言绝句")
    with pytest.raises(ConfigError, match="never seen"):
        model.generate(form="□□□！")
    with pytest.raises(ConfigError, match="unknown --form"):
        model.generate(form="宋词")


def test_no_repeat_ngram_stops_the_loops_greedy_falls_into(model):
    looping = model.generate("床", 200, greedy=True, no_repeat_ngram=0)
    assert len(set(fourgrams(looping))) < len(fourgrams(looping))  # the memorised text comes round again
    for text in [model.generate("床", 200, greedy=True), *model.generate_many(4, "春", 200, seed=0, temperature=0.3)]:
        assert len(set(fourgrams(text))) == len(fourgrams(text))  # default: no 4-gram twice


def test_repetition_penalty_shrinks_recent_characters_but_not_punctuation(model):
    tok = model.tokenizer
    dec = Request(tok, "春眠", SampleConfig(repetition_penalty=2.0, no_repeat_ngram=0), 1, "cpu")
    logits = torch.zeros(1, len(tok))
    spring, sleep, comma, other = tok.index["春"], tok.index["眠"], tok.index["，"], tok.index["床"]
    logits[0, [spring, sleep, comma, other]] = torch.tensor([4.0, -4.0, 4.0, 4.0])
    out = dec.process(logits, 0)[0]
    # seen: the probability halved, whatever the logit's sign (so also for log-probabilities)
    assert out[spring] == pytest.approx(4.0 - math.log(2)) and out[sleep] == pytest.approx(-4.0 - math.log(2))
    assert out[comma] == 4.0 and out[other] == 4.0  # punctuation exempt; unseen untouched
    assert out[tok.unk_id] == float("-inf")


def test_temperature_list_is_cycled_per_character(model):
    cold = model.generate("春", 60, temperature=[0.001, 0.002], seed=5, no_repeat_ngram=0)
    assert cold == model.generate("春", 60, greedy=True, no_repeat_ngram=0)
    assert SampleConfig(temperature=(0.5, 1.0)).temperatures == (0.5, 1.0)
    with pytest.raises(ConfigError):
        SampleConfig(temperature=(0.5, 0.0))


def test_beam_search_finds_the_memorised_line_and_one_beam_is_greedy(model):
    assert model.generate("白", 12, beam=4) == "白日依山尽，黄河入海流。"
    one = beam_search(model.model, model.tokenizer, "千", SampleConfig(length=40, beam=1))
    assert one == model.generate("千", 40, greedy=True)


def test_stop_rules(model):
    one = model.generate("春", 500, num_paragraphs=1, seed=0)
    assert "\n" not in one and one.startswith("春") and one.endswith("。")
    assert model.generate("春", 500, paragraphs=2, seed=0).count("\n") == 1
    assert model.generate("春", 500, stop="，", seed=0) == "春眠不觉晓，"


def test_streamed_pieces_make_the_same_text(model):
    pieces = []
    text = model.generate("春", 80, seed=4, on_text=pieces.append)
    assert "".join(pieces) == text and len(pieces) > 40


def test_score_tells_the_training_text_from_a_shuffle(model):
    learned = score_text(model.model, model.tokenizer, POEMS)
    shuffled = score_text(model.model, model.tokenizer, "".join(sorted(POEMS.replace("\n", ""))))
    assert learned.bpc < 0.5 < 3 < shuffled.bpc
    # every token after the first is predicted once: the marked text minus its leading marker
    assert "".join(learned.pieces) == ("^" + POEMS.replace("\n", "\n^"))[1:-1]
    assert len(learned.bits) == len(learned.pieces) and learned.chars == len(learned.pieces)
    page = heatmap_html(learned, Layout("^"))
    assert page.count("<span") == len(POEMS.replace("\n", "")) and 'title="' in page


def test_score_command_and_heat_map(trained, tmp_path):
    (tmp_path / "poem.txt").write_text(POEMS, encoding="utf-8")
    proc = run_cli("score", "poem.txt", "--model", trained.run_dir, "--html", "heat.html", "--top", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("poem.txt: ") and "bits per character over" in first
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(re.match(r"  +\d+\.\d\d bits  ", line) for line in lines[1:]), lines
    assert (tmp_path / "heat.html").read_text(encoding="utf-8").count("<span") == len(POEMS.replace("\n", ""))


def test_interactive_choose_type_undo_and_continue(model):
    stepper = Stepper(model.model, model.tokenizer, "床", SampleConfig(seed=0))
    assert stepper.top(1)[0][0] == "前"
    out = io.StringIO()
    # 1 picks the top candidate 前, 明 is typed, - undoes it, +3 lets the model write three more,
    # 选 is unknown to the model and refused, q quits
    text = interactive(stepper, inp=io.StringIO("1\n明\n-\n+3\n选\nq\n"), out=out)
    screens = [line for line in out.getvalue().splitlines() if line.startswith("床")]
    assert screens[:4] == ["床", "床前", "床前明", "床前"]
    assert text == "床前明月光"  # the memorised line, continued by the model
    assert "does not know" in out.getvalue()


def test_cli_sample_with_form_stream_and_decoding_options(trained, tmp_path):
    proc = run_cli("sample", "--model", trained.run_dir, "--form", "五言绝句", "--acrostic", "春白千床", "--seed", "1",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"春\w{4}，白\w{4}。\n千\w{4}，床\w{4}。\n", proc.stdout)
    streamed = run_cli("sample", "--model", trained.run_dir, "--start", "春", "--len", "30", "--stream",
                       "--temperature", "0.5,1.0", "--no-repeat-ngram", "3", "--seed", "2", cwd=tmp_path)
    batch = run_cli("sample", "--model", trained.run_dir, "--start", "春", "--len", "30",
                    "--temperature", "0.5,1.0", "--no-repeat-ngram", "3", "--seed", "2", cwd=tmp_path)
    assert streamed.returncode == batch.returncode == 0 and streamed.stdout == batch.stdout


def untrained(cell: str, marker: str | None):
    """A small random model over POEMS' characters: for paths that need no learning."""
    from zhrnn.api import TextModel
    from zhrnn.model import CharRNN, ModelConfig
    from zhrnn.text.tokenizer import CharTokenizer

    tokenizer = CharTokenizer.build(POEMS if marker is None else "^" + POEMS.replace("\n", "\n^"), marker=marker)
    torch.manual_seed(0)
    return TextModel(CharRNN(ModelConfig(vocab_size=len(tokenizer), cell=cell, hidden_size=32, embedding_size=16)), tokenizer)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("marker", ["^", None])
def test_every_decoding_path_runs_on_any_cell_with_or_without_markers(cell, marker):
    m = untrained(cell, marker)
    for options in [dict(repetition_penalty=1.5), dict(beam=3), dict(top_k=5, top_p=0.9), dict(greedy=True)]:
        assert len(m.generate("", 40, seed=0, **options)) == 40  # no start text: the penalty has no history yet
        assert m.generate("春", 40, seed=0, **options).startswith("春")
    assert re.fullmatch(r"(\w{5}，\w{5}。\n?){2}", m.generate(form="五言绝句", seed=0))
    stepper = Stepper(m.model, m.tokenizer, "春", SampleConfig(seed=0))
    assert stepper.text == "春"  # the priming token never shows, marker or not
    if marker is None:
        with pytest.raises(ConfigError, match="paragraph markers"):
            m.generate("春", 40, num_paragraphs=1)


def test_forms_end_exactly_and_refuse_options_they_override(model):
    full = "床前明月光，疑是地上霜。春眠不觉晓，处处闻啼鸟。"
    assert model.generate(full, form="五言绝句", temperature=3.0, seed=0) == "床前明月光，疑是地上霜。\n春眠不觉晓，处处闻啼鸟。"
    poem = model.generate(length=10, form="五言律诗", seed=0)  # --len does not cut a form short
    assert len(poem.replace("\n", "")) == 48
    with pytest.raises(ConfigError, match="do not go with --form"):
        model.generate(form="五言绝句", stop="。")
    assert model.generate(acrostic="牀春白千", seed=1).startswith("床")  # Traditional acrostic, Simplified model
    with pytest.raises(ConfigError, match="--num"):
        model.generate_many(3, "春", 20, beam=3)


def test_streaming_matches_the_returned_text_under_forms_and_stop_rules(model):
    for options in [dict(form="五言绝句"), dict(num_paragraphs=1), dict(stop="。"), dict(length=3), dict()]:
        pieces = []
        options = {"length": 80, **options}
        text = model.generate("春眠", seed=4, on_text=pieces.append, **options)
        assert "".join(pieces) == text, options


def test_the_start_text_counts_for_no_repeat(model):
    text = model.generate("床前明月光床前明", 30, seed=0, temperature=0.5)
    assert len(set(fourgrams(text))) == len(fourgrams(text))  # 床前明 is not followed by 月 again


def test_undo_takes_back_a_whole_continuation(model):
    stepper = Stepper(model.model, model.tokenizer, "床", SampleConfig(seed=0))
    stepper.continue_(5)
    stepper.feed("明月")
    assert stepper.undo() and stepper.text == "床前明月光，"
    assert stepper.undo() and stepper.text == "床"
    assert stepper.undo() and stepper.text == "" and not stepper.undo()


def template_regex(template: str) -> str:
    return "".join(r"\w" if c == "□" else re.escape(c) for c in template)


def test_ci_forms_follow_the_learned_pattern_of_their_cipai(model):
    from zhrnn.poetry.forms import cipai

    assert len(cipai()) > 200 and cipai()["浣溪沙"] == "□□□□□□□。" * 3 + "□□□□□□□，" + "□□□□□□□。" * 2
    for name in ["水调歌头", "满江红", "菩萨蛮"]:
        template = cipai()[name].replace("、", "，")  # this model has never seen 、: it gets ，
        for poem in model.generate_many(4, form=name, seed=0):
            assert re.fullmatch(template_regex(template), poem.replace("\n", "")), (name, poem)


def test_rhyme_keeps_every_rhyming_line_in_one_group(model):
    pytest.importorskip("pypinyin")
    from .test_song_rules import rhyme_of  # pypinyin's finals by 十三辙, not zhrnn's tables

    for form in ["五言绝句", "七言律诗", "浣溪沙"]:
        for poem in model.generate_many(6, form=form, rhyme=True, seed=1, temperature=1.5):
            flat = poem.replace("\n", "")
            ends = [flat[i - 1] for i, c in enumerate(flat) if c == "。"]
            groups = [rhyme_of(end) for end in ends]  # each alone: a form's 韵脚 rhyme by their usual reading
            assert None not in groups and len(set(groups)) == 1, (form, poem, groups)


def test_the_shipped_cipai_table_is_what_the_script_learns(tmp_path):
    import json
    import subprocess
    import sys

    from .conftest import REPO, shared

    songci = shared("chinese-poetry", "songci")
    out = tmp_path / "cipai.json"
    subprocess.run([sys.executable, REPO / "scripts" / "learn_cipai.py", songci, "--out", out], check=True,
                   capture_output=True)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads((REPO / "zhrnn" / "poetry" / "cipai.json").read_text(encoding="utf-8"))


class Bigram(torch.nn.Module):
    """A model whose next-token distribution depends on the last token only, given as a table:
    the most probable line is known exactly."""

    def __init__(self, tokenizer, table: dict[str, dict[str, float]]):
        super().__init__()
        logp = torch.full((len(tokenizer), len(tokenizer)), -1e9)
        for before, after in table.items():
            for token, p in after.items():
                logp[tokenizer.index[before], tokenizer.index[token]] = math.log(p)
        self.register_buffer("logp", logp)

    def forward(self, x, hidden=None):  # x (B, T) -> logits (B, T, V), a dummy state (1, B, 1)
        return self.logp[x], torch.zeros(1, x.size(0), 1)


def test_candidates_keep_the_most_probable_line_where_sampling_and_greedy_do_not():
    from zhrnn.generation import sample
    from zhrnn.text.tokenizer import CharTokenizer

    tok = CharTokenizer.build("甲乙丙丁戊，")
    line_start = {"甲": 0.55, "乙": 0.45}  # greedy takes 甲, but 乙戊 (0.45) beats 甲丙 and 甲丁 (0.275 each)
    table = {"^": line_start, "，": line_start, "甲": {"丙": 0.5, "丁": 0.5}, "乙": {"戊": 1.0},
             "丙": {"，": 1.0}, "丁": {"，": 1.0}, "戊": {"，": 1.0}}
    bigram = Bigram(tok, table)
    cfg = dict(length=9, no_repeat_ngram=0, temperature=1.0)
    drawn = sample(bigram, tok, cfg=SampleConfig(**cfg, seed=0), num=32)
    assert {t[:3] for t in drawn} == {"甲丙，", "甲丁，", "乙戊，"}  # one draw a line: any of the three
    assert sample(bigram, tok, cfg=SampleConfig(length=9, no_repeat_ngram=0, greedy=True))[0].startswith("甲")
    chosen = sample(bigram, tok, cfg=SampleConfig(**cfg, seed=0, candidates=32), num=8)
    assert chosen == ["乙戊，乙戊，乙戊，"] * 8  # each line the best of 32 drafts (all 甲: 0.55**32)
    pieces = []
    assert sample(bigram, tok, "乙", SampleConfig(**cfg, seed=1, candidates=32), on_text=pieces.append) == ["乙戊，乙戊，乙戊，"]
    assert "".join(pieces) == "乙戊，乙戊，乙戊，"


def test_candidates_of_unequal_lines_wait_for_each_other():
    from zhrnn.generation import sample
    from zhrnn.text.tokenizer import CharTokenizer

    tok = CharTokenizer.build("甲乙丙，")
    # a short line 甲， (0.5) or a long one 乙丙丙丙， (0.5 * 0.9**3 = 0.36, per token less likely still)
    line_start = {"甲": 0.5, "乙": 0.5}
    table = {"^": line_start, "，": line_start, "甲": {"，": 1.0}, "乙": {"丙": 1.0}, "丙": {"丙": 0.1, "，": 0.9}}
    bigram = Bigram(tok, table)
    for seed in range(4):
        text = sample(bigram, tok, cfg=SampleConfig(length=12, no_repeat_ngram=0, temperature=1.0, seed=seed,
                                                    candidates=16, length_alpha=0.0))[0]
        # alpha 0: the whole line's probability, so the short one (the last line, cut by --len, may be either)
        assert re.findall("[^，]+，", text) == ["甲，"] * (text.count("，")) and text.count("，") >= 5, text
    with pytest.raises(ConfigError, match="--candidates"):
        SampleConfig(candidates=4, greedy=True)
    with pytest.raises(ConfigError, match="--candidates"):
        SampleConfig(candidates=0)


def test_interactive_offers_candidate_lines_the_most_probable_first():
    from zhrnn.text.tokenizer import CharTokenizer

    tok = CharTokenizer.build("甲乙丙丁戊，")
    line_start = {"甲": 0.55, "乙": 0.45}
    table = {"^": line_start, "，": line_start, "甲": {"丙": 0.5, "丁": 0.5}, "乙": {"戊": 1.0},
             "丙": {"，": 1.0}, "丁": {"，": 1.0}, "戊": {"，": 1.0}}
    stepper = Stepper(Bigram(tok, table), tok, cfg=SampleConfig(seed=0, temperature=1.0))
    lines = stepper.lines(32)
    assert [line.text for line in lines][0] == "乙戊，" and sorted(line.text for line in lines) == ["乙戊，", "甲丁，", "甲丙，"]
    assert lines[0].score == pytest.approx(math.log(0.45) / 3 ** SampleConfig.length_alpha)
    assert stepper.text == ""  # offering adds nothing
    out = io.StringIO()
    # = offers the lines, 1 takes the best, 9 is no line of the next offer, - undoes the whole line
    text = interactive(stepper, inp=io.StringIO("=\n1\n=\n9\n=\n2\n-\nq\n"), out=out, lines=32)
    assert "(no line 9)" in out.getvalue() and "乙戊，" in out.getvalue()
    assert text == "乙戊，"


def test_a_temperature_list_follows_each_streams_own_position():
    from types import SimpleNamespace

    from zhrnn.generation.processors import Temperature

    streams = [SimpleNamespace(tokens=[1, 2]), SimpleNamespace(tokens=[1])]  # a --candidates row waited a step
    out = Temperature((0.5, 2.0))(torch.ones(2, 3), streams, 2)
    assert out[0, 0] == 2.0 and out[1, 0] == 0.5


def test_drafted_lines_stream_only_once_chosen_for_each_output():
    """Outputs whose lines end at different steps: each streams its own chosen lines only (the
    server streams every output of a request)."""
    import zhrnn
    from zhrnn.generation.sampling import Sampling

    m = zhrnn.load("唐诗")
    for seed in range(3):
        pieces = ["", ""]
        job = Sampling(m.tokenizer, "春", SampleConfig(length=60, seed=seed, temperature=1.5, candidates=3), 2,
                       on_piece=lambda i, p: pieces.__setitem__(i, pieces[i] + p))
        logits, hidden = m.model(job.prime())
        job.begin(logits[:, -1], hidden)
        while (tokens := job.step()) is not None:
            logits, hidden = m.model(tokens[:, None], job.hidden)
            job.advance(logits[:, -1], hidden)
        assert pieces == job.texts() == m.generate_many(2, start="春", length=60, seed=seed, temperature=1.5,
                                                        candidates=3)


def test_a_processors_memory_follows_its_rows_through_beam_reordering(model):
    """Row 0 wrote 床前明, row 1 春眠不: after reorder([1, 1]) both rows are row 1, so 春眠 may not be
    followed by 不 again in either, and 床前 may be followed by 明. Skipping the processors'
    reorder would leave row 0 banning after its own old text instead."""
    tok = model.tokenizer
    req = Request(tok, "", SampleConfig(no_repeat_ngram=3), 2, "cpu")
    for row, text in enumerate(["床前明", "春眠不"]):
        for token in tok.encode(text).tolist():
            req.append(row, token)
    req.reorder([1, 1])
    for token in tok.encode("春眠").tolist():
        for row in range(2):
            req.append(row, token)
    out = req.process(torch.zeros(2, len(tok)), 5)
    assert not torch.isfinite(out[:, tok.index["不"]]).any()  # 春眠不 was row 1's: banned in both rows now
    twin = req.fork([0])  # a fork copies the memory and leaves this request's alone
    twin.append(0, tok.index["觉"])
    assert [s.tokens for s in req.streams] == [tok.encode("春眠不春眠").tolist()] * 2


def test_beam_search_keeps_the_no_repeat_rule(model):
    looping = model.generate("床", 120, beam=3, no_repeat_ngram=0)
    assert len(set(fourgrams(looping))) < len(fourgrams(looping))  # the memorised text comes round again
    text = model.generate("床", 120, beam=3)
    assert len(set(fourgrams(text))) == len(fourgrams(text))


def test_the_interactive_writer_keeps_the_rules_of_sample(model):
    # no-repeat: the memorised poem cannot come round again, as in `zhrnn sample`
    free = Stepper(model.model, model.tokenizer, "床", SampleConfig(seed=0, no_repeat_ngram=0, greedy=True))
    free.continue_(120)
    assert len(set(fourgrams(free.text))) < len(fourgrams(free.text))
    kept = Stepper(model.model, model.tokenizer, "床", SampleConfig(seed=0, greedy=True))
    kept.continue_(120)
    assert len(set(fourgrams(kept.text))) == len(fourgrams(kept.text))
    # the same text, the same rules: what interactive offers first is what greedy sampling writes
    assert kept.text == model.generate("床", len(kept.text), greedy=True)
    # a form: offers only what the form allows, candidate lines of its length, and it ends the poem
    poem = Stepper(model.model, model.tokenizer, "", SampleConfig(seed=1, form="七言绝句"))
    assert all(tok not in "，。\n" for tok, _ in poem.top(20))  # the first position wants a character
    assert all(re.fullmatch(r"\w{7}，", line.text) for line in poem.lines(6))
    poem.continue_(100)
    assert poem.done and re.fullmatch(r"(\w{7}，\w{7}。\n?){2}", poem.text), poem.text


def test_an_exception_inside_scoring_or_sampling_leaves_the_model_in_its_mode():
    from zhrnn.generation import sample
    from zhrnn.generation.score import score_prepared

    m = untrained("gru", "^")

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = m.model

        def forward(self, *args, **kwargs):
            if not self.training:  # scoring and sampling run the model in eval mode: fail there
                raise RuntimeError("out of memory")
            return self.inner(*args, **kwargs)

    broken = Broken().train()
    for run in (lambda: score_prepared(broken, m.tokenizer, "^春眠不觉晓"),
                lambda: sample(broken, m.tokenizer, "春", SampleConfig(seed=0))):
        with pytest.raises(RuntimeError, match="out of memory"):
            run()
        assert broken.training  # back in training mode, as it was


def test_zhrnn_interactive_honours_no_repeat_and_form(trained, tmp_path):
    def write(*options, keys="+60\nq\n"):
        proc = run_cli("interactive", "--model", trained.run_dir, *options, cwd=tmp_path, input=keys)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.rsplit("> \n", 1)[-1].rstrip("\n")  # the text, printed after the last prompt

    looping = write("--start", "床", "--greedy", "--no-repeat-ngram", "0")
    assert len(set(fourgrams(looping))) < len(fourgrams(looping))  # the memorised poems come round again
    kept = write("--start", "床", "--greedy")  # the default no-repeat rule of `zhrnn sample`
    assert len(set(fourgrams(kept))) == len(fourgrams(kept)) and len(kept) > 40
    poem = write("--form", "五言绝句", "--seed", "3")
    assert re.fullmatch(r"\w{5}，\w{5}。\n\w{5}，\w{5}。", poem), poem


def test_extreme_temperatures_and_top_p_stay_within_float32(model):
    """1e-300 is 0 in float32 and 1e300 infinite: dividing by them gave NaN (and an IndexError)."""
    greedy = model.generate("春", 30, greedy=True)
    assert model.generate("春", 30, temperature=1e-300, seed=0) == greedy
    assert model.generate("春", 30, temperature=1e-300, top_p=1e-300, seed=0) == greedy
    wild = model.generate("春", 30, temperature=1e300, seed=0)  # every token but the banned as likely
    assert len(wild) == 30 and "<unk>" not in wild
    assert model.generate("春", 30, temperature=[1e-300, 1e300], repetition_penalty=1e300, seed=0)
