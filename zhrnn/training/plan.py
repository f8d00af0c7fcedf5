"""The plan of a run: what the options, a checkpoint to resume or a model to start from
(--init-from) decide. The options are checked before any text is read, so that a wrong one
fails in seconds; the vocabulary rule (RunPlan.tokenizer_for) is decided here and applied as the
text is encoded, and so is the learning-rate schedule (schedule.py): a resumed run's here, a new
run's once its text is split (new_schedule, as its steps may follow the text's length). build.py
turns a plan into a Trainer."""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .. import checkpoint, shipped
from . import rundir
from .batches import EVAL_PROTOCOL
from .distributed import Dist
from .finetune import extend_tokenizer
from .schedule import SECONDS, STEPS, Schedule
from .split import SPLITS
from ..errors import ConfigError, CorpusError, DistributedError
from ..model import ModelConfig, resolve_device
from ..text.pipeline import CorpusConfig, CorpusInfo
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """What the user asked for a run (what it was asked, for a resumed one). What follows from it
    (the steps of a run given neither --iter nor --time, the peak rate chosen) is the run's
    Schedule (schedule.py), and the split the text fell back to is the Trainer's."""
    # the classic char-rnn knobs (names of the Theano GRU script in comments)
    batch_size: int = 32  # the global batch: under torchrun each of N processes takes batch_size / N
    seq_length: int = 100  # seq_length: tokens per training sequence (truncated BPTT length)
    # learning_rate: peak, after warmup; cosine decay to a tenth. None: chosen from the length of the
    # run (schedule.rate_for), as the best peak depends on it
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

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A checkpoint's train_config. Runs from before the paragraph split validated on the tail
        of their text, and go on doing so; runs from before --time had a number of steps, and
        runs from before --stateful trained on random windows (still the default). Runs from
        before the Schedule was saved kept a resume's schedule_from here too: saved_schedule
        reads it."""
        d = {k: v for k, v in d.items() if k != "schedule_from"}
        return cls(**{"split": "tail", "iters": 1000, "stateful": False, "learning_rate": 2e-3, **d})

    def __post_init__(self):
        positive = ("batch_size", "seq_length", "iters", "save_freq", "sample_len", "eval_tokens")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.patience is not None and self.patience < 0:
            raise ConfigError(f"--patience must be 0 (off) or more, not {self.patience}")
        if self.time_budget is not None:  # '30m' from the CLI or zhrnn.train, in seconds
            object.__setattr__(self, "time_budget", parse_duration(self.time_budget))
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

# With neither --iter nor --time, a run makes this many passes over its training text, within
# these bounds: a small file is not learned by heart over a thousand passes, and a large one is
# not left after a few percent of one.
AUTO_PASSES, AUTO_MIN_ITERS, AUTO_MAX_ITERS = 4, 200, 50_000


def auto_iters(train_tokens: int, cfg: TrainConfig) -> int:
    """The steps of a run given neither --iter nor --time (AUTO_PASSES over the training text)."""
    return min(AUTO_MAX_ITERS, max(AUTO_MIN_ITERS, round(AUTO_PASSES * train_tokens / (cfg.batch_size * cfg.seq_length))))


def new_schedule(cfg: TrainConfig, train_tokens: int, fine_tune: bool = False) -> Schedule:
    """A new run's schedule, once its text is split: over the steps given or scaled to the text
    (auto_iters), or over its --time budget; fine_tune: it starts from a trained model."""
    steps = cfg.iters
    if steps is None and cfg.time_budget is None:
        steps = auto_iters(train_tokens, cfg)
        log.info("no --iter or --time: %d steps, about %.1f passes over the %d training tokens", steps,
                 steps * cfg.batch_size * cfg.seq_length / train_tokens, train_tokens)
    schedule = Schedule.planned(cfg.warmup, steps, cfg.time_budget, cfg.learning_rate, fine_tune)
    if schedule.chosen in ("length", "fine-tune"):  # under --time: chosen once the speed is measured (Trainer)
        log.info("learning rate %.2g, %s (--learning-rate to choose)", schedule.peak,
                 "as for fine-tuning" if fine_tune else f"as for a run of {steps} steps")
    return schedule


def saved_schedule(state: dict) -> Schedule:
    """The schedule a checkpoint trained by. Before it was saved whole, its parts were in the
    train_config: the peak (given or chosen) as learning_rate, the steps (given or auto_iters)
    as iters, and where a resume had changed the schedule, schedule_from."""
    if "schedule" in state:
        return Schedule.from_dict(state["schedule"])
    cfg, since = TrainConfig.from_dict(state["train_config"]), state["train_config"].get("schedule_from")
    return Schedule(cfg.learning_rate, cfg.warmup, cfg.time_budget or cfg.iters, SECONDS if cfg.time_budget else STEPS,
                    None if since is None else tuple(since), "saved" if cfg.learning_rate is not None else "speed")


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
    schedule: Schedule  # the learning-rate schedule it trained by (saved_schedule)
    elapsed: float = 0.0  # seconds trained so far, what a --time budget counts
    hidden: object = None  # a stateful run's carried state ((L, B, H), or a pair for LSTM), or None

    @classmethod
    def from_checkpoint(cls, state: dict) -> "Resume":
        # a best figure measured another way (zero-state windows, before the streams) is not comparable,
        # nor one chosen by val_bpc (before best.pt): forgotten
        best = state.get("best") if state.get("eval_protocol") == EVAL_PROTOCOL else None
        return cls(Tokenizer.from_dict(state["tokenizer"]), state["model"], state["optimizer"], state.get("scaler"),
                   state["rng"], int(state["step"]), best, state["corpus"]["fingerprint"], saved_schedule(state),
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
    # a resumed run's learning-rate schedule (the checkpoint's, or one going on from it); None for a
    # new run, whose schedule is made once its text is split (new_schedule)
    schedule: Schedule | None = None

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
        (corpus_cfg, model_cfg, cfg), run_dir, resumed, schedule = _resumed(corpus_paths, options, resume, dist)
        init = None
    else:
        (corpus_cfg, model_cfg, cfg), run_dir, init = _new(options, dist)
        resumed = schedule = None
    return RunPlan(corpus_paths, corpus_cfg, model_cfg, cfg, _device(cfg, dist), run_dir, resumed, init, schedule)


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
             dist: Dist) -> tuple[Configs, Path | None, Resume, Schedule]:
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
    schedule = resumed_schedule(resumed, cfg)
    # best.pt stays beside the checkpoint it came from; another directory's best.pt is the best of
    # its own evaluations, so that a run there always has one. Rank 0 decides (--out-dir may be
    # written differently on each machine), so every process keeps the same record for --patience.
    if dist.from_main(lambda: run_dir is None or run_dir.resolve() != path.parent.resolve()):
        resumed.best = None
    return configs, run_dir, resumed, schedule


def resumed_schedule(resumed: Resume, cfg: TrainConfig) -> Schedule:
    """The schedule a resumed run follows: the checkpoint's, or where --iter, --time,
    --learning-rate or --warmup changed it, one that goes on from the rate the run had reached.
    A budget the run was not given (steps scaled to its text) and a peak it did not ask for are
    the checkpoint's: they do not change on resume."""
    step, elapsed, saved = resumed.step, resumed.elapsed, resumed.schedule
    schedule = saved.resumed(step, elapsed, cfg.warmup, cfg.iters, cfg.time_budget, cfg.learning_rate)
    if schedule.since and schedule.since != saved.since:
        where, rate = schedule.since
        log.info("--resume: the learning rate goes on from %.3g at %s, down to %.3g at %s", rate,
                 schedule.point(where), 0.1 * schedule.peak_at(step, elapsed), schedule.point(schedule.end))
    return schedule


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
