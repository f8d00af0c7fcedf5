"""The training recipe's options: stateful streams, a tied output, training by the clock, the
length of a run scaled to its text, and the best checkpoint kept beside the latest."""
import json
import threading
import time

import numpy as np
import pytest
import torch

import zhrnn
from zhrnn.training.validation import Evaluation
from zhrnn import checkpoint
from zhrnn.errors import ConfigError
from zhrnn.model import CharRNN, ModelConfig
from zhrnn.training import fit as train
from zhrnn.training import trainer as trainer_module
from zhrnn.training.batches import Streams
from zhrnn.training.build import prepare_run
from zhrnn.training.plan import (AUTO_MAX_ITERS, AUTO_MIN_ITERS, TrainConfig, auto_dropout, auto_iters, parse_duration,
                                 passes, plan_run)
from zhrnn.training.schedule import FINE_TUNE_RATE, LONG_RUN, SHORT_RUN, Schedule, budget_steps, rate_for

from .conftest import POEMS, TINY, run_cli


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]


# --- stateful streams ----------------------------------------------------------------------------

def test_streams_continue_each_row_from_the_step_before_and_start_afresh_each_pass():
    ids = np.arange(1000, dtype=np.int32)
    streams = Streams(ids, batch_size=4, seq_length=10, device=torch.device("cpu"))
    x1, y1 = streams.next()
    x2, _ = streams.next()
    assert x1.shape == (4, 10) and torch.equal(y1[:, :-1], x1[:, 1:])
    assert torch.equal(x2[:, 0], y1[:, -1] + 0) and torch.equal(x2[:, 0], x1[:, -1] + 1)  # each row reads on
    assert x1[:, 0].tolist() == [0, 249, 498, 747]  # the rows spread over the text
    assert streams.steps_per_pass == 24 and streams.fresh_at(0) and streams.fresh_at(24) and not streams.fresh_at(5)
    state = streams.state()
    again = Streams(ids, 4, 10, torch.device("cpu"))
    again.set_state(state)
    assert torch.equal(again.next()[0], streams.next()[0])  # a resumed run reads on exactly
    # under torchrun, each process its own rows of the global batch
    halves = [Streams(ids, 4, 10, torch.device("cpu"), rank=r, world=2).next()[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), x1)
    tiny = Streams(np.arange(30, dtype=np.int32), 4, 10, torch.device("cpu"))  # shorter than 4 rows of 10
    for _ in range(3):
        x, y = tiny.next()
        assert x.shape == (4, 10) and int(y.max()) <= 29


def test_stateful_training_memorises_a_tiny_corpus(poems, tmp_path):
    result = train(poems, progress=False, out_dir=str(tmp_path / "run"), **dict(TINY, stateful=True))
    assert result.losses[-1] < 0.05, result.losses[-10:]
    model = zhrnn.load(result.run_dir)
    for line in POEMS.splitlines():
        assert model.generate(start=line[0], length=len(line), greedy=True) == line


def test_a_resumed_stateful_run_continues_the_same_loss_curve(poems, tmp_path):
    """The carried state is in the checkpoint: without it the first steps after resuming would
    start cold and the curve would differ."""
    options = dict(TINY, iters=40, save_freq=10, dropout=0.2, num_layers=2, stateful=True)
    straight = train(poems, progress=False, out_dir=str(tmp_path / "a"), **options)
    stop = threading.Event()
    first = prepare_run(poems, dict(options, out_dir=str(tmp_path / "b")))
    first.run(progress=False, stop=stop, on_save=lambda r: r["step"] == 20 and stop.set())
    assert checkpoint.load(tmp_path / "b", last=True)["hidden"].dtype == torch.float32
    rest = train(poems, resume=tmp_path / "b", progress=False)
    assert rest.losses == pytest.approx(straight.losses[20:], abs=1e-6)


# --- the rate chosen from the length of the run ----------------------------------------------------

def test_the_rate_falls_with_the_length_of_the_run_between_the_measured_ends():
    (short, fast), (long, slow) = SHORT_RUN, LONG_RUN
    assert rate_for(0) == rate_for(short) == fast and rate_for(long) == rate_for(10 * long) == slow
    rates = [rate_for(n) for n in range(short, long + 1, 250)]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) > 5  # falling all the way, not a step
    assert rate_for(3000) == 3.8e-3  # geometric: about halfway in log steps, about halfway in log rate
    # under --time, from the steps the budget holds at the speed so far: 50 steps in 10 s of 10 minutes
    by_time = Schedule.planned(warmup=50, seconds=TrainConfig(time_budget="10m").time_budget)
    assert by_time.peak_at(step=50, elapsed=10) == rate_for(3000)
    assert by_time.peak_at(0, 0.0) == fast  # before the first step: the warmup starts far below it anyway
    assert budget_steps(by_time.end, 60, 12, since=(10, 2)) == 60 + (600 - 12) * 5  # 5 steps/s from step 10 on
    assert Schedule.planned(50, steps=3000).peak == rate_for(3000)
    assert Schedule.planned(50, steps=300, fine_tune=True).peak == FINE_TUNE_RATE


def test_a_run_given_no_rate_gets_one_for_its_length(poems, tmp_path, monkeypatch):
    options = {k: v for k, v in TINY.items() if k != "learning_rate"}
    trainer = prepare_run(poems, dict(options, iters=3000, out_dir=str(tmp_path / "a")))
    assert trainer.schedule.peak == rate_for(3000)  # concrete, so the checkpoint and a resume keep it
    assert prepare_run(poems, dict(TINY, out_dir=str(tmp_path / "b"))).schedule.peak == TINY["learning_rate"]
    base = train(poems, progress=False, out_dir=str(tmp_path / "base"), **dict(TINY, iters=5))
    fine = prepare_run(poems, dict(options, iters=300, init_from=str(base.checkpoint), out_dir=str(tmp_path / "ft")))
    assert fine.schedule.peak == FINE_TUNE_RATE  # a short fine-tune does not get the short runs' high rate

    # by the clock: the rate follows the steps the budget holds at the speed between two early
    # steps (RATE_MEASURED; fewer here, so that a busy machine reaches them within the budget)
    monkeypatch.setattr(trainer_module, "RATE_MEASURED", (2, 6))
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 100, encoding="utf-8")
    by_clock = dict(options, iters=None, time_budget=3, warmup=2, save_freq=10_000, val_fraction=0.2, split="tail")
    del by_clock["dropout"]  # chosen with the rate
    timed = prepare_run(corpus, dict(by_clock, out_dir=str(tmp_path / "timed")))
    assert timed.schedule.peak is None
    seen = []  # (step, elapsed, the fixed rate) as each step begins
    step = timed.train_step
    timed.train_step = lambda: (seen.append((timed.step, timed.elapsed, timed.schedule.peak)), step())[1]
    result = timed.run(progress=False)
    assert result.step > 6
    fixed = checkpoint.load(result.run_dir)["schedule"]["peak"]
    assert fixed == rate_for(budget_steps(timed.schedule.end, *seen[6][:2], since=seen[2][:2]))
    assert all(rate is None for _, _, rate in seen[:7]) and seen[-1][2] == fixed
    # and with the rate, the dropout (none given): for the passes those steps make over the text
    steps = budget_steps(timed.schedule.end, *seen[6][:2], since=seen[2][:2])
    chosen = checkpoint.load(result.run_dir)["model_config"]["dropout"]
    assert chosen == auto_dropout(passes(timed.cfg, steps, len(timed.split.train))) == timed.model.drop.p
    assert records(result.run_dir)[-1]["lr"] == pytest.approx(0.1 * fixed, rel=0.05)


def test_a_checkpoint_written_before_the_rate_is_measured_holds_none_and_resumes(tmp_path, monkeypatch):
    """Stopped within its first steps, a --time run has not measured its speed: its checkpoint
    leaves the rate open and the resumed run measures it, rather than keeping a guess made from
    the slow first steps."""
    monkeypatch.setattr(trainer_module, "RATE_MEASURED", (10**6, 10**6 + 1))  # never within the run
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 100, encoding="utf-8")
    options = {k: v for k, v in TINY.items() if k != "learning_rate"}
    result = train(corpus, progress=False, out_dir=str(tmp_path / "run"),
                   **dict(options, iters=None, time_budget=2, save_freq=10_000, val_fraction=0.2, split="tail"))
    state = checkpoint.load(result.run_dir)
    assert state["schedule"]["peak"] is None
    last = records(result.run_dir)[-1]
    plan = plan_run(corpus, {"time_budget": "4s"}, resume=result.run_dir)  # more time: the schedule goes on
    # the rate planned at the last step (the log's is of the step before: at most a rounding apart)
    assert plan.schedule.peak is None and plan.schedule.since[1] == pytest.approx(last["lr"], rel=0.02)
    assert plan.schedule.rate(result.step, state["elapsed"]) == plan.schedule.since[1]  # no jump


# --- a tied output ---------------------------------------------------------------------------------

def test_a_tied_output_shares_the_embedding_learns_and_round_trips(poems, tmp_path):
    model = CharRNN(ModelConfig(vocab_size=50, hidden_size=40, embedding_size=16, tie_embedding=True))
    assert model.head.weight is model.embedding.weight and model.config.output_layer == "full"
    untied = CharRNN(ModelConfig(vocab_size=50, hidden_size=40, embedding_size=16))
    assert model.num_parameters() < untied.num_parameters()
    with pytest.raises(ConfigError, match="--tie-embedding needs a full softmax"):
        ModelConfig(vocab_size=5000, tie_embedding=True, output_layer="adaptive")

    result = train(poems, progress=False, out_dir=str(tmp_path / "run"), **dict(TINY, tie_embedding=True))
    assert result.losses[-1] < 0.1, result.losses[-10:]
    loaded = zhrnn.load(result.run_dir)
    assert loaded.model.head.weight is loaded.model.embedding.weight  # still one matrix after loading
    exported = checkpoint.load(checkpoint.export(result.run_dir, tmp_path / "small.pt"))["model"]
    assert exported["head.weight"].data_ptr() == exported["embedding.weight"].data_ptr()  # stored once
    assert loaded.generate(start="床", length=12, greedy=True) == POEMS.splitlines()[0]


# --- by the clock ----------------------------------------------------------------------------------

def test_durations_are_read_as_users_write_them():
    written = ("90s", "30m", "2h", "1h30m", "45", "1.5h", "1h30", "2m30", "1h 5m 10s")
    assert [parse_duration(t) for t in written] == [90, 1800, 7200, 5400, 45, 5400, 5400, 150, 3910]
    for bad in ("", "soon", "3d", "m"):
        with pytest.raises(ConfigError, match="is not a duration"):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(iters=100, time_budget="5m")
    assert TrainConfig(time_budget="2m").time_budget == 120


def test_a_run_by_the_clock_ends_within_its_budget_with_a_last_evaluation(tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 100, encoding="utf-8")
    options = dict(TINY, iters=None, time_budget=4, save_freq=1000, val_fraction=0.2, split="tail")
    trainer = prepare_run(corpus, dict(options, out_dir=str(tmp_path / "run")))
    began = time.perf_counter()
    result = trainer.run(progress=False)
    took = time.perf_counter() - began
    assert took < 4 + 2, took  # the final evaluation and checkpoint fit in (2 s of slack for a busy machine)
    assert not result.interrupted and result.step > 1
    last = records(result.run_dir)[-1]  # save_freq was never reached: this is the end of the budget
    assert last["step"] == result.step and last["val_text_bpc"] is not None and last["elapsed"] == 4
    assert last["lr"] == pytest.approx(0.1 * TINY["learning_rate"], rel=0.05)  # decayed over the time
    state = checkpoint.load(result.run_dir)
    assert state["elapsed"] == 4 and state["train_config"]["time_budget"] == 4

    # resumed with more time: the rate goes on from where it was, over the seconds added
    plan = plan_run(corpus, {"time_budget": "8s"}, resume=result.run_dir)
    assert plan.schedule.since == (4, pytest.approx(trainer.schedule.rate(result.step, 4)))
    assert plan.schedule.rate(result.step, 4) == pytest.approx(last["lr"])  # no jump back up the cosine
    assert plan.schedule.rate(result.step, 8) == pytest.approx(0.1 * TINY["learning_rate"])
    # and by steps instead: the budget given replaces the other
    assert plan_run(corpus, {"iters": result.step + 10}, resume=result.run_dir).cfg.time_budget is None
    # the same budget as the user writes it: nothing of the schedule changed
    assert plan_run(corpus, {"time_budget": "4s"}, resume=result.run_dir).schedule.since is None
    with pytest.raises(ConfigError, match="not both"):
        plan_run(corpus, {"time_budget": "8s", "iters": 5}, resume=result.run_dir)


def test_without_iter_or_time_the_length_follows_the_text(poems, tmp_path):
    assert auto_iters(10, TrainConfig()) == AUTO_MIN_ITERS
    assert auto_iters(10**10, TrainConfig()) == AUTO_MAX_ITERS
    assert auto_iters(3_200_000, TrainConfig()) == 4000  # 4 passes of 3,200-token steps
    trainer = prepare_run(poems, dict(TINY, iters=None, out_dir=str(tmp_path / "run")))
    assert trainer.schedule.end == AUTO_MIN_ITERS  # concrete in the checkpoint, so a resume keeps it


# --- the best checkpoint ---------------------------------------------------------------------------

def scripted_evaluations(monkeypatch, figures):
    """Trainer.evaluate returns these bits per text character, one per evaluation."""
    queue = list(figures)
    monkeypatch.setattr(trainer_module.Trainer, "evaluate", lambda self: Evaluation(queue[0] + 0.2, queue.pop(0)))


def test_the_best_evaluation_is_kept_and_loaded_unless_the_last_is_asked_for(poems, tmp_path, monkeypatch):
    scripted_evaluations(monkeypatch, [5.0, 4.0, 4.5, 6.0, 7.0])  # the last for a resumed run
    result = train(poems, progress=False, out_dir=str(tmp_path / "run"), **dict(TINY, iters=40, save_freq=10))
    best = checkpoint.load(result.run_dir)
    assert best["step"] == 20 and best["best"]["val_text_bpc"] == 4.0 and best["best_val_bpc"] == pytest.approx(4.2)
    assert checkpoint.load(result.run_dir, last=True)["step"] == 40
    assert zhrnn.load(result.run_dir).info["step"] == 20
    assert zhrnn.load(result.run_dir, last=True).info["step"] == 40
    assert checkpoint.resolve(result.run_dir).name == checkpoint.BEST
    for extra, step in (([], 20), (["--last"], 40)):  # the CLI says which it took
        done = run_cli("sample", "--model", result.run_dir, "--len", "5", *extra, cwd=tmp_path)
        assert done.returncode == 0 and f"step {step}" in done.stderr, done.stderr
    # a resume goes on from the latest, not the best
    plan = plan_run(poems, {"iters": 50}, resume=result.run_dir)
    assert plan.resume.step == 40 and plan.resume.best["step"] == 20
    # into another directory: its best.pt is the best of its own evaluations (7.0 there), so it has one
    other = train(poems, resume=result.run_dir, progress=False, iters=50, out_dir=str(tmp_path / "other"))
    assert checkpoint.load(other.run_dir)["step"] == 50 and checkpoint.resolve(other.run_dir).name == checkpoint.BEST


def test_patience_stops_a_run_that_no_longer_improves(poems, tmp_path, monkeypatch):
    scripted_evaluations(monkeypatch, [5.0, 4.0, 4.5, 4.2, 3.0, 2.0])
    result = train(poems, progress=False, out_dir=str(tmp_path / "run"),
                   **dict(TINY, iters=60, save_freq=10, patience=2))
    assert result.early_stopped and result.step == 40 and not result.interrupted
    assert checkpoint.load(result.run_dir)["step"] == 20


def test_a_run_without_validation_has_no_best_and_loads_its_latest(trained):
    assert not (trained.run_dir / checkpoint.BEST).exists()
    assert checkpoint.resolve(trained.run_dir).name == checkpoint.FILENAME
