"""The plan of a run: what the options, a checkpoint to resume or a model to start from
(--init-from) decide. The options are checked before any text is read, so that a wrong one
fails in seconds; the vocabulary rule (RunPlan.tokenizer_for) is decided here and applied as the
text is encoded, and so is the learning-rate schedule (schedule.py): a resumed run's here, a new
run's once its text is split (new_schedule, as its steps may follow the text's length). build.py
turns a plan into a Trainer."""
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
from .schedule import SECONDS, STEPS, Schedule
from .split import SPLITS
from ..errors import ConfigError, CorpusError, DistributedError
from ..model import LAYERS, ModelConfig, resolve_device
from ..options import check_options, names, option
from ..text.pipeline import TEXT, CorpusConfig, CorpusInfo
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


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


def parse_ngram(text: str | int) -> str:
    """--ngram: 'auto', 'off' or an order from 1 to 9 -> the same, as a string."""
    value = str(text).strip().lower()
    if value in ("auto", "off") or (value.isdigit() and 1 <= int(value) <= 9):
        return value
    raise ConfigError(f"--ngram takes auto, off or an order from 1 to 9, not {text!r}")


TRAINING = "训练 / training"  # the argument group of `zhrnn train --help` (the text options: TEXT)
BOTH_BUDGETS = "give --iter (steps) or --time (a budget), not both"


@dataclass(frozen=True)
class TrainConfig:
    """What the user asked for a run (what it was asked, for a resumed one). What follows from it
    (the steps of a run given neither --iter nor --time, the peak rate chosen) is the run's
    Schedule (schedule.py), and the split the text fell back to is the Trainer's.

    Each field declares its flag, help and range (zhrnn/options.py), and resumable=True where
    --resume may change it: `zhrnn train` takes its flags from here, check_options() the ranges
    and RESUMABLE the fields a resume may change. The classic char-rnn knobs keep the names of
    the Theano GRU script as aliases (--seq_length, --idx_of_begin, --len_of_sample, ...)."""
    batch_size: int = option(  # the global batch: under torchrun each of N processes takes batch_size / N
        32, flags="--batch-size", low=1, group=TRAINING,
        zh="批大小, 多进程时为全局批", en="sequences per batch, over all processes together (default 32)")
    seq_length: int = option(  # tokens per training sequence (truncated BPTT length)
        100, flags=("--seq-length", "--seq_length"), low=1, group=TRAINING,
        zh="序列长度", en="tokens per sequence (default 100)")
    # peak, after warmup; cosine decay to a tenth. None: chosen from the length of the run
    # (schedule.rate_for), as the best peak depends on it
    learning_rate: float | None = option(
        None, type=float, flags=("--learning-rate", "--learning_rate"), above=0, group=TRAINING, resumable=True,
        zh="峰值学习率; 默认按训练长度选: 约 1,300 步以内 8e-3, 6,300 步以上 2e-3 (--time 时按前 50 步的速度估计步数), "
           "微调 2e-3, --resume 沿用",
        en="peak learning rate (default: from the length of the run, 8e-3 up to about 1,300 steps falling to 2e-3 "
           "from 6,300, under --time from the speed of the first 50 steps; 2e-3 for --init-from; a resume keeps it)")
    iters: int | None = option(  # optimizer steps in total; None: by --time, else scaled to the text (auto_iters)
        None, type=int, flags="--iter", low=1, group=TRAINING, resumable=True,
        zh="训练步数; 不给 --iter 和 --time 时按文本大小定 (约 4 遍)",
        en="training steps (default: about 4 passes over the text, 200 to 50,000 steps)")
    time_budget: float | None = option(  # in seconds ('30m' is read too): the schedule and the end follow the clock
        None, type=float, flags="--time", parse=parse_duration, metavar="DURATION", above=0, group=TRAINING,
        resumable=True, zh="按时间训练, 如 90s、30m、2h: 学习率按时间衰减, 到时做最后一次验证和保存",
        en="train for this long (90s, 30m, 2h): the rate decays over the time, and the run ends with an evaluation "
           "and checkpoint")
    # contiguous streams, the hidden state carried from one step to the next (truncated BPTT), as
    # opposed to random windows that each start from a zero state (batches.py)
    stateful: bool = option(
        False, flags="--stateful", negatable=True, group=TRAINING, zh="连续文本流, 隐状态跨步传递 (截断 BPTT)",
        en="contiguous streams with the hidden state carried from step to step (truncated BPTT), instead of "
           "random windows")
    save_freq: int = option(  # evaluate + checkpoint + sample every this many steps
        200, flags=("--save-freq", "--save_freq"), low=1, group=TRAINING, resumable=True,
        zh="每多少步保存并采样", en="checkpoint + sample every N steps (default 200)")
    start: str = option(
        "", flags=("--start", "--idx_of_begin"), group=TRAINING, resumable=True,
        zh="训练中采样的开头", en="start text of the samples printed while training")
    sample_len: int = option(
        100, flags=("--len", "--len_of_sample"), low=1, group=TRAINING, resumable=True,
        zh="采样长度", en="sample length (default 100)")
    sample_temperature: float = option(0.8, above=0, resumable=True,
                                       en="temperature of the samples printed while training (default 0.8)")
    init_from: str | None = option(  # start from this model's weights (a checkpoint, or a shipped name: 唐诗)
        None, type=str, flags="--init-from", metavar="MODEL", group=TRAINING,
        zh="从已有模型开始微调: 自带模型名 (唐诗、宋词、现代文) 或检查点; auto 用最了解这份文本的自带模型 (给文本的前 2 万字打分); "
           "none 从头训练; 新字自动加入词表",
        en="fine-tune a shipped model (唐诗, 宋词, 现代文) or a checkpoint; auto: the shipped model that knows the text "
           "best (scored on its first 20,000 characters); none: from scratch; new characters are added to its "
           "vocabulary")
    out_dir: str | None = option(
        None, type=str, flags="--out-dir", group=TRAINING, resumable=True,
        zh="运行目录", en="run directory (default runs/<corpus name>)")
    seed: int = option(1337, flags="--seed", group=TRAINING, zh="随机种子", en="random seed (default 1337)")
    device: str = option(  # auto | cpu | cuda | cuda:N (model.resolve_device checks it)
        "auto", flags="--device", group=TRAINING, resumable=True,
        en="auto | cpu | cuda (default auto: the GPU when there is one)")
    amp: str = option(  # auto: bf16, else fp16, on CUDA; off on CPU
        "auto", flags="--amp", choices=("auto", "bf16", "fp16", "off"), group=TRAINING, resumable=True,
        zh="混合精度", en="mixed precision (default auto: on for CUDA)")
    val_fraction: float = option(
        0.05, flags="--val-fraction", low=0, below=0.5, group=TRAINING,
        zh="验证集比例", en="held-out share of the text (default 0.05)")
    split: str = option(  # paragraphs: whole paragraphs held out, spread through the text | tail (split.py)
        "paragraphs", flags="--split", choices=SPLITS, group=TRAINING,
        zh="验证集: paragraphs 为散布全文的整段 (默认; 重复与近似重复的段不会一边训练一边验证), tail 为文末",
        en="held-out text: whole paragraphs spread through the text, near-twins kept on one side (default), "
           "or the tail")
    grad_clip: float = option(
        1.0, flags="--grad-clip", above=0, group=TRAINING, resumable=True,
        zh="梯度裁剪", en="gradient norm clip (default 1.0)")
    weight_decay: float = option(0.01, flags="--weight-decay", low=0, group=TRAINING,
                                 en="AdamW weight decay (default 0.01)")
    warmup: int = option(50, flags="--warmup", low=0, group=TRAINING, resumable=True,
                         zh="学习率预热步数", en="warmup steps (default 50)")
    patience: int | None = option(  # 0 or None: never stop early
        None, type=int, flags="--patience", low=0, metavar="N", group=TRAINING, resumable=True,
        zh="连续 N 次验证没有更好就停止", en="stop after N evaluations in a row without a new best")
    # the counts (counts.py): a Kneser-Ney model of the training split, mixed into every probability
    ngram: str = option(
        "auto", flags="--ngram", parse=parse_ngram, metavar="auto|off|N", group=TRAINING,
        zh="把训练文本的 n-gram 计数 (Kneser-Ney) 混入模型的每个概率: auto 为 5 阶 (词级 3 阶), off 不用, 或给阶数 N",
        en="mix Kneser-Ney n-gram counts of the training text into every probability the model gives: auto "
           "(order 5; 3 at word level), off, or an order N")
    eval_tokens: int = option(100_000, low=1, resumable=True,
                              en="the most validation tokens read per evaluation (default 100,000)")
    # the text and its vocabulary (with CorpusConfig's options in the same group)
    level: str = option(
        "char", flags="--level", choices=("char", "word"), group=TEXT,
        zh="每字一个 token (char, 默认) 或 jieba 分词 (word)",
        en="a token per character (char, the default) or per jieba word (word)")
    min_count: int = option(1, flags="--min-count", low=1, group=TEXT,
                            zh="少于此次数的字记为 <unk>", en="rarer characters become <unk> (default 1)")
    max_vocab: int | None = option(None, type=int, flags="--max-vocab", group=TEXT, zh="词表上限",
                                   en="vocabulary size limit")
    cache_dir: str | None = option(
        None, type=str, flags="--cache-dir", group=TEXT, resumable=True,
        zh="编码后文本的缓存目录", en="cache of encoded text (default $ZHRNN_CACHE or ~/.cache/zhrnn)")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A checkpoint's train_config. Runs from before the paragraph split validated on the tail
        of their text, and go on doing so; runs from before --time had a number of steps, and
        runs from before --stateful trained on random windows (still the default). Runs from
        before the Schedule was saved kept a resume's schedule_from here too: saved_schedule
        reads it. Runs from before the counts go on without them (zhrnn export --counts adds them)."""
        d = {k: v for k, v in d.items() if k != "schedule_from"}
        return cls(**{"split": "tail", "iters": 1000, "stateful": False, "learning_rate": 2e-3, "ngram": "off", **d})

    def __post_init__(self):
        if self.time_budget is not None:  # '30m' from zhrnn.train, in seconds
            object.__setattr__(self, "time_budget", parse_duration(self.time_budget))
        object.__setattr__(self, "ngram", parse_ngram(self.ngram))  # 3 from zhrnn.train is '3'
        check_options(self)  # each field in its declared range
        if self.time_budget is not None and self.iters is not None:
            raise ConfigError(BOTH_BUDGETS)

    @property
    def ngram_order(self) -> int | None:
        """The order of the counts mixed in (None: --ngram off)."""
        if self.ngram == "off":
            return None
        return {"char": 5, "word": 3}[self.level] if self.ngram == "auto" else int(self.ngram)


# Options that can change when a run is resumed (declared resumable); everything else is fixed by the checkpoint.
RESUMABLE = frozenset(names(TrainConfig, lambda option: option.resumable))

# With neither --iter nor --time, a run makes this many passes over its training text, within
# these bounds: a small file is not learned by heart over a thousand passes, and a large one is
# not left after a few percent of one.
AUTO_PASSES, AUTO_MIN_ITERS, AUTO_MAX_ITERS = 4, 200, 50_000


# The dropout of a run given no --dropout, by the passes over its training text the run makes
# (BENCHMARKS.md, "A small file: dropout by the passes a run makes"): five minutes on 2 cores
# give a 60,000-character file 60 passes, and at dropout 0.1 the network has learned it by heart
# within the first minute; a 300,000-character one gets 12 passes and trains best at 0.1. Up to
# the first bound the low value, from the second the high one, between them on a log scale.
DROPOUT_BY_PASSES = ((12, 0.1), (60, 0.5))


# The layers of a run given no --num-layers, by the size of its training text (BENCHMARKS.md, "A
# small file: one layer"): five minutes on 2 cores of a 1-layer GRU beat the 2-layer one mixed with
# the counts on texts of 60,000 to 1.28 million characters (it makes half as many steps again); on
# 全唐诗's 3.3 million the 2-layer shape was chosen at the same budget (issue 14, where one layer was
# not tried). The bound lies between them.
SMALL_TEXT = 1_500_000  # training tokens: below, one layer


def auto_layers(train_tokens: int) -> int:
    """The layers of a run given none: 1 for a small text (SMALL_TEXT), else model.LAYERS."""
    return 1 if train_tokens < SMALL_TEXT else LAYERS


def passes(cfg: TrainConfig, steps: float, train_tokens: int) -> float:
    """How many times a run of this many steps reads its training text (the global batch)."""
    return steps * cfg.batch_size * cfg.seq_length / max(train_tokens, 1)


def auto_dropout(passes: float) -> float:
    """The dropout of a run given none, for the passes it makes over its text (DROPOUT_BY_PASSES),
    in steps of 0.05."""
    (few, low), (many, high) = DROPOUT_BY_PASSES
    where = min(1.0, max(0.0, math.log(max(passes, 1e-9) / few) / math.log(many / few)))
    return round(20 * (low + (high - low) * where)) / 20


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
    counts: dict | None = None  # the counts and their weights (Counts.state_dict and "weights"), or None

    @classmethod
    def from_checkpoint(cls, state: dict) -> "Resume":
        # a best figure measured another way (zero-state windows, before the streams) is not comparable,
        # nor one chosen by val_bpc (before best.pt): forgotten
        best = state.get("best") if state.get("eval_protocol") == EVAL_PROTOCOL else None
        return cls(Tokenizer.from_dict(state["tokenizer"]), state["model"], state["optimizer"], state.get("scaler"),
                   state["rng"], int(state["step"]), best, state["corpus"]["fingerprint"], saved_schedule(state),
                   float(state.get("elapsed", 0.0)), state.get("hidden"), state.get("counts"))


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
        (corpus_cfg, model_cfg, cfg), run_dir, init = _new(corpus_paths, options, dist)
        resumed = schedule = None
    return RunPlan(corpus_paths, corpus_cfg, model_cfg, cfg, _device(cfg, dist), run_dir, resumed, init, schedule)


def _new(corpus_paths: list[str], options: dict, dist: Dist) -> tuple[Configs, Path | None, InitFrom | None]:
    base = None
    if str(options.get("init_from")).lower() == "none":  # from scratch, said outright
        options = {**options, "init_from": None}
    elif options.get("init_from") == "auto":  # the shipped base that knows the text best, if one does
        from .headstart import choose_base

        corpus_cfg = split_options({k: v for k, v in options.items() if k != "init_from"})[0]
        choice = dist.from_main(lambda: choose_base(corpus_paths, corpus_cfg))
        log.warning("%s", choice.describe())
        options = {**options, "init_from": choice.chosen}
    if options.get("init_from"):
        base = dist.from_main(lambda: checkpoint.load(shipped.resolve(options["init_from"])))
        # the architecture is the model's; only dropout may change (given none, it follows the passes over the new text)
        base_cfg = asdict(ModelConfig.from_dict(base["model_config"]))
        shape = {k: v for k, v in base_cfg.items() if k not in ("vocab_size", "dropout")}
        changed = sorted(k for k in shape if k in options and options[k] != shape[k])
        if changed:
            raise ConfigError(f"--init-from keeps the model's architecture; cannot change {', '.join(changed)}")
        options = {**shape, **options}
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
        raise ConfigError(BOTH_BUDGETS)  # checked here too: below, the one given replaces the run's other
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
        device = torch.device("cuda", dist.local_rank)  # this process's own GPU; a run on the CPU claims none
        torch.cuda.set_device(device)  # before the first CUDA collective: NCCL joins on the current device
    return device
