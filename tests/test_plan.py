"""The plan of a run: what is refused before any text is read, the parsed checkpoint parts it
holds, and its vocabulary policy (the text's own, the resumed checkpoint's, a base grown)."""
import logging

import pytest
import torch

from zhrnn import checkpoint
from zhrnn.errors import ConfigError, CorpusError, DistributedError
from zhrnn.text.pipeline import CorpusInfo
from zhrnn.text.tokenizer import CharTokenizer, Tokenizer
from zhrnn.training import encoded
from zhrnn.training.build import build_trainer, prepare_run
from zhrnn.training.distributed import Dist
from zhrnn.training.plan import LOCAL, InitFrom, Resume, RunPlan, auto_dropout, passes, plan_run

from .conftest import POEMS, TINY


class TextRead(Exception):
    pass


@pytest.fixture
def no_text(monkeypatch):
    """Encoding the text raises TextRead."""
    def refuse(*args, **kwargs):
        raise TextRead
    monkeypatch.setattr(encoded, "encode_corpus", refuse)


def corpus_of(trained):
    return trained.run_dir.parent / "诗.txt"


def info(script: str = "simplified") -> CorpusInfo:
    """What reading a text told (only the script matters to the vocabulary policy)."""
    return CorpusInfo(chars=100, paragraphs=4, script=script, marker="^", fingerprint="0" * 16)


def test_wrong_options_are_refused_before_any_text_is_read(trained, poems, no_text):
    with pytest.raises(ConfigError, match="cannot change hidden_size, seq_length$"):
        prepare_run(corpus_of(trained), {"hidden_size": 32, "seq_length": 7, "iters": 999}, resume=trained.run_dir)
    with pytest.raises(ConfigError, match="already has a checkpoint"):
        prepare_run(poems, dict(TINY, out_dir=str(trained.run_dir)))
    with pytest.raises(DistributedError, match="--batch-size 16 .* does not split evenly over 3 processes"):
        prepare_run(poems, TINY, dist=Dist(world=3))  # before any collective, too: there is no process group
    with pytest.raises(ConfigError, match="--device 'tpu'"):
        prepare_run(poems, dict(TINY, device="tpu"))
    # the control: options the plan accepts go on to the text
    with pytest.raises(TextRead):
        prepare_run(corpus_of(trained), {"iters": TINY["iters"] + 1}, resume=trained.run_dir)


def test_a_resumed_plan_holds_the_checkpoint_parsed(trained, no_text):
    saved = checkpoint.load(trained.checkpoint)
    plan = plan_run(corpus_of(trained), {"iters": 400, "sample_len": 5}, resume=trained.run_dir)
    assert isinstance(plan, RunPlan) and plan.init_from is None
    resume = plan.resume
    assert isinstance(resume, Resume) and isinstance(resume.tokenizer, Tokenizer)
    assert resume.tokenizer.vocab == saved["tokenizer"]["vocab"] and plan.labels == {}
    assert resume.step == TINY["iters"] and resume.best is None  # no validation part in TINY
    assert resume.fingerprint == saved["corpus"]["fingerprint"]
    assert resume.model.keys() == saved["model"].keys()
    assert torch.equal(resume.rng["batches"], saved["rng"]["batches"])
    # the run's settings, but for the resumable ones given
    assert (plan.cfg.iters, plan.cfg.sample_len, plan.cfg.batch_size) == (400, 5, TINY["batch_size"])
    assert plan.model_cfg.hidden_size == TINY["hidden_size"] and plan.cfg.out_dir is None
    assert plan.run_dir == trained.run_dir  # from a run's own ckpt.pt it goes on in place


def test_a_resumed_plan_keeps_the_checkpoint_vocabulary_and_refuses_a_new_token(trained):
    plan = plan_run(corpus_of(trained), {}, resume=trained.run_dir)
    fewer = CharTokenizer.build("光光月春眠", marker="^")  # known tokens, in another order
    assert plan.tokenizer_for(fewer, info()) is plan.resume.tokenizer
    with pytest.raises(CorpusError, match="the text has 2 token\\(s\\) the checkpoint's vocabulary lacks") as refused:
        plan.tokenizer_for(CharTokenizer.build("江南月光", marker="^"), info())
    assert "江" in str(refused.value) and "南" in str(refused.value)


def test_an_init_from_plan_keeps_the_architecture_and_grows_the_vocabulary(trained, poems, caplog):
    plan = plan_run(poems, {"init_from": str(trained.checkpoint), "iters": 5})
    assert plan.resume is None and isinstance(plan.init_from, InitFrom)
    base = plan.init_from.tokenizer
    assert base.vocab == checkpoint.load(trained.checkpoint)["tokenizer"]["vocab"]
    # not given, so the model's (TINY's, not ModelConfig's defaults); the dropout follows the new text
    m = plan.model_cfg
    assert (m.hidden_size, m.num_layers, m.dropout) == (TINY["hidden_size"], TINY["num_layers"], None)
    built = CharTokenizer.build("江南好，月光", marker="^")
    grown = plan.tokenizer_for(built, info())
    assert grown.vocab[: len(base)] == base.vocab  # every old id keeps its token
    assert grown.vocab[len(base):] == [t for t in built.vocab if t not in base.index]  # new ones appended in order
    assert set(grown.vocab[len(base):]) == {"江", "南", "好"}
    with caplog.at_level(logging.WARNING, logger="zhrnn"):
        plan.tokenizer_for(built, info(script="traditional"))
    assert f"the model learned {base.script} text and this text is traditional" in caplog.text


def test_a_run_given_no_dropout_gets_one_for_the_passes_it_makes(poems, tmp_path, caplog):
    assert [auto_dropout(n) for n in (0, 12, 27, 60, 500)] == [0.1, 0.1, 0.3, 0.5, 0.5]
    options = {k: v for k, v in TINY.items() if k != "dropout"}
    with caplog.at_level(logging.INFO, logger="zhrnn"):
        many = build_trainer(plan_run(poems, dict(options, iters=50, out_dir=str(tmp_path / "a"))))
    assert passes(many.cfg, 50, len(many.split.train)) > 60  # a few poems read over and over
    assert many.model.config.dropout == 0.5 and many.state()["model_config"]["dropout"] == 0.5
    assert many.model.drop.p == 0.5
    assert "dropout 0.5, as for the" in caplog.text
    given = build_trainer(plan_run(poems, dict(options, iters=50, dropout=0.2, out_dir=str(tmp_path / "b"))))
    assert given.model.config.dropout == 0.2


def test_a_run_given_no_layers_gets_one_on_a_small_text_and_two_on_a_large_one(poems, tmp_path, caplog):
    from zhrnn.model import CharRNN, ModelConfig
    from zhrnn.training.plan import SMALL_TEXT, auto_layers

    assert [auto_layers(n) for n in (1_000, SMALL_TEXT - 1, SMALL_TEXT, 3_000_000)] == [1, 1, 2, 2]
    options = {k: v for k, v in TINY.items() if k not in ("num_layers", "dropout")}
    with caplog.at_level(logging.INFO, logger="zhrnn"):
        small = build_trainer(plan_run(poems, dict(options, iters=20, out_dir=str(tmp_path / "a"))))
    assert small.model.config.num_layers == 1 and small.state()["model_config"]["num_layers"] == 1
    assert "1 layer, as for a training text of" in caplog.text
    given = build_trainer(plan_run(poems, dict(options, iters=20, num_layers=2, out_dir=str(tmp_path / "b"))))
    assert given.model.config.num_layers == 2
    assert CharRNN(ModelConfig(vocab_size=30)).config.num_layers == 2  # a model made outside a run: LAYERS


def test_a_new_plan_encodes_with_the_text_vocabulary(poems):
    plan = plan_run(poems, dict(TINY, device="cpu"))
    assert plan.resume is None and plan.init_from is None and plan.labels is None and plan.run_dir is None
    assert plan.corpus_paths == [str(poems)] and plan.device == torch.device("cpu")
    built = CharTokenizer.build(POEMS, marker="^")
    assert plan.tokenizer_for(built, info()) is built


def test_a_trainer_built_from_a_resumed_plan_is_where_the_checkpoint_left_off(trained):
    saved = checkpoint.load(trained.checkpoint)
    state = build_trainer(plan_run(corpus_of(trained), {}, resume=trained.run_dir)).state()
    for key in ("step", "best_val_bpc", "tokenizer", "model_config", "corpus_config", "corpus"):
        assert state[key] == saved[key], key
    local = lambda cfg: {k: v for k, v in cfg.items() if k not in LOCAL}  # noqa: E731
    assert local(state["train_config"]) == local(saved["train_config"])
    torch.testing.assert_close(state["model"], saved["model"], rtol=0, atol=0)
    torch.testing.assert_close(state["optimizer"]["state"], saved["optimizer"]["state"], rtol=0, atol=0)
    torch.testing.assert_close(state["rng"], saved["rng"], rtol=0, atol=0)


def test_a_resume_changes_the_options_declared_resumable_and_no_other(trained, tmp_path):
    from zhrnn.model import ModelConfig
    from zhrnn.options import declared, names
    from zhrnn.text.pipeline import CorpusConfig
    from zhrnn.training.plan import RESUMABLE, TrainConfig

    assert RESUMABLE == set(names(TrainConfig, lambda option: option.resumable)) == {
        "iters", "time_budget", "save_freq", "start", "sample_len", "sample_temperature", "device", "amp",
        "eval_tokens", "out_dir", "cache_dir", "learning_rate", "warmup", "grad_clip", "patience"}
    # every declared option given a value no run has: the refusal names exactly those not resumable
    every = {name: object() for cls in (CorpusConfig, ModelConfig, TrainConfig) for name, _ in declared(cls)}
    del every["time_budget"]  # read as a duration first
    with pytest.raises(ConfigError) as refused:
        plan_run(corpus_of(trained), every, resume=trained.run_dir)
    fixed = ", ".join(sorted(set(every) - RESUMABLE))
    assert str(refused.value) == f"--resume keeps the run's settings; cannot change {fixed}"
    # and each resumable one is taken
    given = dict(iters=400, save_freq=7, start="春", sample_len=5, sample_temperature=0.5, device="cpu", amp="off",
                 eval_tokens=99, out_dir=str(tmp_path / "elsewhere"), cache_dir=str(tmp_path / "cache"),
                 learning_rate=3e-3, warmup=3, grad_clip=0.5, patience=2)
    assert set(given) | {"time_budget"} == RESUMABLE
    plan = plan_run(corpus_of(trained), given, resume=trained.run_dir)
    assert {name: getattr(plan.cfg, name) for name in given} == given
    assert plan_run(corpus_of(trained), {"time_budget": "1m"}, resume=trained.run_dir).cfg.time_budget == 60
