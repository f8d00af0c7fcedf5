"""The parts of the training loop (Trainer._loop) that are not training: the Budget a run
spends (steps, or seconds of the clock under --time), the Sync that brings the processes'
losses and stop flags together, and the Speed it trains at."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .distributed import Dist
from .schedule import SECONDS, Schedule
from ..errors import ZhrnnError


class Speed:
    """Characters trained a second, over 10 steps or more (a steady figure), the time of
    evaluating and saving left out."""

    def __init__(self, chars_per_step: float, step: int):
        self.chars_per_step, self.value = chars_per_step, 0.0
        self.tick, self.tick_step = time.perf_counter(), step

    def update(self, step: int, force: bool = False) -> None:
        if step - self.tick_step >= 10 or force:
            now = time.perf_counter()
            self.value = (step - self.tick_step) * self.chars_per_step / max(now - self.tick, 1e-9)
            self.tick, self.tick_step = now, step

    def restart(self) -> None:
        """After a save: the time it took is not training's."""
        self.tick = time.perf_counter()

    def seconds(self, chars: float) -> float:
        """How long this many characters take at the speed measured (0 before it is)."""
        return chars / self.value if self.value else 0.0


class Budget:
    """What a run spends: its steps, or under --time the seconds of its schedule's end, counted
    by a clock that goes on from the seconds already trained (and, under torchrun, from rank 0's
    at each sync, so that every process stops at the same step)."""

    def __init__(self, schedule: Schedule, save_freq: int, elapsed: float):
        self.end, self.by_time, self.save_freq = schedule.end, schedule.unit == SECONDS, save_freq
        self.save_cost: float | None = None  # seconds of the last evaluation + checkpoint + sample
        self.restart(elapsed)

    def clock(self) -> float:
        """Seconds trained so far."""
        return self.since + time.perf_counter() - self.began

    def restart(self, elapsed: float) -> float:
        self.since, self.began = elapsed, time.perf_counter()
        return elapsed

    def finished(self, step: int, elapsed: float) -> bool:
        return (elapsed if self.by_time else step) >= self.end

    def due(self, step: int) -> bool:
        """Whether step ends with an evaluation and a checkpoint: every save_freq, and the last."""
        return step % self.save_freq == 0 or (not self.by_time and step == self.end)

    def late(self, elapsed: float, speed: Speed, eval_chars: float) -> bool:
        """Under --time: whether the next step and the final evaluation + checkpoint + sample would
        run past the budget (what the last save took, or before the first an estimate: reading the
        validation characters forward only, about a third of the cost of training on as many, and
        a second for the sample and writing the checkpoint)."""
        if not self.by_time:
            return False
        save_cost = self.save_cost if self.save_cost is not None else 1.0 + speed.seconds(eval_chars) / 3
        return elapsed + speed.seconds(speed.chars_per_step) + save_cost >= self.end

    def describe(self, step: int, elapsed: float) -> str:
        return f"{elapsed:.0f} s of --time {self.end:.0f} s" if self.by_time else f"step {step} of {self.end}"

    def bar(self, progress: bool, step: int, elapsed: float) -> tqdm:
        """The progress bar: of seconds under --time, else of steps."""
        if self.by_time:
            return tqdm(total=round(self.end), initial=round(elapsed), disable=not progress, unit="s",
                        dynamic_ncols=True, desc="train",
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}s [{elapsed}<{remaining}{postfix}]")
        return tqdm(total=self.end, initial=step, disable=not progress, unit="it", dynamic_ncols=True, desc="train")

    def show(self, bar: tqdm, step: int, elapsed: float, loss: float | None, speed: Speed) -> None:
        """The bar moved on by a step (or to the second reached); loss: a new figure to show."""
        if loss is not None:
            postfix = {"loss": f"{loss:.3f}", "chars_s": f"{speed.value:,.0f}"}
            if self.by_time:
                postfix["step"] = step
            bar.set_postfix(postfix, refresh=False)
        bar.update(round(elapsed) - bar.n if self.by_time else 1)


@dataclass
class Agreed:
    """What the processes agreed on at a sync."""
    losses: list[float]  # each step's loss since the last sync, the mean over processes
    late: bool  # a process found the budget spent (--time): every one ends the run here
    clock: float  # seconds trained, read once the device had finished the steps (under torchrun, rank 0's)


class Sync:
    """The losses of the last steps, fetched every few steps rather than every step (a fetch
    waits for the GPU), and with them in the same all-reduce whether any process was told to
    stop or has run out of time, and rank 0's clock. One process stops as soon as it is told
    to; several stop where they agreed to, so that none waits for one that has left."""

    def __init__(self, dist: Dist, device: torch.device, by_time: bool):
        self.dist, self.device = dist, device
        # under torchrun, each step on CPUs (a step is slow, the all-reduce cheap) and under --time
        # (every process must stop at the same step, and take the same rate: rank 0's clock)
        self.every = 1 if dist.active and (device.type == "cpu" or by_time) else 10
        self.pending: list[torch.Tensor] = []  # () loss of each step since the last sync
        self.agreed_stop = False

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss)

    def stopping(self, stop: threading.Event) -> bool:
        return self.agreed_stop or (not self.dist.active and stop.is_set())

    def due(self, now: bool, stop: threading.Event) -> bool:
        """Whether to sync after this step: every `every` steps, and now (a save, the end of the budget)."""
        return len(self.pending) >= self.every or now or self.stopping(stop)

    def reduce(self, step: int, stop: threading.Event, late: bool, read_clock: Callable[[], float]) -> Agreed:
        """read_clock: the seconds trained, read here once a GPU has finished the steps queued (a CUDA
        step returns before its kernels have run, so a clock read right after it is early)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = read_clock()
        flags = torch.tensor([float(stop.is_set()), float(late), elapsed if self.dist.main else 0.0], device=self.device)
        summed = self.dist.all_sum(torch.cat([torch.stack(self.pending).float(), flags]))  # (pending + 3,)
        *losses, stops, lates, clock = summed.tolist()
        self.pending.clear()
        self.agreed_stop = stops > 0
        losses = [v / self.dist.world for v in losses]
        if not all(map(math.isfinite, losses)):
            raise ZhrnnError(f"the loss became NaN or infinite near step {step}; lower --learning-rate "
                             f"(the last checkpoint, if any, is untouched)")
        return Agreed(losses, lates > 0, clock if self.dist.active else elapsed)
