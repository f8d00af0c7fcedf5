"""One model shared by every request: a thread that owns it and runs all of its work.

Sampling requests join a running batch and leave it when they finish (continuous batching): each
step, every job chooses its rows' next tokens (its own processors, generator and stop rules:
generation.sampling.Sampling, the CLI's path), then one forward pass runs the tokens of all jobs
together. Other work on the model (scoring, the interactive next character) runs between steps
on the same thread, so the model is never used by two threads at once.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ZhrnnError
from ..generation.sampling import Sampling
from ..model import CharRNN, map_hidden


@dataclass
class Job:
    """A sampling request in the batch. emit(event) is called on the batcher's thread with
    ("piece", i, text), then ("done", texts) or ("error", message); cancel() drops it at the next step."""
    sampling: Sampling
    emit: Callable[[tuple], None]
    cancelled: bool = False
    rows: int = field(init=False)

    def __post_init__(self):
        self.rows = self.sampling.rows

    def cancel(self) -> None:
        self.cancelled = True


def _cat(states: list):
    """The states of several jobs, (L, b_j, H) each (or LSTM pairs), as one (L, sum b_j, H)."""
    if isinstance(states[0], (tuple, list)):
        return tuple(torch.cat(parts, 1) for parts in zip(*states))
    return torch.cat(states, 1)


class Batcher:
    """The thread that runs one model. max_rows: rows (streams, drafts included) in the batch and
    waiting to join at most; submit() refuses more."""

    def __init__(self, model: CharRNN, max_rows: int = 64):
        self.model, self.max_rows = model.eval(), max_rows
        self.device = next(model.parameters()).device
        self._lock = threading.Condition()
        self._pending: list[Job] = []
        self._calls: list[tuple[Callable, Future]] = []
        self._active: list[Job] = []
        self._rows = 0  # rows of pending and active jobs
        self._stopped = False
        self.steps = 0  # forward passes of the batch, for tests and benchmarks
        self.widest = 0  # the most rows one forward pass has run
        self._thread = threading.Thread(target=self._run, name="zhrnn-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a job to join the batch; False when the batch is full."""
        with self._lock:
            if self._rows + job.rows > self.max_rows:
                return False
            self._rows += job.rows
            self._pending.append(job)
            self._lock.notify()
        return True

    def call(self, fn: Callable) -> Future:
        """Run fn() on the model's thread between two steps; its result (or error) in the Future."""
        future: Future = Future()
        with self._lock:
            self._calls.append((fn, future))
            self._lock.notify()
        return future

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._pending or self._calls or self._active or self._stopped):
                    self._lock.wait()
                if self._stopped:
                    return
                joining, self._pending = self._pending, []
                calls, self._calls = self._calls, []
            for fn, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as e:  # noqa: BLE001 - handed to the caller
                        future.set_exception(e)
            with torch.inference_mode():
                for job in joining:
                    self._join(job)
                self._step()

    def _leave(self, job: Job, event: tuple | None) -> None:
        with self._lock:
            self._rows -= job.rows
        if event is not None and not job.cancelled:
            job.emit(event)

    def _join(self, job: Job) -> None:
        if job.cancelled:
            return self._leave(job, None)
        try:
            logits, hidden = self.model(job.sampling.prime())  # (rows, P, V)
        except Exception as e:  # noqa: BLE001 - one request's failure, not the server's
            return self._leave(job, ("error", f"{type(e).__name__}: {e}"))
        job.sampling.begin(logits[:, -1], hidden)
        self._active.append(job)

    def _step(self) -> None:
        """Every job chooses its tokens; then one forward pass for all of them."""
        moving, tokens = [], []
        for job in self._active:
            if job.cancelled:
                self._leave(job, None)
                continue
            try:
                chosen = job.sampling.step()  # (rows,) or None: finished
            except Exception as e:  # noqa: BLE001 - one request's failure, not the server's
                self._leave(job, ("error", str(e) if isinstance(e, ZhrnnError) else f"{type(e).__name__}: {e}"))
                continue
            if chosen is None:
                self._leave(job, ("done", job.sampling.texts()))
                continue
            moving.append(job)
            tokens.append(chosen)
        self._active = moving
        if not moving:
            return
        x = torch.cat(tokens)[:, None]  # (B, 1), B the rows of every moving job
        try:
            logits, hidden = self.model(x, _cat([job.sampling.hidden for job in moving]))  # (B, 1, V)
        except Exception as e:  # noqa: BLE001 - say it to the requests, keep serving
            for job in moving:
                self._leave(job, ("error", f"{type(e).__name__}: {e}"))
            self._active = []
            return
        self.steps += 1
        self.widest = max(self.widest, x.size(0))
        first = 0
        for job in moving:
            rows = slice(first, first + job.rows)
            job.sampling.advance(logits[rows, -1], map_hidden(hidden, lambda h: h[:, rows]))
            first += job.rows
