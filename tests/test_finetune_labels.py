"""Fine-tuning with --init-from (vocabulary extension), context labels, export and shipped models."""
import re

import pytest
import torch

from zhrnn import api, checkpoint, shipped
from zhrnn.generation import SampleConfig, Stepper
from zhrnn.text.pipeline import CorpusConfig, prepare
from zhrnn.text.render import render
from zhrnn.errors import ConfigError, VocabularyError
from zhrnn.training.finetune import extend_tokenizer, grow_state
from zhrnn.model import CharRNN, ModelConfig
from zhrnn.text.tokenizer import CharTokenizer
from zhrnn.training import fit as train
from zhrnn.training.build import prepare_run

from .conftest import POEMS, REPO, TINY, assert_clean_error, run_cli

NEW = "江南好，风景旧曾谙。日出江花红胜火，春来江水绿如蓝。\n"  # mostly characters POEMS lacks


def test_grown_vocabulary_keeps_every_old_row_and_id():
    base = CharTokenizer.build("春眠不觉晓")
    built = CharTokenizer.build("春江水暖")
    grown = extend_tokenizer(base, built, {})
    assert grown.vocab[: len(base)] == base.vocab  # old ids keep their meaning
    assert set(grown.vocab[len(base):]) == {"江", "水", "暖"}
    old = CharRNN(ModelConfig(vocab_size=len(base), hidden_size=16, embedding_size=8))
    new = CharRNN(ModelConfig(vocab_size=len(grown), hidden_size=16, embedding_size=8))
    state = grow_state(old.state_dict(), new)
    n = len(base)
    for name in ("embedding.weight", "head.weight", "head.bias"):
        assert torch.equal(state[name][:n], old.state_dict()[name])
        assert state[name].shape[0] == len(grown)
    assert torch.equal(state["rnn.weight_hh_l0"], old.state_dict()["rnn.weight_hh_l0"])
    assert torch.allclose(state["head.bias"][n:], old.state_dict()["head.bias"].mean().expand(len(grown) - n))


def test_init_from_starts_where_the_model_left_off_and_learns_new_characters(trained, tmp_path):
    corpus = tmp_path / "新.txt"
    corpus.write_text(POEMS * 4 + NEW, encoding="utf-8")
    options = {**TINY, "iters": 150, "out_dir": str(tmp_path / "ft")}
    scratch = train(corpus, progress=False, **{**options, "iters": 1, "out_dir": str(tmp_path / "scratch")})
    fine = prepare_run([corpus], {**options, "init_from": str(trained.checkpoint)})
    first = fine.run(progress=False)
    # The known poems are already learned: the first fine-tuning loss is far below a fresh model's.
    assert first.losses[0] < 0.5 * scratch.losses[0]
    model = api.load(first.checkpoint)
    assert model.tokenizer.vocab[: len(api.load(trained.checkpoint).tokenizer)] == api.load(trained.checkpoint).tokenizer.vocab
    # new rows were trained: the new line is reproduced, and the old ones still are
    assert model.generate("江南", length=len(NEW) - 1, greedy=True, no_repeat_ngram=0).startswith(NEW.strip()[:12])
    assert model.generate("床", length=12, greedy=True) == POEMS.splitlines()[0]


def test_init_from_refuses_a_new_architecture_and_an_unknown_model(trained, poems, tmp_path):
    with pytest.raises(ConfigError, match="hidden_size"):
        prepare_run([poems], {"init_from": str(trained.checkpoint), "hidden_size": 512})
    proc = run_cli("train", poems, "--init-from", "没有这个模型", cwd=tmp_path)
    assert_clean_error(proc, "no shipped model of that name")


LABELLED = "".join(f"甲\t{a}\n乙\t{b}\n" for a, b in [("春花秋月何时了", "山高水长云自闲")] * 20) + "丙\t孤句\n"


def test_labels_become_hidden_tokens_after_the_marker():
    corpus = prepare(LABELLED, CorpusConfig(labels=True))
    assert set(corpus.labels) == {"甲", "乙"}  # 丙 is on one paragraph, fewer than label_min_count
    first = corpus.text.splitlines()[0]
    assert first == "^" + corpus.labels["甲"] + "春花秋月何时了"
    assert corpus.text.splitlines()[-1] == "^孤句"  # a rare label is dropped, its text kept
    assert render(corpus.text, "^").splitlines()[:2] == ["春花秋月何时了", "山高水长云自闲"]
    tok = CharTokenizer.build(corpus.text, min_count=50, labels=corpus.labels)  # labels survive any min_count
    assert all(t in tok.index for t in corpus.labels.values())
    assert tok.char_lengths()[tok.label_ids].tolist() == [0, 0]  # not text: not counted in bits per character


def test_a_label_steers_the_text_and_survives_fine_tuning(tmp_path):
    corpus = tmp_path / "标签.tsv"
    corpus.write_text(LABELLED, encoding="utf-8")
    result = train(corpus, progress=False, labels=True, out_dir=str(tmp_path / "run"), **{**TINY, "seq_length": 10})
    model = api.load(result.checkpoint)
    # the same empty start, two labels, two different texts: the label alone decides
    assert model.generate(length=7, greedy=True, label="甲") == "春花秋月何时了"
    assert model.generate(length=7, greedy=True, label="乙") == "山高水长云自闲"
    with pytest.raises(VocabularyError, match="no label '丁'.*乙, 甲"):
        model.generate(label="丁")
    with pytest.raises(ConfigError, match="without labels"):
        _unlabelled(tmp_path).generate(label="甲")
    # the interactive writer: a new paragraph brings the label after its marker, and offers text
    writer = Stepper(model.model, model.tokenizer, cfg=SampleConfig(label="乙", greedy=True))
    assert [t for t, _ in writer.top(1)] == ["山"]
    writer.take([model.tokenizer.marker_id])  # the user starts a new paragraph
    assert writer.states[-1].ids[-2:] == [model.tokenizer.marker_id, writer.request.label_id]
    assert [t for t, _ in writer.top(1)] == ["山"]  # was no offer at all: the label was banned where only it may go
    # fine-tuning on unlabelled text keeps the label names and tokens
    plain = tmp_path / "plain.txt"
    plain.write_text(POEMS * 3, encoding="utf-8")
    fine = train(plain, progress=False, init_from=str(result.checkpoint), out_dir=str(tmp_path / "ft"), **{**TINY, "iters": 2})
    assert api.load(fine.checkpoint).tokenizer.labels == model.tokenizer.labels


def _unlabelled(tmp_path):
    corpus = tmp_path / "u.txt"
    corpus.write_text(POEMS, encoding="utf-8")
    return api.load(train(corpus, progress=False, out_dir=str(tmp_path / "u"), **{**TINY, "iters": 1}).checkpoint)


def test_export_is_small_and_samples_the_same(trained, tmp_path):
    small = checkpoint.export(trained.checkpoint, tmp_path / "小.pt")
    assert small.stat().st_size < 0.4 * trained.checkpoint.stat().st_size  # no optimizer state, float16
    state = checkpoint.load(small)
    assert "optimizer" not in state and state["model"]["head.weight"].dtype == torch.float16
    full, half = api.load(trained.checkpoint), api.load(small)
    for line in POEMS.splitlines():
        assert half.generate(line[0], length=len(line), greedy=True) == full.generate(line[0], length=len(line), greedy=True)


def test_shipped_models_are_found_by_name_in_either_script(trained, tmp_path, monkeypatch, in_tmp):
    monkeypatch.setattr(shipped, "directory", lambda: tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    checkpoint.export(trained.checkpoint, tmp_path / "shipped" / "唐诗.pt")
    assert shipped.resolve("唐詩") == tmp_path / "shipped" / "唐诗.pt"  # typed in Traditional
    assert api.load().path == tmp_path / "shipped" / "唐诗.pt"  # no runs here: the shipped default
    with pytest.raises(Exception, match="shipped: 唐诗"):
        api.load("宋词")


SHIPPED = REPO / "pretrained"


@pytest.mark.parametrize("name", ["唐诗", "宋词"])
def test_shipped_model_writes_verse(name):
    if not (SHIPPED / f"{name}.pt").exists():
        pytest.skip(f"pretrained/{name}.pt is not in this checkout")
    assert (SHIPPED / f"{name}.pt").stat().st_size <= 20 * 2**20
    model = api.load(name)
    texts = model.generate_many(8, start="选", length=100, seed=0)
    clauses = [c for t in texts for c in re.split("[，。？！、；\n]", t)[:-1] if c]
    lengths = [len(c) for c in clauses]
    assert all(t.startswith("选") and len(t) == 100 for t in texts)
    if name == "唐诗":  # regular lines: nearly every clause of five or seven characters
        assert sum(n in (5, 7) for n in lengths) >= 0.8 * len(lengths), texts
    else:  # 词 mixes lengths, but in the 3 to 7 range, with ，and 。 in place
        assert sum(3 <= n <= 7 for n in lengths) >= 0.8 * len(lengths), texts


def test_shipped_ci_model_takes_a_cipai_label():
    if not (SHIPPED / "宋词.pt").exists():
        pytest.skip("pretrained/宋词.pt is not in this checkout")
    model = api.load("宋词")
    assert {"水调歌头", "浣溪沙", "沁园春"} <= set(model.tokenizer.labels)

    def clause_lengths(label):
        texts = model.generate_many(8, length=200, seed=0, label=label, num_paragraphs=1)
        return [len(c) for t in texts for c in re.split("[，。？！、；\n]", t) if c]

    # 浣溪沙 is written in lines of seven; 沁园春 mostly in phrases of four
    wanxisha, qinyuanchun = clause_lengths("浣溪沙"), clause_lengths("沁园春")
    assert sum(n == 7 for n in wanxisha) >= 0.6 * len(wanxisha)
    assert sum(n == 4 for n in qinyuanchun) >= 0.4 * len(qinyuanchun) and 7 not in qinyuanchun[:3]
