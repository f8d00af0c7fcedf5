"""Training: a tiny corpus is learned and reproduced, checkpoints round-trip, resume is exact."""
import json
import logging
import math
import threading

import pytest
import torch

import zhrnn
from zhrnn import checkpoint
from zhrnn.errors import ConfigError, CorpusError
from zhrnn.training import fit as train
from zhrnn.training import validation as validation_module
from zhrnn.training.build import prepare_run
from zhrnn.training.plan import plan_run
from zhrnn.training.schedule import Schedule

from .conftest import POEMS, TINY


def test_tiny_corpus_is_learned_and_each_line_reproduced_from_its_first_character(trained):
    assert trained.losses[-1] < 0.05, trained.losses[-10:]
    assert trained.losses[-1] < trained.losses[0] / 50
    model = zhrnn.load(trained.run_dir)
    for line in POEMS.splitlines():
        assert model.generate(start=line[0], length=len(line), greedy=True) == line


def test_checkpoint_holds_everything_and_loads_without_running_code(trained):
    state = torch.load(trained.checkpoint, weights_only=True)  # plain data only
    assert state["format"] == "zhrnn" and state["step"] == TINY["iters"]
    assert state["tokenizer"]["vocab"][:2] == ["<unk>", "^"]
    assert state["model_config"]["hidden_size"] == TINY["hidden_size"]
    assert set(state["rng"]) >= {"torch", "batches"}


def test_save_then_load_gives_identical_outputs(trained, tmp_path):
    a = zhrnn.load(trained.checkpoint)
    state = checkpoint.load(trained.checkpoint)
    checkpoint.save({k: v for k, v in state.items() if k not in ("format", "version")}, tmp_path / "copy.pt")
    b = zhrnn.load(tmp_path / "copy.pt")
    x = torch.tensor([[1, 5, 6, 7]])
    torch.testing.assert_close(a.model(x)[0], b.model(x)[0], rtol=0, atol=0)
    assert a.generate("春", 40, seed=3) == b.generate("春", 40, seed=3)


def test_resumed_run_continues_the_same_loss_curve_and_samples(poems, tmp_path):
    options = dict(TINY, iters=40, save_freq=10, dropout=0.2, num_layers=2)  # dropout: RNG state matters
    straight = train(poems, progress=False, out_dir=str(tmp_path / "a"), **options)

    stop = threading.Event()
    first = prepare_run(poems, dict(options, out_dir=str(tmp_path / "b")))
    part = first.run(progress=False, stop=stop, on_save=lambda r: r["step"] == 20 and stop.set())
    assert part.interrupted and part.step == 20
    rest = train(poems, resume=tmp_path / "b", progress=False)

    assert len(straight.losses) == 40 and len(part.losses) + len(rest.losses) == 40
    assert rest.losses == pytest.approx(straight.losses[20:], abs=1e-6)
    samples_a = (tmp_path / "a" / "samples.txt").read_text(encoding="utf-8").split("=== step 40")[1]
    samples_b = (tmp_path / "b" / "samples.txt").read_text(encoding="utf-8").split("=== step 40")[1]
    assert samples_a == samples_b


def test_resume_refuses_changed_model_settings_and_another_vocabulary(poems, tmp_path, trained):
    with pytest.raises(ConfigError, match="hidden_size"):
        prepare_run(trained.run_dir.parent / "诗.txt", {"hidden_size": 32}, resume=trained.run_dir)
    other = tmp_path / "other.txt"
    other.write_text("完全不同的文字内容，只有这些字而已。\n" * 5, encoding="utf-8")
    with pytest.raises(CorpusError, match="vocabulary lacks"):
        prepare_run(other, {}, resume=trained.run_dir)


def test_resume_never_overwrites_another_checkpoint(poems, tmp_path):
    first = train(poems, progress=False, out_dir=str(tmp_path / "a"), **dict(TINY, iters=20, save_freq=10))
    backup = tmp_path / "a" / "backup.pt"
    backup.write_bytes(first.checkpoint.read_bytes())
    original = first.checkpoint.read_bytes()
    # from a file that is not the run's own ckpt.pt: a new run directory
    from_backup = prepare_run(poems, {"iters": 30}, resume=backup)
    assert from_backup.run_dir != first.run_dir
    # with --out-dir: a fork into that directory
    forked = train(poems, resume=first.run_dir, progress=False, iters=30, out_dir=str(tmp_path / "fork"))
    assert forked.checkpoint == tmp_path / "fork" / "ckpt.pt" and forked.step == 30
    assert first.checkpoint.read_bytes() == original


def test_resume_accepts_added_text_with_known_characters_and_refuses_a_bare_model(poems, tmp_path, trained):
    bigger = tmp_path / "诗.txt"  # same characters, more text: a fresh vocabulary would be ordered differently
    bigger.write_text(POEMS + POEMS.splitlines()[0] + "\n", encoding="utf-8")
    resumed = train(bigger, resume=trained.checkpoint, progress=False, iters=TINY["iters"] + 5, out_dir=str(tmp_path / "r"))
    assert resumed.step == TINY["iters"] + 5
    bare = tmp_path / "bare.pt"
    state = checkpoint.load(trained.checkpoint)
    checkpoint.save({k: state[k] for k in ("model", "model_config", "tokenizer")}, bare)
    with pytest.raises(ConfigError, match="no training state"):
        prepare_run(poems, {}, resume=bare)


def test_resume_without_a_path_finds_the_run_on_the_same_file(tmp_path, in_tmp):
    (tmp_path / "tang.txt").write_text(POEMS, encoding="utf-8")
    (tmp_path / "tang-2.txt").write_text(POEMS, encoding="utf-8")
    ours = train("tang.txt", progress=False, **dict(TINY, iters=10, save_freq=10))
    other = train("tang-2.txt", progress=False, **dict(TINY, iters=10, save_freq=10))
    assert (ours.run_dir.name, other.run_dir.name) == ("tang", "tang-2")
    assert prepare_run("tang.txt", {}, resume=True).run_dir == ours.run_dir
    assert prepare_run("tang-2.txt", {}, resume=True).run_dir == other.run_dir


def test_validation_loss_is_reported_in_bits_per_character(tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 30, encoding="utf-8")  # validated on its tail: the poems it trains on, again
    result = train(corpus, progress=False, out_dir=str(tmp_path / "run"), **dict(TINY, val_fraction=0.1, iters=200,
                                                                              split="tail"))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [100, 200]
    # a repeated text is predictable: well under 1 bit per character, and falling
    assert log[-1]["val_bpc"] < 1.0 and log[-1]["val_bpc"] <= log[0]["val_bpc"]
    assert result.val_bpc == log[-1]["val_bpc"]


def test_a_new_run_never_overwrites_an_earlier_one(poems, in_tmp):
    first = train(poems, progress=False, **dict(TINY, iters=10, save_freq=10))
    second = train(poems, progress=False, **dict(TINY, iters=10, save_freq=10))
    assert first.run_dir.name == "诗" and second.run_dir.name == "诗-2"
    with pytest.raises(ConfigError, match="already has a checkpoint"):
        train(poems, progress=False, out_dir=str(first.run_dir), **dict(TINY, iters=10))


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_other_cells_learn_too(poems, tmp_path, cell):
    result = train(poems, progress=False, out_dir=str(tmp_path / cell), **dict(TINY, cell=cell, iters=250))
    assert result.losses[-1] < 0.3
    assert zhrnn.load(result.run_dir).generate("床", 12, greedy=True) == "床前明月光，疑是地上霜。"


def test_word_level_trains_and_samples_whole_text(tmp_path):
    corpus = tmp_path / "words.txt"
    corpus.write_text("我们喜欢北京的秋天。\n我们喜欢上海的夏天。\n你们喜欢北京的冬天。\n" * 4, encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(tmp_path / "w"), level="word", **dict(TINY, iters=200, seq_length=8))
    model = zhrnn.load(result.run_dir)
    assert model.tokenizer.level == "word" and "喜欢" in model.tokenizer.index
    text = model.generate("我们", 30, seed=0)
    assert text.startswith("我们") and len(text) == 30


def test_text_bits_per_character_leave_out_markers_and_line_breaks(tmp_path, monkeypatch):
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 30, encoding="utf-8")
    trainer = prepare_run(corpus, dict(TINY, val_fraction=0.2, split="tail", out_dir=str(tmp_path / "run")))
    tok = trainer.tokenizer
    layout = torch.tensor([i in (tok.marker_id, tok.index["\n"]) for i in range(len(tok))], dtype=torch.float64)
    monkeypatch.setattr(validation_module, "target_nats", lambda model, rows, *a: layout[rows[:, 1:]])  # 1 nat: ^ or \n
    ev = trainer.evaluate()
    all_targets, text = ev.val, ev.text_val
    assert text == 0.0  # no text character costs anything here
    assert all_targets == pytest.approx(2 / 14 / math.log(2), rel=0.05)  # 2 of each line's 14 targets: the marker and the break


def test_evaluation_carries_the_state_so_the_chunk_length_does_not_matter(tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 100, encoding="utf-8")
    trainer = prepare_run(corpus, dict(TINY, val_fraction=0.2, split="tail", iters=30, out_dir=str(tmp_path / "run")))
    trainer.run(progress=False)
    by_24 = trainer.evaluate()
    trainer.validation.seq_length = 7  # the same 16 streams, read 7 tokens at a time
    by_7 = trainer.evaluate()
    for field in ("val", "text_val", "mix_val", "mix_text_val"):  # from a zero state every chunk, they would not be
        assert getattr(by_7, field) == pytest.approx(getattr(by_24, field), rel=1e-6)


def test_a_run_extended_on_resume_goes_on_from_the_rate_it_had_reached(trained, caplog):
    """--iter 300 -> 600 used to make the rate jump from a tenth of the peak back up the cosine."""
    done = checkpoint.load(trained.checkpoint)
    before = Schedule.from_dict(done["schedule"])
    with caplog.at_level(logging.INFO, logger="zhrnn"):
        plan = plan_run(trained.run_dir.parent / "诗.txt", {"iters": 600}, resume=trained.run_dir)
    after = plan.schedule
    assert after.since == (300, pytest.approx(before.rate(300)))
    assert after.rate(300) == pytest.approx(before.rate(299), rel=0.01)  # no jump
    rates = [after.rate(s) for s in range(300, 601, 50)]
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.1 * before.peak)
    assert "goes on from" in caplog.text
    # a lower rate (after a NaN, as the message advises) is taken, from the same point of the schedule
    lower = plan_run(trained.run_dir.parent / "诗.txt", {"learning_rate": before.peak / 2, "iters": 600},
                     resume=trained.run_dir).schedule
    assert lower.rate(300) == pytest.approx(after.rate(300) / 2)
    same = plan_run(trained.run_dir.parent / "诗.txt", {"save_freq": 50}, resume=trained.run_dir).schedule
    assert same == before and same.since is None  # nothing of the schedule changed: the run goes on exactly


def test_the_vocabulary_refusal_of_resume_names_fine_tuning(trained, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("完全不同的文字内容，只有这些字而已。\n" * 5, encoding="utf-8")
    with pytest.raises(CorpusError, match="--init-from"):
        prepare_run(other, {}, resume=trained.run_dir)
