"""Sampling: start text, lengths, markers, <unk>, scripts, filters, reproducibility."""
import pytest
import torch

import zhrnn
from zhrnn.errors import ConfigError, VocabularyError
from zhrnn.generation.processors import TopK, TopP
from zhrnn.training import fit as train

from .conftest import TINY


@pytest.fixture(scope="module")
def model(trained):
    return zhrnn.load(trained.run_dir)


def test_output_has_the_asked_length_begins_with_the_start_and_shows_no_marker(model):
    for start in ["春", "春眠不觉晓，", ""]:
        text = model.generate(start=start, length=100, seed=1)
        assert len(text) == 100 and text.startswith(start)
        assert "^" not in text and "<unk>" not in text
    # a start longer than --len is not cut into
    assert model.generate("春眠不觉晓", 3, seed=1) == "春眠不"


def test_multi_character_start_primes_the_model_with_the_whole_string(model):
    # after 白日依山尽，the memorised continuation follows; from 白 alone it must too
    assert model.generate("白日依山尽，", 12, greedy=True) == "白日依山尽，黄河入海流。"


def test_same_seed_same_text_and_batched_streams_differ(model):
    a = model.generate_many(4, "春", 60, seed=7, temperature=1.5)
    assert a == model.generate_many(4, "春", 60, seed=7, temperature=1.5)
    assert len(set(a)) > 1  # four streams in one batch are four different samples
    assert all(len(t) == 60 and t.startswith("春") for t in a)


def test_unk_is_never_sampled(model):
    with torch.no_grad():  # make <unk> the model's favourite: it must still not appear
        model.model.head.bias[0] = 1e4
    try:
        assert "<unk>" not in model.generate("春", 50, seed=0, temperature=2.0)
    finally:
        with torch.no_grad():
            model.model.head.bias[0] = 0


def test_a_model_that_only_emits_paragraph_markers_still_stops(model):
    marker = model.tokenizer.marker_id
    with torch.no_grad():
        model.model.head.bias[marker] = 1e4
    try:
        text = model.generate("春", 50, greedy=True)
        assert text.startswith("春") and len(text) <= 50
    finally:
        with torch.no_grad():
            model.model.head.bias[marker] = 0


def test_unknown_start_and_bad_settings_are_refused(model):
    with pytest.raises(VocabularyError, match="选"):
        model.generate("选", 10)
    for bad in [dict(length=0), dict(length=-5), dict(temperature=0), dict(temperature=-1),
                dict(top_p=0), dict(top_p=1.5), dict(top_k=0)]:
        with pytest.raises(ConfigError):
            model.generate("春", **{"length": 10, **bad})


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda out: torch.isfinite(out[0]).tolist()
    assert kept(TopK(2)(logits)) == [True, True, False, False]
    assert kept(TopP(0.5)(logits)) == [True, False, False, False]
    assert kept(TopP(0.85)(logits)) == [True, True, True, False]
    assert kept(TopP(1.0)(logits)) == [True, True, True, True]
    assert kept(TopP(0.5)(TopK(2)(logits))) == [True, False, False, False]


def test_simplified_seed_finds_a_traditional_models_characters(tmp_path):
    corpus = tmp_path / "繁.txt"
    corpus.write_text("選擇自己的路。\n國家興旺發達。\n" * 3, encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(tmp_path / "t"), **dict(TINY, iters=200, seq_length=12))
    model = zhrnn.load(result.run_dir)
    assert model.tokenizer.script == "traditional"
    assert model.generate("选", 7, greedy=True) == "選擇自己的路。"
    assert model.generate("国家", 7, greedy=True) == "國家興旺發達。"


def test_each_new_character_costs_one_step_the_prefix_is_never_run_again(model):
    """The hidden state is carried: after priming with the whole start, every forward pass
    feeds one token per stream."""
    shapes = []
    forward = model.model.forward
    model.model.forward = lambda idx, hidden=None, **kw: (shapes.append(tuple(idx.shape)), forward(idx, hidden, **kw))[1]
    try:
        texts = model.generate_many(3, start="床前明", length=40, seed=1, no_repeat_ngram=0)
    finally:
        del model.model.forward
    assert all(len(t) == 40 for t in texts)
    assert shapes[0] == (3, 4)  # '^' + the start text, once
    assert set(shapes[1:]) == {(3, 1)}  # then one token a step
    assert 40 - 3 - 1 <= len(shapes) - 1 < 2 * 40  # a step per new character (markers show as nothing)


def test_int8_weights_sample_the_same_memorised_text(trained):
    full, small = zhrnn.load(trained.run_dir), zhrnn.load(trained.run_dir, int8=True)
    assert any("quantized" in type(m).__module__ for m in small.model.modules())
    x = torch.tensor([[1] + small.tokenizer.encode("床前明月光").tolist()])
    with torch.no_grad():
        a, b = full.model(x)[0].log_softmax(-1), small.model(x)[0].log_softmax(-1)
    assert (a.exp() - b.exp()).abs().max() < 0.05  # the distributions barely move
    for line in ["床前明月光，疑是地上霜。", "春眠不觉晓，处处闻啼鸟。"]:
        assert small.generate(start=line[0], length=len(line), greedy=True) == line


def test_int8_quantizes_a_copy_and_leaves_the_model_given_as_it_was(trained):
    from zhrnn.model import quantize_int8

    model = zhrnn.load(trained.run_dir).model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = quantize_int8(model)
    assert small is not model and not small.training
    assert model.training and isinstance(model.rnn, torch.nn.GRU)  # not switched to eval, not quantized
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_int8_is_refused_off_the_cpu(trained):
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--int8"):
            zhrnn.load(trained.run_dir, device="cuda", int8=True)
    else:
        with pytest.raises(ConfigError, match="CUDA"):
            zhrnn.load(trained.run_dir, device="cuda", int8=True)


def test_draw_follows_the_distribution_and_never_picks_an_impossible_token():
    from zhrnn.generation.sampling import draw

    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0]]).expand(20000, 5)  # 20,000 streams, one draw each
    tokens = draw(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(tokens, minlength=5).double() / len(tokens)
    assert counts[1] == 0 and counts[4] == 0  # probability 0, also the last token
    torch.testing.assert_close(counts, probs[0].double(), atol=0.015, rtol=0)
    assert torch.equal(tokens, draw(probs, torch.Generator().manual_seed(0)))  # a seed repeats
