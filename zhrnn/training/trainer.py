"""The training loop: AdamW, clipping, the rate of the run's Schedule (schedule.py), AMP on CUDA,
and every save_freq iterations a validation loss in bits per character, an atomic checkpoint and
a printed sample. How a run is decided and put together is in plan.py and build.py; what the
loop spends and how its processes agree, in loop.py.

A run lives in one directory (runs/<corpus name> by default):
    ckpt.pt       the latest checkpoint (everything needed to sample or to resume exactly)
    best.pt       the checkpoint of the best evaluation (bits per text character): what sampling
                  and loading the directory take (a hard link to what ckpt.pt was, no copy)
    samples.txt   the sample written at each save
    log.jsonl     one record per save: step, losses, learning rate, speed
"""
from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import checkpoint
from ..counts import Counts, Mixed
from . import rundir
from .batches import EVAL_PROTOCOL, Batches
from .distributed import Dist
from .encoded import Encoded
from .loop import Budget, Speed, Sync
from .plan import TrainConfig, auto_dropout, passes
from .schedule import RATE_MEASURED, Schedule, budget_steps
from .split import Split
from .validation import Evaluation, Validation
from ..errors import ZhrnnError
from ..generation import SampleConfig, sample
from ..model import CharRNN, map_hidden
from ..text.pipeline import CorpusConfig

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    step: int
    losses: list[float] = field(default_factory=list)  # training loss (nats/token) of each step run here
    val_bpc: float | None = None
    interrupted: bool = False
    early_stopped: bool = False  # --patience ran out


@contextlib.contextmanager
def stop_on_signals(flag: threading.Event):
    """The first Ctrl-C (or SIGTERM: a scheduler's, or torchrun passing either on) sets flag: the
    loop stops after the current step and saves; a second Ctrl-C interrupts at once. Only in the
    main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        # only a second Ctrl-C is impatience: a SIGTERM may come twice (from a scheduler to every
        # process, and again from torchrun passing its own on)
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Trainer:
    """A built run (build.build_trainer): its steps, evaluation, checkpoints, samples and the loop."""

    def __init__(self, *, corpus_paths: list[str], corpus_cfg: CorpusConfig, cfg: TrainConfig, schedule: Schedule,
                 text: Encoded, split: Split, model: CharRNN, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, batches: Batches, device: torch.device, amp: torch.dtype | None,
                 run_dir: Path, dist: Dist, step: int = 0, best: dict | None = None, elapsed: float = 0.0,
                 hidden=None, counts: Counts | None = None, weights: torch.Tensor | None = None,
                 choose_dropout: bool = False):
        """schedule: the rate of every step, and the end of the run; net: what trains (model, or
        its DDP wrapper under torchrun); step, best (the figures of the best evaluation: step,
        val_bpc, val_text_bpc, and evaluations since), elapsed (seconds trained) and hidden (a
        stateful run's carried state): where a resumed run stands (its model, optimizer and
        random streams already restored); counts: the n-gram counts of the training split mixed
        into the model's probabilities (None: --ngram off), with the mixture weights."""
        self.corpus_paths, self.corpus_cfg, self.cfg, self.dist = corpus_paths, corpus_cfg, cfg, dist
        self.schedule = schedule
        self.tokenizer, self.corpus, self.cached, self.layout = text.tokenizer, text.info, text.cached, text.layout
        self.chars_per_token = text.info.chars / len(text.ids)  # 1 at char level; for speed in chars/s
        self.split = split
        self.model, self.net, self.optimizer, self.scaler, self.batches = model, net, optimizer, scaler, batches
        self.model_cfg = model.config  # output and cutoffs made concrete: what the checkpoint keeps
        self.device, self.amp = device, amp
        self.step, self.best, self.elapsed, self.hidden = step, best, elapsed, hidden
        self.first_step, self.rate_since = step, None  # where this process began; measure_speed's start
        # under --time with no --dropout: chosen with the rate, for the passes the budget holds (plan.auto_dropout).
        # (A run stopped before that keeps the short runs' dropout it started with when resumed.)
        self.choose_dropout = choose_dropout
        self.run_dir = run_dir
        self.ckpt_path = run_dir / checkpoint.FILENAME
        self.counts = counts
        self._unwritable: set[str] = set()  # the run's record files that could not be written (said once)
        self.weights = weights if weights is not None or counts is None else torch.full((counts.order,), 0.5,
                                                                                          dtype=torch.float64)
        self.validation = None if split.val is None else Validation(split.val, cfg.seq_length, cfg.eval_tokens,
                                                                    self.tokenizer, device, dist, counts)

    # --- state ---------------------------------------------------------------------------------

    def state(self) -> dict:
        """The checkpoint (plan.Resume.from_checkpoint reads its training state back)."""
        rng = {"torch": torch.get_rng_state(), "batches": self.batches.state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.model.state_dict(),
            "model_config": asdict(self.model_cfg),
            # with the split used (paragraphs fall back to the tail on a text of too few): a resume
            # validates as this run did
            "train_config": {**asdict(self.cfg), "split": self.split.method},
            "schedule": self.schedule.to_dict(),
            "corpus_config": asdict(self.corpus_cfg),
            "tokenizer": self.tokenizer.to_dict(),
            "layout": self.layout.to_dict(),
            "corpus": {"sources": self.corpus_paths, "fingerprint": self.corpus.fingerprint,
                       "script": self.corpus.script, "tokens": int(len(self.split.train)), "processes": self.dist.world,
                       "split": {"method": self.split.method, "held_out": self.split.held_out,
                                 "near_twins": self.split.near_twins, "copies": self.split.copies}},
            "step": self.step,
            "elapsed": self.elapsed,
            # one process's carried state resumes exactly; several processes' states restart from zero
            "hidden": None if self.dist.world > 1 else map_hidden(self.hidden, lambda h: h.float()),
            "counts": None if self.counts is None else {**self.counts.state_dict(), "weights": self.weights.cpu()},
            "best": self.best,  # best.pt's figures; chosen by the mixture's val_text_bpc, or the network's
            "best_val_bpc": self.best and self.best["val_bpc"],
            "eval_protocol": EVAL_PROTOCOL,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
        }

    def measure_speed(self) -> None:
        """Under --time with no --learning-rate or no --dropout: the speed between the
        RATE_MEASURED steps of this process, and from it the schedule's peak and the dropout,
        fixed from then on (until then the schedule plans by the speed so far). Every process
        fixes the same: under torchrun and --time each step takes rank 0's clock (loop.Sync)."""
        done, (first, last) = self.step - self.first_step, RATE_MEASURED
        if done == first:
            self.rate_since = (self.step, self.elapsed)
        elif done >= last and self.rate_since:
            steps = budget_steps(self.schedule.end, self.step, self.elapsed, self.rate_since)
            if self.schedule.peak is None:
                self.schedule = self.schedule.measured(steps)
                log.info("learning rate %.2g, as for the %d steps the --time budget holds at this speed "
                         "(--learning-rate to choose)", self.schedule.peak, steps)
            if self.choose_dropout:
                reads = passes(self.cfg, steps, len(self.split.train))
                self.model.set_dropout(auto_dropout(reads))
                self.model_cfg, self.choose_dropout = self.model.config, False
                log.info("dropout %.2g, as for the %.0f passes over the training text the --time budget holds "
                         "(--dropout to choose)", self.model_cfg.dropout, reads)

    def save(self) -> Path:
        """Every process checks (their weights are equal, so they stop alike); rank 0 writes."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise ZhrnnError(f"the weights became NaN or infinite at step {self.step}; nothing was saved "
                             "(the last checkpoint is untouched); lower --learning-rate")
        if self.dist.main:
            checkpoint.save(self.state(), self.ckpt_path)
        return self.ckpt_path

    def improved(self, ev: Evaluation | None) -> bool:
        """Whether this evaluation is the best of the run (by bits per text character of what the
        checkpoint gives: the mixture where there are counts), counting the evaluations since the
        best for --patience."""
        if ev is None:
            return False
        if self.best is None or ev.headline < self.best.get("mix_val_text_bpc", self.best["val_text_bpc"]):
            self.best = {"step": self.step, "val_bpc": ev.val, "val_text_bpc": ev.text_val, "evals_since": 0}
            if ev.mix_text_val is not None:
                self.best.update(mix_val_bpc=ev.mix_val, mix_val_text_bpc=ev.mix_text_val)
            return True
        self.best["evals_since"] += 1
        return False

    @property
    def patience_spent(self) -> bool:
        return bool(self.cfg.patience and self.best and self.best["evals_since"] >= self.cfg.patience)

    # --- steps ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def train_step(self) -> torch.Tensor:
        if self.schedule.peak is None or self.choose_dropout:
            self.measure_speed()
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.rate(self.step, self.elapsed)
        if self.cfg.stateful and self.batches.fresh_at(self.step):
            self.hidden = None  # a new pass over the text
        x, y = self.batches.next()  # (B, T) each
        with self._autocast():
            # (B*T,) nats of each target, the softmax in float32
            nats, hidden = self.net(x, self.hidden if self.cfg.stateful else None, targets=y)
        if self.cfg.stateful:  # carried into the next step, which does not backpropagate into this one
            self.hidden = map_hidden(hidden, torch.Tensor.detach)
        loss = nats.mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.detach()

    def evaluate(self) -> Evaluation | None:
        """The run's figures on its held-out streams (validation.Validation); with counts, their
        weights in the mixture are fitted anew (self.weights)."""
        if self.validation is None:
            return None
        ev, weights = self.validation(self.model, self._autocast)
        if weights is not None:
            self.weights = weights
        return ev

    def sample(self) -> str:
        cfg = SampleConfig(length=self.cfg.sample_len, temperature=self.cfg.sample_temperature,
                           seed=(self.cfg.seed + self.step) % 2**63)  # its own generator: training RNG untouched
        model = self.model if self.counts is None else Mixed(self.model, self.counts, self.weights)
        return sample(model, self.tokenizer, self.cfg.start, cfg, device=self.device, layout=self.layout)[0]

    def checkpoint_and_sample(self, train_loss: float, speed: float) -> dict:
        """Every process evaluates its share; rank 0 alone saves, samples and logs."""
        ev = self.evaluate()
        best = self.improved(ev)
        val, text_val = (None, None) if ev is None else (ev.val, ev.text_val)
        self.save()
        if best and self.dist.main:  # best.pt: the same file, kept when ckpt.pt moves on
            checkpoint.keep(self.ckpt_path, self.run_dir / checkpoint.BEST)
        record = {"step": self.step, "train_loss": round(train_loss, 5), "val_bpc": None if val is None else round(val, 5),
                  "val_text_bpc": None if text_val is None else round(text_val, 5),
                  **({} if ev is None or ev.mix_val is None else {
                      "mix_val_bpc": round(ev.mix_val, 5), "mix_val_text_bpc": round(ev.mix_text_val, 5),
                      "counts_val_text_bpc": round(ev.counts_text_val, 5),
                      "mix_weights": [round(w, 4) for w in self.weights.tolist()]}),
                  "lr": self.schedule.rate(self.step - 1, self.elapsed), "chars_per_s": round(speed),
                  "elapsed": round(self.elapsed, 1), "time": time.time()}
        if not self.dist.main:
            return record
        text = self.sample()
        bpc = "" if val is None else f", val {val:.3f} bpc"
        self._append("log.jsonl", json.dumps(record, ensure_ascii=False) + "\n")
        self._append("samples.txt", f"=== step {self.step}{bpc} ===\n{text}\n\n")
        record["sample"] = text
        return record

    def _append(self, name: str, line: str) -> None:
        """Add to the run's log or samples. These are a record, not the run: a write that fails
        (a full disk, a file made read-only) is said once and training goes on; the checkpoint,
        saved first, stops the run if it cannot be written."""
        try:
            with open(self.run_dir / name, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as e:
            if name not in self._unwritable:
                log.warning("cannot write %s (%s); training goes on, and the checkpoints are kept",
                            self.run_dir / name, e.strerror or e)
                self._unwritable.add(name)

    def run(self, progress: bool = True, on_save: Callable[[dict], None] | None = None,
            stop: threading.Event | None = None) -> TrainResult:
        """Train to the schedule's end: a step, or under --time a second of training (evaluations
        included; the run ends with an evaluation and checkpoint inside the budget). Setting `stop` (Ctrl-C does)
        ends the run after the current step with a checkpoint, as if it had been interrupted there."""
        with contextlib.ExitStack() as held:
            def claim():  # rank 0 alone writes; the others learn whether it could
                held.enter_context(rundir.locked(self.run_dir))
                checkpoint.remove_stale_temporaries(self.run_dir)  # left by a run that was killed mid-write
                rundir.write_info(self.run_dir, self.corpus_paths)

            self.dist.from_main(claim)
            if not self.dist.main:
                progress, on_save = False, None
            result = self._loop(progress, on_save, stop or threading.Event())
            self.dist.barrier()  # nobody leaves (and so looks failed to torchrun) before rank 0 has saved
            return result

    def describe(self) -> str:
        m, tokens = self.model_cfg, len(self.split.train) + (0 if self.split.val is None else len(self.split.val))
        amp = f" ({str(self.amp).replace('torch.', '')})" if self.amp else ""
        where = f"{self.dist.world} processes (DDP), each on {self.device.type}" if self.dist.active else self.device
        cached = ", encoded text from the cache" if self.cached else ""
        return (f"{', '.join(self.corpus_paths)}: {tokens} tokens ({self.corpus.paragraphs} paragraphs, "
                f"{self.corpus.script}{cached}), vocabulary {len(self.tokenizer)}, {m.cell.upper()} {m.num_layers}x{m.hidden_size} ({m.output_layer} softmax), "
                f"{self.model.num_parameters():,} params, on {where}{amp}")

    def _loop(self, progress: bool, on_save, stop: threading.Event) -> TrainResult:
        result = TrainResult(self.run_dir, self.ckpt_path, self.step)
        budget = Budget(self.schedule, self.cfg.save_freq, self.elapsed)
        if not self._ready(budget, result):
            return result
        self.model.train()
        sync = Sync(self.dist, self.device, budget.by_time)
        # the global batch, on all processes together
        speed = Speed(self.cfg.batch_size * self.cfg.seq_length * self.chars_per_token, self.step)
        eval_chars = self.cfg.eval_tokens * self.chars_per_token
        loss, out_of_time = float("nan"), False

        def ended() -> bool:  # the run's own end: its budget spent, or --patience
            return out_of_time or budget.finished(self.step, self.elapsed) or self.patience_spent

        with budget.bar(progress, self.step, self.elapsed) as bar, stop_on_signals(stop):  # closed even on failure
            while not (ended() or sync.stopping(stop)):
                sync.add(self.dist.guard("training", self.train_step))
                self.elapsed = budget.clock()
                late, due = budget.late(self.elapsed, speed, eval_chars), budget.due(self.step)
                synced = sync.due(due or late, stop)
                if synced:
                    agreed = sync.reduce(self.step, stop, late, budget.clock)
                    # the clock once the device had caught up; under torchrun rank 0's, which every process steps by
                    self.elapsed = budget.restart(agreed.clock)
                    result.losses.extend(agreed.losses)
                    loss, out_of_time = agreed.losses[-1], agreed.late
                    speed.update(self.step, force=due or out_of_time)
                budget.show(bar, self.step, self.elapsed, loss if synced else None, speed)
                if due or out_of_time:  # the end of a --time budget: a last evaluation and checkpoint
                    if out_of_time:  # what is left of the budget is this save's: the run has used it all
                        self.elapsed = max(self.elapsed, budget.end)
                    result.val_bpc = self._save_point(loss, speed, budget, on_save)
            if sync.stopping(stop) and not ended():
                self.save()
                result.interrupted = True
        return self._done(result)

    def _ready(self, budget: Budget, result: TrainResult) -> bool:
        """What the run is, logged; False (and why) when it has nothing left to train."""
        log.info("%s", self.describe())
        where = budget.describe(self.step, self.elapsed)
        log.info("run directory %s; %s", self.run_dir, where)
        if budget.finished(self.step, self.elapsed):
            log.warning("the run has already reached its %s; raise %s to train more", where,
                        "--time" if budget.by_time else "--iter")
            return False
        if self.patience_spent:
            log.warning("the run was stopped by --patience %d (no better validation since step %d); resume with a "
                        "higher --patience, or 0 for none, to train more", self.cfg.patience, self.best["step"])
            result.early_stopped = True
            return False
        if self.split.val is None:
            log.warning("the text is too short for a validation split; the loss shown is the training loss")
        else:
            log.info("%s", self.split.describe())
        return True

    def _done(self, result: TrainResult) -> TrainResult:
        if self.patience_spent:
            result.early_stopped = True
            log.info("no better validation in %d evaluations (--patience): stopped at step %d; the best, step %d "
                     "(%.3f bits per text character), is %s", self.cfg.patience, self.step, self.best["step"],
                     self.best.get("mix_val_text_bpc", self.best["val_text_bpc"]), self.run_dir / checkpoint.BEST)
        result.step = self.step
        return result

    def _save_point(self, loss: float, speed: Speed, budget: Budget, on_save) -> float | None:
        """An evaluation, checkpoint and sample; what it cost is left out of the speed and kept
        for the budget (what the last save of a --time run will take). The validation figure."""
        began = time.perf_counter()
        record = self.checkpoint_and_sample(loss, speed.value)
        budget.save_cost = time.perf_counter() - began
        speed.restart()
        if on_save:
            on_save(record)
        return record["val_bpc"]
