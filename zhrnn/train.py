"""The training loop: AdamW, clipping, warmup + cosine schedule, AMP on CUDA, and every save_freq
iterations a validation loss in bits per character, an atomic checkpoint and a printed sample.

A run lives in one directory (runs/<corpus name> by default):
    ckpt.pt       the latest checkpoint (everything needed to sample or to resume exactly)
    samples.txt   the sample written at each save
    log.jsonl     one record per save: step, losses, learning rate, speed
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint, rundir, shipped
from .corpus import CorpusConfig, load_corpus
from .data import Batches, encode_ids, eval_windows, split_ids
from .errors import ConfigError, CorpusError, ZhrnnError
from .finetune import extend_tokenizer, grow_state
from .generate import SampleConfig, resolve_start, sample
from .model import CharRNN, ModelConfig, resolve_device
from .tokenizer import Tokenizer, build_tokenizer

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # the classic char-rnn knobs (names of the Theano GRU script in comments)
    batch_size: int = 32
    seq_length: int = 100  # seq_length: tokens per training sequence (truncated BPTT length)
    learning_rate: float = 2e-3  # learning_rate: peak, after warmup; cosine decay to a tenth
    iters: int = 1000  # iter: optimizer steps in total
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
    eval_tokens: int = 100_000  # validation tokens read per evaluation, at most
    # where and how
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16, else fp16, on CUDA; off on CPU) | bf16 | fp16 | off
    out_dir: str | None = None  # default runs/<corpus name>
    init_from: str | None = None  # start from this model's weights (a checkpoint, or a shipped name: 唐诗)

    def __post_init__(self):
        positive = ("batch_size", "seq_length", "iters", "save_freq", "sample_len", "eval_tokens")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be above 0, not {self.learning_rate}")
        if not 0 <= self.val_fraction < 0.5:
            raise ConfigError("--val-fraction must be in [0, 0.5)")
        if not self.weight_decay >= 0:
            raise ConfigError(f"--weight-decay must be 0 or more, not {self.weight_decay}")
        if not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be above 0, not {self.grad_clip}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be 0 or more, not {self.warmup}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ConfigError(f"--amp must be auto, bf16, fp16 or off, not {self.amp!r}")


# Options that can change when a run is resumed; everything else is fixed by the checkpoint.
RESUMABLE = {"iters", "save_freq", "start", "sample_len", "sample_temperature", "device", "amp", "eval_tokens", "out_dir"}


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    step: int
    losses: list[float] = field(default_factory=list)  # training loss (nats/token) of each step run here
    val_bpc: float | None = None
    interrupted: bool = False


def split_options(options: dict) -> tuple[CorpusConfig, ModelConfig, TrainConfig]:
    """Flat keyword options (as the CLI and zhrnn.train take them) -> the three configs."""
    configs = (CorpusConfig, ModelConfig, TrainConfig)
    known = {f.name: cls for cls in configs for f in fields(cls)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    return tuple(cls(**{k: v for k, v in options.items() if known.get(k) is cls}) for cls in configs)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        # cuDNN runs RNNs in bf16 only from 9.13 on; before that fp16 (with loss scaling) is the fast path
        cudnn = torch.backends.cudnn.version() or 0
        return torch.bfloat16 if torch.cuda.is_bf16_supported() and cudnn >= 91300 else torch.float16
    return torch.float16 if amp == "fp16" else torch.bfloat16


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak: a pure function of the step, so
    a resumed run follows the same schedule without a scheduler state to restore."""
    if step < cfg.warmup:
        return cfg.learning_rate * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.iters - cfg.warmup))
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@contextlib.contextmanager
def stop_on_sigint(flag: threading.Event):
    """The first Ctrl-C sets flag: the loop stops after the current step and saves; a second one
    interrupts at once. Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    """Owns one run: corpus, tokenizer, model, optimizer and their states."""

    def __init__(self, corpus_paths, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, cfg: TrainConfig,
                 state: dict | None = None, run_dir: Path | None = None, base: dict | None = None):
        """state: a checkpoint to resume; base: a model to start from (--init-from)."""
        self.corpus_paths = [str(p) for p in corpus_paths]
        self.corpus_cfg, self.cfg = corpus_cfg, cfg
        self.device = resolve_device(cfg.device)  # before reading the text: a wrong --device fails fast
        known = state or base
        known_labels = known["tokenizer"].get("labels") if known else None  # label tokens stay as they were
        corpus = load_corpus(self.corpus_paths, corpus_cfg, labels=known_labels)
        built = build_tokenizer(corpus.text, cfg.level, min_count=cfg.min_count, max_size=cfg.max_vocab,
                                marker=corpus.marker, script=corpus.script, labels=corpus.labels)
        if base is not None:
            base_tokenizer = Tokenizer.from_dict(base["tokenizer"])
            if base_tokenizer.script != corpus.script and "unknown" not in (base_tokenizer.script, corpus.script):
                log.warning("--init-from: the model learned %s text and this text is %s; consider --convert %s",
                            base_tokenizer.script, corpus.script, "t2s" if base_tokenizer.script == "simplified" else "s2t")
            self.tokenizer = extend_tokenizer(base_tokenizer, built, corpus.labels)
        elif state is not None:
            # The checkpoint's vocabulary stays; the text may change as long as it brings no token
            # that a fresh run would have learned (those would silently train as <unk>).
            self.tokenizer = Tokenizer.from_dict(state["tokenizer"])
            new = [t for t in built.vocab if t not in self.tokenizer.index]
            if new:
                raise CorpusError(
                    f"--resume: the text has {len(new)} token(s) the checkpoint's vocabulary lacks "
                    f"(e.g. {''.join(new[:5])}); resume with the text the run was trained on, or start a new run"
                )
        else:
            self.tokenizer = built
        self.corpus = corpus
        ids = encode_ids(corpus.text, self.tokenizer)
        self.chars_per_token = len(corpus.text) / len(ids)  # 1 at char level; for speed in chars/s
        self.split = split_ids(ids, cfg.seq_length, cfg.val_fraction)
        resolve_start(cfg.start, self.tokenizer)  # refuse an unknown start character before training

        self.amp = amp_dtype(cfg.amp, self.device)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 for what stays in float32

        model_cfg.vocab_size = len(self.tokenizer)
        self.model_cfg = model_cfg
        torch.manual_seed(cfg.seed)
        self.model = CharRNN(model_cfg)
        if base is not None:
            self.model.load_state_dict(grow_state(base["model"], self.model))
        self.model.to(self.device)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate, betas=(0.9, 0.99),
        )
        # fp16 needs loss scaling; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.batches = Batches(self.split.train, cfg.batch_size, cfg.seq_length, self.device, cfg.seed)
        self.char_len = torch.from_numpy(self.tokenizer.char_lengths()).to(self.device)  # (V,)
        self.step, self.best_val = 0, None
        if state is not None:
            self._restore(state)
        self.run_dir = run_dir or rundir.new_run_dir(self.corpus_paths)
        self.run_dir.mkdir(parents=True, exist_ok=True)  # an unusable --out-dir fails here, before training
        self.ckpt_path = self.run_dir / checkpoint.FILENAME

    # --- state ---------------------------------------------------------------------------------

    def state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "batches": self.batches.state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.model.state_dict(),
            "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.cfg),
            "corpus_config": asdict(self.corpus_cfg),
            "tokenizer": self.tokenizer.to_dict(),
            "corpus": {"sources": self.corpus_paths, "fingerprint": self.corpus.fingerprint,
                       "script": self.corpus.script, "tokens": int(len(self.split.train))},
            "step": self.step,
            "best_val_bpc": self.best_val,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
        }

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.best_val = int(state["step"]), state.get("best_val_bpc")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.batches.set_state(rng["batches"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if state["corpus"]["fingerprint"] != self.corpus.fingerprint:
            log.warning("the corpus text changed since the checkpoint (same vocabulary); training goes on with the new text")

    def save(self) -> Path:
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise ZhrnnError(f"the weights became NaN or infinite at step {self.step}; nothing was saved "
                             "(the last checkpoint is untouched); lower --learning-rate")
        return checkpoint.save(self.state(), self.ckpt_path)

    # --- steps ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy in nats of predicting y (B, T) from x (B, T); the softmax in float32."""
        with self._autocast():
            logits, _ = self.model(x)  # (B, T, V)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction=reduction)

    def train_step(self) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        loss = self._loss(*self.batches.next())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.detach()

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Validation loss in bits per character (per character, also at word level)."""
        if self.split.val is None:
            return None
        self.model.eval()
        nats = chars = 0.0
        for window in eval_windows(self.split.val, self.cfg.batch_size, self.cfg.seq_length, self.cfg.eval_tokens):
            window = window.to(self.device)  # (b, T+1)
            length = self.char_len[window[:, 1:]].flatten()  # (b*T,) characters each target stands for
            # a label token is not text: its prediction is not counted (so BPC compares with unlabelled runs)
            nats += (self._loss(window[:, :-1], window[:, 1:], reduction="none") * (length > 0)).sum().item()
            chars += length.sum().item()
        self.model.train()
        return nats / chars / math.log(2)

    def sample(self) -> str:
        cfg = SampleConfig(length=self.cfg.sample_len, temperature=self.cfg.sample_temperature,
                           seed=self.cfg.seed + self.step)  # its own generator: training RNG untouched
        return sample(self.model, self.tokenizer, self.cfg.start, cfg, device=self.device)[0]

    def checkpoint_and_sample(self, train_loss: float, speed: float) -> dict:
        val = self.evaluate()
        if val is not None and (self.best_val is None or val < self.best_val):
            self.best_val = val
        self.save()
        text = self.sample()
        record = {"step": self.step, "train_loss": round(train_loss, 5), "val_bpc": None if val is None else round(val, 5),
                  "lr": lr_at(self.step - 1, self.cfg), "chars_per_s": round(speed), "time": time.time()}
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        with open(self.run_dir / "samples.txt", "a", encoding="utf-8") as f:
            bpc = "" if val is None else f", val {val:.3f} bpc"
            f.write(f"=== step {self.step}{bpc} ===\n{text}\n\n")
        record["sample"] = text
        return record

    def run(self, progress: bool = True, on_save: Callable[[dict], None] | None = None,
            stop: threading.Event | None = None) -> TrainResult:
        """Train to cfg.iters. Setting `stop` (Ctrl-C does) ends the run after the current step
        with a checkpoint, as if it had been interrupted there."""
        with rundir.locked(self.run_dir):
            checkpoint.remove_stale_temporaries(self.run_dir)  # left by a run that was killed mid-write
            rundir.write_info(self.run_dir, self.corpus_paths)
            return self._loop(progress, on_save, stop or threading.Event())

    def describe(self) -> str:
        m, tokens = self.model_cfg, len(self.split.train) + (0 if self.split.val is None else len(self.split.val))
        amp = f" ({str(self.amp).replace('torch.', '')})" if self.amp else ""
        return (f"{', '.join(self.corpus_paths)}: {tokens} tokens ({self.corpus.paragraphs} paragraphs, "
                f"{self.corpus.script}), vocabulary {len(self.tokenizer)}, {m.cell.upper()} {m.num_layers}x{m.hidden_size}, "
                f"{self.model.num_parameters():,} params, on {self.device}{amp}")

    def _loop(self, progress: bool, on_save, stop: threading.Event) -> TrainResult:
        cfg = self.cfg
        result = TrainResult(self.run_dir, self.ckpt_path, self.step)
        log.info("%s", self.describe())
        log.info("run directory %s; step %d of %d", self.run_dir, self.step, cfg.iters)
        if self.step >= cfg.iters:
            log.warning("the run is already at step %d of --iter %d; raise --iter to train more", self.step, cfg.iters)
            return result
        if self.split.val is None:
            log.warning("the text is too short for a validation split; the loss shown is the training loss")
        self.model.train()
        tokens_per_step = cfg.batch_size * cfg.seq_length
        pending: list[torch.Tensor] = []  # losses not yet fetched: one GPU sync per few steps, not per step
        tick, tick_step = time.perf_counter(), self.step
        speed, last_loss = 0.0, float("nan")
        with tqdm(total=cfg.iters, initial=self.step, disable=not progress, unit="it", dynamic_ncols=True,
                  desc="train") as bar, stop_on_sigint(stop):  # the bar is closed even when training fails
            while self.step < cfg.iters and not stop.is_set():
                pending.append(self.train_step())
                save_now = self.step % cfg.save_freq == 0 or self.step == cfg.iters
                if len(pending) >= 10 or save_now or stop.is_set():
                    values = torch.stack(pending).tolist()
                    pending.clear()
                    if not all(map(math.isfinite, values)):
                        raise ZhrnnError(
                            f"the loss became NaN or infinite near step {self.step}; lower --learning-rate "
                            f"(the last checkpoint, if any, is untouched)"
                        )
                    result.losses.extend(values)
                    last_loss = values[-1]
                    now = time.perf_counter()
                    speed = (self.step - tick_step) * tokens_per_step * self.chars_per_token / max(now - tick, 1e-9)
                    tick, tick_step = now, self.step
                    bar.set_postfix(loss=f"{last_loss:.3f}", chars_s=f"{speed:,.0f}", refresh=False)
                bar.update(1)
                if save_now:
                    record = self.checkpoint_and_sample(last_loss, speed)
                    result.val_bpc = record["val_bpc"]
                    if on_save:
                        on_save(record)
            if stop.is_set() and self.step < cfg.iters:
                self.save()
                result.interrupted = True
        result.step = self.step
        return result


def prepare_run(corpus_paths, options: dict, resume: str | Path | bool | None = None) -> Trainer:
    """Build a Trainer for a new run, or for continuing one (resume: a checkpoint, a run
    directory, or True for the newest run on this corpus)."""
    if isinstance(corpus_paths, (str, Path)):
        corpus_paths = [corpus_paths]
    if not corpus_paths:
        raise ConfigError("no training text given")
    if not resume:
        base = None
        if options.get("init_from"):
            base = checkpoint.load(shipped.resolve(options["init_from"]))
            # the architecture is the model's; only dropout may change
            shape = {k: v for k, v in base["model_config"].items() if k not in ("vocab_size", "dropout")}
            changed = sorted(k for k in shape if k in options and options[k] != shape[k])
            if changed:
                raise ConfigError(f"--init-from keeps the model's architecture; cannot change {', '.join(changed)}")
            options = {**shape, "dropout": base["model_config"].get("dropout", 0.1), **options}
            if "level" in base.get("train_config", {}):  # a word-level model goes on at word level
                options.setdefault("level", base["train_config"]["level"])
        corpus_cfg, model_cfg, cfg = split_options(options)
        run_dir = Path(cfg.out_dir) if cfg.out_dir else None
        if run_dir and (run_dir / checkpoint.FILENAME).exists():
            raise ConfigError(f"{run_dir} already has a checkpoint; continue it with --resume or choose another --out-dir")
        return Trainer(corpus_paths, corpus_cfg, model_cfg, cfg, run_dir=run_dir, base=base)

    path = rundir.find_resume(corpus_paths) if resume is True else checkpoint.resolve(resume)
    state = checkpoint.load(path)
    if any(k not in state for k in ("optimizer", "rng", "step", "corpus", "train_config")):
        raise ConfigError(f"cannot resume from {path}: it holds no training state (a model for sampling only)")
    fixed = {**state.get("corpus_config", {}), **state["model_config"], **state["train_config"]}
    changed = sorted(k for k, v in options.items() if k not in RESUMABLE and fixed.get(k) != v)
    if changed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
    merged = {**fixed, "out_dir": None, **{k: v for k, v in options.items() if k in RESUMABLE}}
    corpus_cfg, model_cfg, cfg = split_options(merged)
    # Continue in place only from a run's own ckpt.pt; from any other file (a backup, a shipped
    # model) or with --out-dir, write elsewhere so no other checkpoint is overwritten.
    if cfg.out_dir:
        run_dir = Path(cfg.out_dir)
        if run_dir.resolve() != path.parent.resolve() and (run_dir / checkpoint.FILENAME).exists():
            raise ConfigError(f"{run_dir} already has a checkpoint; choose another --out-dir")
    else:
        run_dir = path.parent if path.name == checkpoint.FILENAME else None
    return Trainer(corpus_paths, corpus_cfg, model_cfg, cfg, state=state, run_dir=run_dir)


def train(corpus_paths, resume=None, progress: bool = True, on_save=None, **options) -> TrainResult:
    """Train (or resume) a model on text files; options are the fields of CorpusConfig,
    ModelConfig and TrainConfig, e.g. train("诗.txt", hidden_size=512, iters=5000)."""
    return prepare_run(corpus_paths, options, resume).run(progress=progress, on_save=on_save)
