"""The learning rate of a run: one Schedule, decided once when the run is planned (or, under
--time with no --learning-rate, once the speed is measured), saved in the checkpoint, and the
only thing the trainer asks for a rate. Like nanoGPT's get_lr, the rate is a pure function of
where the run stands (Schedule.rate):

- a linear warmup over the first steps, in steps even under --time (the warmup's seconds are a
  sliver of any budget);
- then cosine decay to a tenth of the peak at the end of the run: its last step, or under --time
  the last second of its budget;
- by steps it is a function of the step alone, so a resumed run follows the same schedule with
  no scheduler state to restore;
- a run resumed with another --iter, --time, --learning-rate or --warmup decays from the rate it
  had reached instead (Schedule.since), so the rate never jumps (Schedule.resumed).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

STEPS, SECONDS = "steps", "seconds"  # what a schedule's end (and since) count

# The best peak rate depends on the length of the run (BENCHMARKS.md, 全唐诗 on 2 cores, batch
# 32 x 100): 8e-3 is 0.36 bits per character better than 2e-3 in a run of about 1,300 steps (and
# better on Shakespeare too) and 0.34 worse in one of 6,300, where the long high-rate phase keeps
# the model from settling. Between the two the rate falls geometrically with the steps; outside
# it is held.
SHORT_RUN, LONG_RUN = (1_300, 8e-3), (6_300, 2e-3)
# A run from a trained model (--init-from) keeps to the long runs' rate whatever its length: a
# high one would unlearn what the model knows before the new text is learned
FINE_TUNE_RATE = LONG_RUN[1]
# Under --time the steps are not known beforehand: the rate follows the steps the budget holds at
# the speed so far, and is fixed by the speed between these two steps of a process (the first
# steps are slow: allocation, cuDNN's choice of kernels). A checkpoint written before then holds
# no peak, and a resumed run measures again.
RATE_MEASURED = (10, 50)

# How a schedule's peak was chosen: --learning-rate; for the run's steps (rate_for); for
# fine-tuning (FINE_TUNE_RATE); under --time, for the steps the budget holds at the speed measured
# (no peak until then); or by a checkpoint from before the schedule was saved, which does not say.
CHOSEN = ("given", "length", "fine-tune", "speed", "saved")


def rate_for(steps: float) -> float:
    """The peak learning rate for a run of this many steps (SHORT_RUN, LONG_RUN)."""
    (short, fast), (long, slow) = SHORT_RUN, LONG_RUN
    where = min(1.0, max(0.0, math.log(max(steps, 1) / short) / math.log(long / short)))
    return float(f"{fast * (slow / fast) ** where:.2g}")  # 2 digits: a rate a user can read and repeat


def budget_steps(budget: float, step: int, elapsed: float, since: tuple[int, float] = (0, 0.0)) -> float:
    """The steps a budget of seconds holds at the speed since (a step, and the seconds at it) to
    now (step, elapsed); 0 before any step."""
    steps, seconds = step - since[0], elapsed - since[1]
    return step + (budget - elapsed) * steps / seconds if steps > 0 and seconds > 0 else 0.0


def cosine(progress: float) -> float:
    """1 at the start of a decay, 0 at its end (progress 1 and beyond)."""
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class Schedule:
    peak: float | None  # the rate after warmup; None under --time until the speed is measured (peak_at)
    warmup: int  # steps of linear warmup
    end: float  # where the rate reaches a tenth of the peak and the run ends: a step, or a second of training
    unit: str = STEPS  # what end and since count: STEPS, or SECONDS under --time
    since: tuple[float, float] | None = None  # (where, rate): a resumed run decays from the rate it had reached
    chosen: str = "given"  # how the peak was chosen (CHOSEN)

    @classmethod
    def planned(cls, warmup: int, steps: int | None = None, seconds: float | None = None, peak: float | None = None,
                fine_tune: bool = False) -> Schedule:
        """A new run's schedule, over its steps or the seconds of its --time budget: the peak
        given, or else the one for fine-tuning, for its steps, or under --time none until the
        speed is measured (measured)."""
        end, unit = (seconds, SECONDS) if seconds else (steps, STEPS)
        if peak is not None:
            chosen = "given"
        elif fine_tune:
            peak, chosen = FINE_TUNE_RATE, "fine-tune"
        elif unit == STEPS:
            peak, chosen = rate_for(steps), "length"
        else:
            chosen = "speed"
        return cls(peak, warmup, end, unit, chosen=chosen)

    def measured(self, steps: float) -> Schedule:
        """Under --time: the peak for the steps the budget holds at the speed measured, fixed."""
        return replace(self, peak=rate_for(steps), chosen="speed")

    def resumed(self, step: int, elapsed: float, warmup: int, steps: int | None = None, seconds: float | None = None,
                peak: float | None = None) -> Schedule:
        """This schedule as a run resumed at (step, elapsed) with these options (None: as they
        were) follows it: itself when they change nothing, else one that decays from as far down
        its new peak as the run had come down its own (a peak not yet measured: the same
        fraction of the one planned so far), so the rate never jumps."""
        end, unit = (seconds, SECONDS) if seconds else (steps, STEPS) if steps else (self.end, self.unit)
        chosen = "given" if peak is not None and peak != self.peak else self.chosen
        peak = self.peak if peak is None else peak
        if peak is None and unit == STEPS:  # a --time run resumed by steps before it measured its speed
            peak, chosen = rate_for(end), "length"
        if (peak, warmup, end, unit) == (self.peak, self.warmup, self.end, self.unit):
            return self
        new = Schedule(peak, warmup, end, unit, chosen=chosen)
        if not step:
            return new
        rate = self.rate(step, elapsed) * new.peak_at(step, elapsed) / self.peak_at(step, elapsed)
        return replace(new, since=(new.now(step, elapsed), rate))

    def now(self, step: int, elapsed: float) -> float:
        """Where a run stands on the schedule: its step, or under --time its seconds of training."""
        return elapsed if self.unit == SECONDS else step

    def point(self, where: float) -> str:
        """A point of the schedule as the log writes it: 'step 300' or '240s'."""
        return f"{where:.0f}s" if self.unit == SECONDS else f"step {where}"

    def peak_at(self, step: int, elapsed: float) -> float:
        """The peak, or while none is fixed (under --time), the one for the steps the budget holds
        at the speed so far (before the first step, the short runs', which a warmup starts far below)."""
        return self.peak if self.peak is not None else rate_for(budget_steps(self.end, step, elapsed))

    def rate(self, step: int, elapsed: float = 0.0) -> float:
        """The learning rate of step (0-based), elapsed seconds into the run."""
        peak = self.peak_at(step, elapsed)
        now = self.now(step, elapsed)
        if self.since and now >= self.since[0]:  # resumed with another schedule: from the rate reached
            where, reached = self.since
            floor = 0.1 * peak
            return floor + (reached - floor) * cosine((now - where) / max(1e-9, self.end - where))
        if step < self.warmup:
            return peak * (step + 1) / self.warmup
        if self.unit == SECONDS:  # the warmup's seconds are a sliver of any budget
            progress = elapsed / self.end
        else:
            progress = (step - self.warmup) / max(1, self.end - self.warmup)
        return peak * (0.1 + 0.9 * cosine(progress))

    def to_dict(self) -> dict:
        """Plain data, for the checkpoint (loaded with weights_only)."""
        return {**asdict(self), "since": None if self.since is None else list(self.since)}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(**{**d, "since": None if d.get("since") is None else tuple(d["since"])})
