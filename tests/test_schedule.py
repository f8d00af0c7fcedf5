"""The learning-rate schedule: a pure function of where the run stands (warmup, cosine to a tenth,
by steps or by the seconds of --time), a resume that never makes it jump, and the one schedule a
run follows, saved in its checkpoint and taken back by a resumed run."""
import io
import math

import pytest
import torch

from zhrnn import checkpoint
from zhrnn.training import fit as train
from zhrnn.training import trainer as trainer_module
from zhrnn.training.build import build_trainer
from zhrnn.training.plan import TrainConfig, plan_run, saved_schedule
from zhrnn.training.schedule import FINE_TUNE_RATE, SECONDS, STEPS, Schedule, budget_steps, rate_for

from .conftest import POEMS, TINY


def steps_of(schedule: Schedule, steps, elapsed=0.0) -> list[float]:
    return [schedule.rate(s, elapsed) for s in steps]


# --- the rate as a pure function -----------------------------------------------------------------

def test_the_warmup_climbs_in_equal_steps_to_the_peak():
    s = Schedule.planned(warmup=10, steps=1000, peak=1e-2)
    assert steps_of(s, range(10)) == pytest.approx([1e-2 * (i + 1) / 10 for i in range(10)])
    assert s.rate(9) == pytest.approx(1e-2) and s.rate(10) == pytest.approx(1e-2)  # the decay begins at the peak
    assert Schedule.planned(warmup=0, steps=100, peak=1e-2).rate(0) == pytest.approx(1e-2)  # no warmup: at once


def test_the_rate_falls_along_a_cosine_to_a_tenth_of_the_peak_and_stays():
    s = Schedule.planned(warmup=10, steps=110, peak=1e-2)
    decay = steps_of(s, range(10, 111))
    assert decay == sorted(decay, reverse=True) and len(set(decay)) == len(decay)  # falling at every step
    assert s.rate(60) == pytest.approx(0.55e-2)  # halfway down the decay, halfway between the peak and a tenth
    assert s.rate(110) == s.rate(10**6) == pytest.approx(1e-3)
    assert s.rate(35) - s.rate(36) < s.rate(60) - s.rate(61)  # a cosine: slow at first, fastest halfway


def test_a_time_budget_decays_by_the_seconds_and_warms_up_by_the_steps():
    s = Schedule.planned(warmup=5, seconds=100.0, peak=1e-2)
    assert (s.unit, s.end) == (SECONDS, 100.0)
    assert s.rate(0, 0.0) == pytest.approx(2e-3) and s.rate(4, 30.0) == pytest.approx(1e-2)  # warmup: the step counts
    assert s.rate(20, 50.0) == s.rate(5000, 50.0) == pytest.approx(0.55e-2)  # after it: the clock, whatever the step
    assert s.rate(20, 25.0) > s.rate(20, 50.0) > s.rate(20, 75.0) > s.rate(20, 100.0) == pytest.approx(1e-3)
    assert s.now(20, 50.0) == 50.0 and s.point(240.0) == "240s" and Schedule.planned(0, steps=9).point(7) == "step 7"


def test_the_peak_is_chosen_from_the_length_of_the_run_or_measured_under_time():
    assert Schedule.planned(50, steps=3000) == Schedule(rate_for(3000), 50, 3000, STEPS, None, "length")
    assert Schedule.planned(50, steps=300, fine_tune=True).peak == FINE_TUNE_RATE
    assert Schedule.planned(50, steps=300, peak=4e-3, fine_tune=True).chosen == "given"
    by_time = Schedule.planned(50, seconds=600.0)
    assert by_time.peak is None and by_time.chosen == "speed"
    # until it is measured, the peak follows the steps the budget holds at the speed so far: 5 steps a second
    assert by_time.peak_at(50, 10.0) == rate_for(50 + 590 * 5) and by_time.peak_at(0, 0.0) == rate_for(0)
    measured = by_time.measured(budget_steps(600.0, 60, 12.0, since=(10, 2.0)))
    assert measured.peak == rate_for(60 + 588 * 5) and measured.rate(60, 12.0) == by_time.rate(60, 12.0)
    assert measured.peak_at(0, 0.0) == measured.peak  # fixed: the speed no longer matters


# --- resumed with another schedule: from the rate reached --------------------------------------------

def never_jumps(before: Schedule, after: Schedule, step: int, elapsed: float, rel=1e-9):
    """after goes on from the rate before had reached (scaled by a new peak), falling to a tenth of its peak."""
    assert after.since is not None and after.since[0] == after.now(step, elapsed)
    scale = after.peak_at(step, elapsed) / before.peak_at(step, elapsed)
    assert after.rate(step, elapsed) == pytest.approx(before.rate(step, elapsed) * scale, rel=rel)
    if after.unit == STEPS:
        rates = steps_of(after, range(step, int(after.end) + 1))
    else:
        rates = [after.rate(step + i, elapsed + (after.end - elapsed) * i / 50) for i in range(51)]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(0.1 * after.peak_at(step, elapsed))


@pytest.mark.parametrize("options", [
    dict(steps=600),  # longer: no climb back up the cosine from a tenth
    dict(steps=400, peak=5e-3),  # a lower rate, as the message after a NaN advises
    dict(steps=600, warmup=100),  # a warmup longer than the run so far does not start it again
    dict(seconds=120.0),  # from steps to the clock
])
def test_a_resume_that_changes_the_schedule_goes_on_from_the_rate_reached(options):
    before = Schedule.planned(warmup=10, steps=300, peak=1e-2)
    for step in (5, 150, 300):
        kw = {"warmup": 10, **options}
        after = before.resumed(step, 60.0, kw.pop("warmup"), **kw)
        never_jumps(before, after, step, 60.0)
        # resumed once more, further: from the rate the first resume had reached
        again = after.resumed(step + 20, 70.0, after.warmup, steps=900)
        never_jumps(after, again, step + 20, 70.0)


def test_a_resume_that_changes_nothing_keeps_the_schedule_whole():
    s = Schedule.planned(warmup=10, steps=300, peak=1e-2).resumed(100, 0.0, 10, steps=600)
    assert s.resumed(200, 0.0, 10) is s and s.resumed(200, 0.0, 10, steps=600, peak=1e-2) is s
    fresh = Schedule.planned(warmup=10, steps=300, peak=1e-2)
    assert fresh.resumed(0, 0.0, 10, steps=600) == Schedule.planned(warmup=10, steps=600, peak=1e-2)  # before any step


def test_a_time_run_resumed_before_its_speed_was_measured():
    before = Schedule.planned(warmup=5, seconds=2.0)
    more = before.resumed(40, 2.0, 5, seconds=4.0)
    assert more.peak is None  # measured again by the resumed run
    assert more.rate(40, 2.0) == pytest.approx(before.rate(40, 2.0) * more.peak_at(40, 2.0) / before.peak_at(40, 2.0))
    by_steps = before.resumed(40, 2.0, 5, steps=400)  # by steps: a peak for its steps, known now
    assert (by_steps.peak, by_steps.chosen) == (rate_for(400), "length")
    never_jumps(before, by_steps, 40, 2.0)


def test_a_schedule_is_plain_data_in_a_checkpoint():
    s = Schedule(3.3e-3, 50, 600.0, SECONDS, (120.0, 2.5e-3), "speed")
    buffer = io.BytesIO()
    torch.save(s.to_dict(), buffer)
    buffer.seek(0)
    assert Schedule.from_dict(torch.load(buffer, weights_only=True)) == s
    assert Schedule.from_dict(Schedule.planned(10, steps=300).to_dict()) == Schedule.planned(10, steps=300)


# --- the schedule of a run, saved and resumed ---------------------------------------------------------

def test_a_checkpoint_from_before_the_schedule_was_saved_resumes_on_its_own(trained, tmp_path):
    """Such a checkpoint kept the peak chosen as its learning_rate, the steps chosen as its iters,
    and a resume's point as schedule_from, all in its train_config."""
    state = checkpoint.load(trained.checkpoint)
    del state["schedule"]
    # a run resumed at step 250 with more steps, and stopped again at 300
    state["train_config"].update(learning_rate=4e-3, iters=350, schedule_from=[250, 2e-3])
    old = tmp_path / "old" / checkpoint.FILENAME
    checkpoint.save({k: v for k, v in state.items() if k not in ("format", "version")}, old)
    assert saved_schedule(state) == Schedule(4e-3, TINY["warmup"], 350, STEPS, (250, 2e-3), "saved")
    assert TrainConfig.from_dict(state["train_config"]).learning_rate == 4e-3
    plan = plan_run(trained.run_dir.parent / "诗.txt", {}, resume=old)
    assert plan.schedule == saved_schedule(state)  # nothing changed: the run goes on as it was
    assert plan.schedule.rate(340) == pytest.approx(4e-4 + (2e-3 - 4e-4) * 0.5 * (1 + math.cos(math.pi * 0.9)))
    longer = plan_run(trained.run_dir.parent / "诗.txt", {"iters": 500}, resume=old).schedule
    never_jumps(plan.schedule, longer, TINY["iters"], 0.0)


def test_a_resumed_time_run_takes_its_rate_from_the_saved_schedule(tmp_path, monkeypatch):
    """The peak a --time run measured is in its checkpoint's schedule (its train_config says
    only that no rate was asked): the resumed run trains by it rather than measuring again."""
    monkeypatch.setattr(trainer_module, "RATE_MEASURED", (0, 1))  # a run that measures does so at its second step
    corpus = tmp_path / "long.txt"
    corpus.write_text(POEMS * 100, encoding="utf-8")
    options = {k: v for k, v in TINY.items() if k != "learning_rate"}
    by_clock = dict(options, iters=None, time_budget=2, warmup=2, save_freq=10_000, val_fraction=0.2, split="tail")
    first = train(corpus, progress=False, out_dir=str(tmp_path / "run"), **by_clock)
    state = checkpoint.load(first.run_dir, last=True)
    assert state["train_config"]["learning_rate"] is None and state["train_config"]["time_budget"] == 2
    saved = Schedule.from_dict(state["schedule"])
    assert (saved.unit, saved.end, saved.chosen) == (SECONDS, 2, "speed")
    # as measured, a peak no measurement gives (rate_for's have two digits, none below 2e-3): the
    # resumed rates show where they come from
    state["schedule"]["peak"] = 1.23e-3
    checkpoint.save({k: v for k, v in state.items() if k not in ("format", "version")}, first.checkpoint)

    plan = plan_run(corpus, {"time_budget": 6}, resume=first.run_dir)  # more time: from the rate reached
    reached = Schedule.from_dict(state["schedule"]).rate(first.step, state["elapsed"])
    assert plan.schedule.peak == 1.23e-3 and plan.schedule.since == (state["elapsed"], pytest.approx(reached))
    trainer = build_trainer(plan)
    seen = []  # (step, elapsed, the rate it trained at)
    step = trainer.train_step

    def recorded():
        where = (trainer.step, trainer.elapsed)
        loss = step()
        seen.append((*where, trainer.optimizer.param_groups[0]["lr"]))
        return loss

    trainer.train_step = recorded
    result = trainer.run(progress=False)
    assert len(seen) > 1 and result.step == first.step + len(seen)  # past the step that would measure it
    assert trainer.schedule == plan.schedule  # never measured again
    assert [lr for _, _, lr in seen] == [plan.schedule.rate(s, e) for s, e, _ in seen]
    assert seen[0][2] == pytest.approx(reached) and all(lr >= 1.23e-4 * 0.999 for _, _, lr in seen)  # down to a tenth
    assert checkpoint.load(result.run_dir, last=True)["schedule"]["peak"] == 1.23e-3
