"""One model shared by every request: a thread that owns it and runs all of its work.

Sampling requests join a running batch and leave it when they finish (continuous batching): each
step, every job chooses its rows' next tokens (its own processors, generator and stop rules:
generation.sampling.Sampling, the CLI's path), then one forward pass runs the tokens of all jobs
together. Other work on the model (scoring, the interactive next character) runs between steps
on the same thread, so the model is never used by two threads at once.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ZhrnnError
from ..generation.sampling import Sampling
from ..model import CharRNN, map_hidden

log = logging.getLogger(__name__)


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


def _failure(e: Exception) -> tuple:
    return ("error", str(e) if isinstance(e, ZhrnnError) else f"{type(e).__name__}: {e}")


class Batcher:
    """The thread that runs one model. max_rows: rows (streams, drafts included) in the batch and
    waiting to join at most; submit() refuses more. max_calls: other work waiting at most; call()
    refuses more. One call runs between two steps while streams are being written, so that a burst
    of scoring cannot stall them."""

    def __init__(self, model: CharRNN, max_rows: int = 64, max_calls: int = 16):
        self.model, self.max_rows, self.max_calls = model.eval(), max_rows, max_calls
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

    @property
    def rows(self) -> int:
        """Rows of the jobs waiting to join and being written now (0 when the server is idle)."""
        with self._lock:
            return self._rows

    def submit(self, job: Job) -> bool:
        """Queue a job to join the batch; False when the batch is full (or the batcher stopped)."""
        with self._lock:
            if self._stopped or self._rows + job.rows > self.max_rows:
                return False
            self._rows += job.rows
            self._pending.append(job)
            self._lock.notify()
        return True

    def call(self, fn: Callable) -> Future | None:
        """Run fn() on the model's thread between two steps; its result (or error) in the Future.
        None when max_calls are waiting already (or the batcher stopped)."""
        future: Future = Future()
        with self._lock:
            if self._stopped or len(self._calls) >= self.max_calls:
                return None
            self._calls.append((fn, future))
            self._lock.notify()
        return future

    def stop(self) -> None:
        """End the thread; what was still waiting or being written gets an error."""
        with self._lock:
            self._stopped = True
            self._lock.notify()
        self._thread.join(timeout=5)
        with self._lock:
            jobs, self._pending, self._active = self._pending + self._active, [], []
            calls, self._calls = self._calls, []
        for job in jobs:
            self._leave(job, ("error", "the server is stopping"))
        for _, future in calls:
            future.cancel()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._pending or self._calls or self._active or self._stopped):
                    self._lock.wait()
                if self._stopped:
                    return
                joining, self._pending = self._pending, []
                take = len(self._calls) if not self._active else 1
                calls, self._calls = self._calls[:take], self._calls[take:]
            try:
                for fn, future in calls:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except Exception as e:  # noqa: BLE001 - handed to the caller
                            future.set_exception(e)
                with torch.inference_mode():
                    for job in joining:
                        self._join(job)
                    self._step()
            except Exception as e:  # noqa: BLE001 - a bug of ours: say it to the requests, keep serving
                log.exception("the batcher failed a step")
                for job in self._active:
                    self._leave(job, _failure(e))
                self._active = []

    def _leave(self, job: Job, event: tuple | None) -> None:
        with self._lock:
            self._rows -= job.rows
        if event is not None and not job.cancelled:
            try:
                job.emit(event)
            except Exception:  # noqa: BLE001 - nobody is listening any more (the loop closed)
                job.cancel()

    def _join(self, job: Job) -> None:
        if job.cancelled:
            return self._leave(job, None)
        try:
            logits, hidden = self.model(job.sampling.prime())  # (rows, P, V)
        except Exception as e:  # noqa: BLE001 - one request's failure, not the server's
            return self._leave(job, _failure(e))
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
                self._leave(job, _failure(e))
                continue
            if chosen is None:
                self._leave(job, ("done", job.sampling.texts(), job.sampling.rhymes()))
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
                self._leave(job, _failure(e))
            self._active = []
            return
        self.steps += 1
        self.widest = max(self.widest, x.size(0))
        first, kept = 0, []
        for job in moving:
            rows = slice(first, first + job.rows)
            first += job.rows
            try:  # streams what is new: a listener that fails is that request's end
                job.sampling.advance(logits[rows, -1], map_hidden(hidden, lambda h: h[:, rows]))
                kept.append(job)
            except Exception as e:  # noqa: BLE001
                self._leave(job, _failure(e))
        self._active = kept
