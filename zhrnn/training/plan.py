"""The plan of a run: what the options, a checkpoint to resume or a model to start from
(--init-from) decide. The options are checked before any text is read, so that a wrong one
fails in seconds; the vocabulary rule (RunPlan.tokenizer_for) is decided here and applied as the
text is encoded. build.py turns a plan into a Trainer."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .. import checkpoint, shipped
from . import rundir
from .batches import EVAL_PROTOCOL
from .distributed import Dist
from .finetune import extend_tokenizer
from .split import SPLITS
from ..errors import ConfigError, CorpusError, DistributedError
from ..model import ModelConfig, resolve_device
from ..text.pipeline import CorpusConfig, CorpusInfo
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # the classic char-rnn knobs (names of the Theano GRU script in comments)
    batch_size: int = 32  # the global batch: under torchrun each of N processes takes batch_size / N
    seq_length: int = 100  # seq_length: tokens per training sequence (truncated BPTT length)
    # learning_rate: peak, after warmup; cosine decay to a tenth. None: chosen from the length of the
    # run (rate_for), as the best peak depends on it
    learning_rate: float | None = None
    iters: int | None = None  # iter: optimizer steps in total; None: by --time, else scaled to the text (auto_iters)
    time_budget: float | None = None  # --time, in seconds ('30m' is read too): the schedule and the end follow the clock
    save_freq: int = 200  # save_freq: evaluate + checkpoint + sample every this many steps
    start: str = ""  # idx_of_begin: start text of the samples printed while training
    sample_len: int = 100  # len_of_sample
    sample_temperature: float = 0.8
    # vocabulary
    level: str = "char"  # char | word (jieba)
    min_count: int = 1  # rarer characters become <unk>
    max_vocab: int | None = None
    # optimisation
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    val_fraction: float = 0.05
    patience: int | None = None  # stop after this many evaluations in a row without a new best (0, None: never)
    split: str = "paragraphs"  # paragraphs: whole paragraphs held out, spread through the text | tail (split.py)
    # contiguous streams, the hidden state carried from one step to the next (truncated BPTT), as
    # opposed to random windows that each start from a zero state (batches.py)
    stateful: bool = False
    eval_tokens: int = 100_000  # validation tokens read per evaluation, at most
    # where and how
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16, else fp16, on CUDA; off on CPU) | bf16 | fp16 | off
    out_dir: str | None = None  # default runs/<corpus name>
    init_from: str | None = None  # start from this model's weights (a checkpoint, or a shipped name: 唐诗)
    cache_dir: str | None = None  # encoded-text cache (default $ZHRNN_CACHE or ~/.cache/zhrnn)
    # set by --resume when --iter, --time, --learning-rate or --warmup changes: [where, rate] the
    # schedule goes on from, where being a step, or seconds trained under --time (plan.clock)
    schedule_from: list | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A checkpoint's train_config. Runs from before the paragraph split validated on the tail
        of their text, and go on doing so; runs from before --time had a number of steps, and
        runs from before --stateful trained on random windows (still the default)."""
        return cls(**{"split": "tail", "iters": 1000, "stateful": False, "learning_rate": 2e-3, **d})

    def __post_init__(self):
        positive = ("batch_size", "seq_length", "iters", "save_freq", "sample_len", "eval_tokens")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.patience is not None and self.patience < 0:
            raise ConfigError(f"--patience must be 0 (off) or more, not {self.patience}")
        if self.time_budget is not None:
            self.time_budget = parse_duration(self.time_budget)  # '30m' from the CLI or zhrnn.train
            if self.iters is not None:
                raise ConfigError("give --iter (steps) or --time (a budget), not both")
            if not self.time_budget > 0:
                raise ConfigError(f"--time must be above 0 seconds, not {self.time_budget:g}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be above 0, not {self.learning_rate}")
        if not 0 <= self.val_fraction < 0.5:
            raise ConfigError("--val-fraction must be in [0, 0.5)")
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"--weight-decay must be 0 or more, not {self.weight_decay}")
        if not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be above 0, not {self.grad_clip}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be 0 or more, not {self.warmup}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ConfigError(f"--amp must be auto, bf16, fp16 or off, not {self.amp!r}")


# Options that can change when a run is resumed; everything else is fixed by the checkpoint.
RESUMABLE = {"iters", "time_budget", "save_freq", "start", "sample_len", "sample_temperature", "device", "amp", "eval_tokens", "out_dir",
             "cache_dir", "learning_rate", "warmup", "grad_clip", "patience"}
SCHEDULE = ("iters", "time_budget", "learning_rate", "warmup")  # a resume that changes one goes on from the rate it had reached

# With neither --iter nor --time, a run makes this many passes over its training text, within
# these bounds: a small file is not learned by heart over a thousand passes, and a large one is
# not left after a few percent of one.
AUTO_PASSES, AUTO_MIN_ITERS, AUTO_MAX_ITERS = 4, 200, 50_000


def auto_iters(train_tokens: int, cfg: TrainConfig) -> int:
    """The steps of a run given neither --iter nor --time (AUTO_PASSES over the training text)."""
    return min(AUTO_MAX_ITERS, max(AUTO_MIN_ITERS, round(AUTO_PASSES * train_tokens / (cfg.batch_size * cfg.seq_length))))


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
# no rate, and a resumed run measures again.
RATE_MEASURED = (10, 50)


def rate_for(steps: float) -> float:
    """The peak learning rate for a run of this many steps (SHORT_RUN, LONG_RUN)."""
    (short, fast), (long, slow) = SHORT_RUN, LONG_RUN
    where = min(1.0, max(0.0, math.log(max(steps, 1) / short) / math.log(long / short)))
    return float(f"{fast * (slow / fast) ** where:.2g}")  # 2 digits: a rate a user can read and repeat


def budget_steps(cfg: TrainConfig, step: int, elapsed: float, since: tuple[int, float] = (0, 0.0)) -> float:
    """Under --time: the steps the budget holds at the speed since (a step, and the seconds at it)
    to now (step, elapsed); 0 before any step."""
    steps, seconds = step - since[0], elapsed - since[1]
    return step + (cfg.time_budget - elapsed) * steps / seconds if steps > 0 and seconds > 0 else 0.0


def planned_rate(cfg: TrainConfig, step: int = 0, elapsed: float = 0.0, fine_tune: bool = False) -> float:
    """The peak rate of a run given no --learning-rate: from its steps, or under --time from the
    steps the budget holds at the speed so far (before the first step, the short runs' rate, which
    a warmup starts far below)."""
    if fine_tune:
        return FINE_TUNE_RATE
    return rate_for(budget_steps(cfg, step, elapsed) if cfg.time_budget else cfg.iters)


def peak_rate(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """The run's peak rate: the one given or fixed, or while none is, the rate planned so far."""
    return cfg.learning_rate if cfg.learning_rate is not None else planned_rate(cfg, step, elapsed)


def parse_duration(text: str | float | int) -> float:
    """'90s', '30m', '2h', '1h30m' or a number of seconds -> seconds. A bare number after hours
    counts minutes, as people write them: '1h30' is an hour and a half."""
    if isinstance(text, (int, float)):
        return float(text)
    number = r"(\d+(?:\.\d*)?)"
    match = re.fullmatch(rf"\s*(?:{number}h)?\s*(?:{number}m)?\s*(?:{number}(s)?)?\s*", text.lower())
    if not match or not any(match.groups()):
        raise ConfigError(f"--time {text!r} is not a duration; write e.g. 90s, 30m, 2h or 1h30m")
    hours, minutes, seconds, unit = match.groups()
    if hours and not minutes and seconds and not unit:
        minutes, seconds = seconds, None
    return float(hours or 0) * 3600 + float(minutes or 0) * 60 + float(seconds or 0)


def clock(cfg: TrainConfig, step: int, elapsed: float) -> tuple[float, float]:
    """Where a run stands on its schedule, and where the schedule ends: in steps, or in seconds
    of training under --time."""
    return (elapsed, cfg.time_budget) if cfg.time_budget else (step, cfg.iters)


def lr_at(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warmup (in steps), then cosine decay to a tenth of the peak over the steps, or over
    the seconds of a --time budget. By steps it is a pure function of the step, so a resumed run
    follows the same schedule without a scheduler state to restore. A run resumed with another
    --iter, --time or --learning-rate (schedule_from) decays from the rate it had reached
    instead, so the rate never jumps."""
    now, end = clock(cfg, step, elapsed)
    peak = peak_rate(cfg, step, elapsed)
    if cfg.schedule_from and now >= cfg.schedule_from[0]:
        start, rate = cfg.schedule_from
        floor = 0.1 * peak
        progress = min(1.0, (now - start) / max(1e-9, end - start))
        return floor + (rate - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < cfg.warmup:
        return peak * (step + 1) / cfg.warmup
    if cfg.time_budget:  # the warmup's seconds are a sliver of any budget
        progress = min(1.0, elapsed / cfg.time_budget)
    else:
        progress = min(1.0, (step - cfg.warmup) / max(1, cfg.iters - cfg.warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# Options that may differ between the processes of one torchrun training (only rank 0 writes).
LOCAL = {"out_dir", "cache_dir"}


Configs = tuple[CorpusConfig, ModelConfig, TrainConfig]


def split_options(options: dict) -> Configs:
    """Flat keyword options (as the CLI and zhrnn.train take them) -> the three configs."""
    configs = (CorpusConfig, ModelConfig, TrainConfig)
    known = {f.name: cls for cls in configs for f in fields(cls)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    return tuple(cls(**{k: v for k, v in options.items() if known.get(k) is cls}) for cls in configs)


@dataclass
class Resume:
    """The training state of a checkpoint that a run goes on from (what Trainer.state() saved)."""
    tokenizer: Tokenizer  # the vocabulary stays the checkpoint's
    model: dict[str, torch.Tensor]  # state_dict
    optimizer: dict  # AdamW state_dict
    scaler: dict | None  # GradScaler state_dict: empty (or absent) unless it trained in fp16
    rng: dict[str, torch.Tensor]  # "torch", "batches" (Batches' generator, or Streams' step), "cuda" after a GPU run
    step: int
    best: dict | None  # the best evaluation so far: step, val_bpc, val_text_bpc, evals_since (Trainer.improved)
    fingerprint: str  # of the prepared text it trained on: a changed text is worth a warning
    elapsed: float = 0.0  # seconds trained so far, what a --time budget counts
    hidden: object = None  # a stateful run's carried state ((L, B, H), or a pair for LSTM), or None

    @classmethod
    def from_checkpoint(cls, state: dict) -> "Resume":
        # a best figure measured another way (zero-state windows, before the streams) is not comparable,
        # nor one chosen by val_bpc (before best.pt): forgotten
        best = state.get("best") if state.get("eval_protocol") == EVAL_PROTOCOL else None
        return cls(Tokenizer.from_dict(state["tokenizer"]), state["model"], state["optimizer"], state.get("scaler"),
                   state["rng"], int(state["step"]), best, state["corpus"]["fingerprint"],
                   float(state.get("elapsed", 0.0)), state.get("hidden"))


@dataclass
class InitFrom:
    """The model a new run starts from (--init-from): its vocabulary grows by the new text's tokens."""
    tokenizer: Tokenizer
    model: dict[str, torch.Tensor]  # state_dict, for the base vocabulary (build.py grows its rows)


@dataclass
class RunPlan:
    """A run decided: its text, settings, device, directory and the state it starts from."""
    corpus_paths: list[str]
    corpus_cfg: CorpusConfig
    model_cfg: ModelConfig  # a new run's vocab_size is 0 until the text gives the vocabulary; a resumed one's is the checkpoint's
    cfg: TrainConfig
    device: torch.device  # this process's device (its own GPU under torchrun)
    run_dir: Path | None  # None: a new runs/<corpus name>, made when the run is built
    resume: Resume | None = None
    init_from: InitFrom | None = None  # never together with resume (a resumed run keeps its vocabulary)

    @property
    def labels(self) -> dict[str, str] | None:
        """The label tokens of the model this run continues or starts from: they stay as they were."""
        known = self.resume or self.init_from
        return known.tokenizer.labels if known else None

    def tokenizer_for(self, built: Tokenizer, info: CorpusInfo) -> Tokenizer:
        """The vocabulary to encode the text with, given the one built from it (encoded.Choose):
        the text's own, the resumed checkpoint's, or the --init-from model's grown by the text."""
        if self.init_from is not None:
            base = self.init_from.tokenizer
            if base.script != info.script and "unknown" not in (base.script, info.script):
                log.warning("--init-from: the model learned %s text and this text is %s; consider --convert %s",
                            base.script, info.script, "t2s" if base.script == "simplified" else "s2t")
            return extend_tokenizer(base, built, info.labels)
        if self.resume is not None:
            # The checkpoint's vocabulary stays; the text may change as long as it brings no token
            # that a fresh run would have learned (those would silently train as <unk>).
            tokenizer = self.resume.tokenizer
            new = [t for t in built.vocab if t not in tokenizer.index]
            if new:
                raise CorpusError(
                    f"--resume: the text has {len(new)} token(s) the checkpoint's vocabulary lacks "
                    f"(e.g. {''.join(new[:5])}); resume with the text the run was trained on, or start a new run "
                    "from it with --init-from (new characters get new rows)"
                )
            return tokenizer
        return built


def refuse_other_checkpoint(run_dir: Path, advice: str) -> None:
    if (run_dir / checkpoint.FILENAME).exists() or (run_dir / checkpoint.BEST).exists():
        raise ConfigError(f"{run_dir} already has a checkpoint; {advice}")


def plan_run(corpus_paths, options: dict, resume: str | Path | bool | None = None, dist: Dist | None = None) -> RunPlan:
    """The plan of a new run, or of continuing one (resume: a checkpoint, a run directory, or
    True for the newest run on this corpus). Under torchrun, rank 0 finds and reads the
    checkpoint and hands it to the others: only its machine needs the run directory."""
    dist = dist or Dist()
    if isinstance(corpus_paths, (str, Path)):
        corpus_paths = [corpus_paths]
    if not corpus_paths:
        raise ConfigError("no training text given")
    corpus_paths = [str(p) for p in corpus_paths]
    if options.get("time_budget") is not None:  # '30m' as seconds, so a resume compares like with like
        options = {**options, "time_budget": parse_duration(options["time_budget"])}
    if resume:
        (corpus_cfg, model_cfg, cfg), run_dir, resumed = _resumed(corpus_paths, options, resume, dist)
        init = None
    else:
        (corpus_cfg, model_cfg, cfg), run_dir, init = _new(options, dist)
        resumed = None
    return RunPlan(corpus_paths, corpus_cfg, model_cfg, cfg, _device(cfg, dist), run_dir, resumed, init)


def _new(options: dict, dist: Dist) -> tuple[Configs, Path | None, InitFrom | None]:
    base = None
    if options.get("init_from"):
        base = dist.from_main(lambda: checkpoint.load(shipped.resolve(options["init_from"])))
        # the architecture is the model's; only dropout may change
        base_cfg = asdict(ModelConfig.from_dict(base["model_config"]))
        shape = {k: v for k, v in base_cfg.items() if k not in ("vocab_size", "dropout")}
        changed = sorted(k for k in shape if k in options and options[k] != shape[k])
        if changed:
            raise ConfigError(f"--init-from keeps the model's architecture; cannot change {', '.join(changed)}")
        options = {**shape, "dropout": base["model_config"].get("dropout", 0.1), **options}
        if "level" in base.get("train_config", {}):  # a word-level model goes on at word level
            options.setdefault("level", base["train_config"]["level"])
    configs = split_options(options)
    cfg = configs[2]
    run_dir = Path(cfg.out_dir) if cfg.out_dir else None
    if run_dir:
        dist.from_main(lambda: refuse_other_checkpoint(run_dir, "continue it with --resume or choose another --out-dir"))
    init = None if base is None else InitFrom(Tokenizer.from_dict(base["tokenizer"]), base["model"])
    return configs, run_dir, init


def _resumed(corpus_paths: list[str], options: dict, resume: str | Path | bool,
             dist: Dist) -> tuple[Configs, Path | None, Resume]:
    def find() -> tuple[Path, dict]:
        path = rundir.find_resume(corpus_paths) if resume is True else checkpoint.resolve(resume, last=True)
        return path, checkpoint.load(path)

    path, state = dist.from_main(find)
    if any(k not in state for k in ("optimizer", "rng", "step", "corpus", "train_config")):
        raise ConfigError(f"cannot resume from {path}: it holds no training state (a model for sampling only)")
    model_cfg = asdict(ModelConfig.from_dict(state["model_config"]))
    fixed = {**state.get("corpus_config", {}), **model_cfg, **asdict(TrainConfig.from_dict(state["train_config"]))}
    changed = sorted(k for k, v in options.items() if k not in RESUMABLE and fixed.get(k) != v)
    if changed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
    given = {k: v for k, v in options.items() if k in RESUMABLE and not (k == "learning_rate" and v is None)}
    merged = {**fixed, "out_dir": None, "cache_dir": None, **given}  # a rate left to zhrnn: the run's own
    # a budget in steps or in time: the one given replaces the other
    if options.get("time_budget") is not None and options.get("iters") is not None:
        raise ConfigError("give --iter (steps) or --time (a budget), not both")
    if options.get("time_budget") is not None:
        merged["iters"] = None
    elif options.get("iters") is not None:
        merged["time_budget"] = None
    step, elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
    if step and any(merged[k] != fixed.get(k) for k in SCHEDULE):
        before = split_options(fixed)[2]
        after = split_options({**merged, "schedule_from": None})[2]
        # as far down the new peak as the run had come down its own (a rate not fixed yet: the same)
        rate = lr_at(step, before, elapsed) * peak_rate(after, step, elapsed) / peak_rate(before, step, elapsed)
        now, end = clock(after, step, elapsed)
        merged["schedule_from"] = [now, rate]
        unit = "s" if after.time_budget else ""
        log.info("--resume: the learning rate goes on from %.3g at %s, down to %.3g at %s", rate,
                 f"{now:.0f}{unit}" if unit else f"step {step}", 0.1 * peak_rate(after, step, elapsed),
                 f"{end:.0f}{unit}" if unit else f"step {end}")
    configs = split_options(merged)
    cfg = configs[2]
    # Continue in place only from a run's own ckpt.pt; from any other file (a backup, a shipped
    # model) or with --out-dir, write elsewhere so no other checkpoint is overwritten.
    if cfg.out_dir:
        run_dir = Path(cfg.out_dir)
        if run_dir.resolve() != path.parent.resolve():
            dist.from_main(lambda: refuse_other_checkpoint(run_dir, "choose another --out-dir"))
    else:
        run_dir = path.parent if path.name == checkpoint.FILENAME else None
    resumed = Resume.from_checkpoint(state)
    # best.pt stays beside the checkpoint it came from; another directory's best.pt is the best of
    # its own evaluations, so that a run there always has one. Rank 0 decides (--out-dir may be
    # written differently on each machine), so every process keeps the same record for --patience.
    if dist.from_main(lambda: run_dir is None or run_dir.resolve() != path.parent.resolve()):
        resumed.best = None
    return configs, run_dir, resumed


def _device(cfg: TrainConfig, dist: Dist) -> torch.device:
    """This process's device, once the processes are known to fit: the global batch splits
    evenly over them, and under torchrun each has a GPU of its own when training on CUDA."""
    if cfg.batch_size % dist.world:
        raise DistributedError(f"--batch-size {cfg.batch_size} (the global batch) does not split evenly over "
                               f"{dist.world} processes; use a multiple of {dist.world}")
    device = resolve_device(cfg.device)
    if dist.active and device.type == "cuda":
        if dist.local_world > torch.cuda.device_count():
            raise DistributedError(f"{dist.local_world} processes on this machine but {torch.cuda.device_count()} "
                                   "GPU(s): start one process per GPU (--nproc-per-node)")
        device = torch.device("cuda", torch.cuda.current_device())  # this process's own GPU (set by distributed.setup)
    return device
