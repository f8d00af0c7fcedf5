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
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import checkpoint, shipped
from . import rundir
from ..text.pipeline import CorpusConfig, CorpusInfo
from .batches import Batches, eval_windows, split_ids
from .distributed import Dist, setup
from .encoded import encode_corpus
from ..errors import ConfigError, CorpusError, DistributedError, ZhrnnError
from .finetune import extend_tokenizer, grow_state
from ..generation import SampleConfig, sample
from ..generation.decoder import resolve_start
from ..model import CharRNN, ModelConfig, resolve_device
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # the classic char-rnn knobs (names of the Theano GRU script in comments)
    batch_size: int = 32  # the global batch: under torchrun each of N processes takes batch_size / N
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
    cache_dir: str | None = None  # encoded-text cache (default $ZHRNN_CACHE or ~/.cache/zhrnn)

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
RESUMABLE = {"iters", "save_freq", "start", "sample_len", "sample_temperature", "device", "amp", "eval_tokens", "out_dir",
             "cache_dir"}
# Options that may differ between the processes of one torchrun training (only rank 0 writes).
LOCAL = {"out_dir", "cache_dir"}


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
    """Owns one run: corpus, tokenizer, model, optimizer and their states."""

    def __init__(self, corpus_paths, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, cfg: TrainConfig,
                 state: dict | None = None, run_dir: Path | None = None, base: dict | None = None,
                 dist: Dist | None = None):
        """state: a checkpoint to resume; base: a model to start from (--init-from); dist: the
        processes of a torchrun training (default: this one alone)."""
        self.corpus_paths = [str(p) for p in corpus_paths]
        self.corpus_cfg, self.cfg = corpus_cfg, cfg
        self.dist = dist = dist or Dist()
        if cfg.batch_size % dist.world:  # before the text is read
            raise DistributedError(f"--batch-size {cfg.batch_size} (the global batch) does not split evenly over "
                                   f"{dist.world} processes; use a multiple of {dist.world}")
        self.device = resolve_device(cfg.device)  # before reading the text: a wrong --device fails fast
        if dist.active and self.device.type == "cuda":
            if dist.local_world > torch.cuda.device_count():
                raise DistributedError(f"{dist.local_world} processes on this machine but {torch.cuda.device_count()} "
                                       "GPU(s): start one process per GPU (--nproc-per-node)")
            self.device = torch.device("cuda", torch.cuda.current_device())  # this process's own GPU
        # the same options everywhere (named if not), before minutes of preparing the text
        settings = {**asdict(corpus_cfg), **{k: v for k, v in asdict(model_cfg).items() if k != "vocab_size"},
                    **{k: v for k, v in asdict(cfg).items() if k not in LOCAL}}
        dist.agree("settings", settings, "start every machine with the same options")
        known = state or base
        known_labels = known["tokenizer"].get("labels") if known else None  # label tokens stay as they were

        def choose(built: Tokenizer, info: CorpusInfo) -> Tokenizer:
            if base is not None:
                base_tokenizer = Tokenizer.from_dict(base["tokenizer"])
                if base_tokenizer.script != info.script and "unknown" not in (base_tokenizer.script, info.script):
                    log.warning("--init-from: the model learned %s text and this text is %s; consider --convert %s",
                                base_tokenizer.script, info.script, "t2s" if base_tokenizer.script == "simplified" else "s2t")
                return extend_tokenizer(base_tokenizer, built, info.labels)
            if state is not None:
                # The checkpoint's vocabulary stays; the text may change as long as it brings no token
                # that a fresh run would have learned (those would silently train as <unk>).
                tokenizer = Tokenizer.from_dict(state["tokenizer"])
                new = [t for t in built.vocab if t not in tokenizer.index]
                if new:
                    raise CorpusError(
                        f"--resume: the text has {len(new)} token(s) the checkpoint's vocabulary lacks "
                        f"(e.g. {''.join(new[:5])}); resume with the text the run was trained on, or start a new run"
                    )
                return tokenizer
            return built

        def encode():
            return encode_corpus(self.corpus_paths, corpus_cfg, cfg.level, cfg.min_count, cfg.max_vocab, choose,
                                 labels=known_labels, cache=cfg.cache_dir, shared=dist.active)

        # One process per machine prepares the encoded text; the others map what it wrote.
        data = dist.from_local_main(encode, then=encode)
        dist.agree("text", data.digest, "every machine needs the same text files (same bytes) and text options")
        self.tokenizer, self.corpus, self.cached = data.tokenizer, data.info, data.cached
        self.chars_per_token = data.info.chars / len(data.ids)  # 1 at char level; for speed in chars/s
        self.split = split_ids(data.ids, cfg.seq_length, cfg.val_fraction)
        resolve_start(cfg.start, self.tokenizer)  # refuse an unknown start character before training

        self.amp = amp_dtype(cfg.amp, self.device)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 for what stays in float32

        model_cfg.vocab_size = len(self.tokenizer)
        model_cfg = model_cfg.resolved(reserved=len(self.tokenizer.labels))  # labels sit before the frequent tokens
        torch.manual_seed(cfg.seed)
        self.model = CharRNN(model_cfg)
        self.model_cfg = self.model.config  # output and cutoffs made concrete: what the checkpoint keeps
        if base is not None:
            self.model.load_state_dict(grow_state(base["model"], self.model))
        self.model.to(self.device)
        # What trains: under torchrun, DDP averages the gradients over processes in backward().
        self.net = self.model
        if dist.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # an adaptive output's clusters get no gradient in a step whose targets miss them
            unused = self.model_cfg.output == "adaptive"
            self.net = dist.guard("starting DDP", lambda: DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=unused))
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate, betas=(0.9, 0.99),
        )
        # fp16 needs loss scaling; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.batches = Batches(self.split.train, cfg.batch_size, cfg.seq_length, self.device, cfg.seed,
                               rank=dist.rank, world=dist.world)
        self.char_len = torch.from_numpy(self.tokenizer.char_lengths()).to(self.device)  # (V,)
        self.step, self.best_val = 0, None
        if state is not None:
            self._restore(state)
        self._seed_dropout()

        def make_run_dir() -> Path:
            path = run_dir or rundir.new_run_dir(self.corpus_paths)
            path.mkdir(parents=True, exist_ok=True)  # an unusable --out-dir fails here, before training
            return path

        self.run_dir = dist.from_main(make_run_dir)  # rank 0 writes; the others know where
        self.ckpt_path = self.run_dir / checkpoint.FILENAME

    def _seed_dropout(self) -> None:
        """Each process of a torchrun training draws its own dropout masks (rank 0 keeps the
        single-process stream, so one process trains as it always did)."""
        if self.dist.rank:
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + self.step)  # CPU and CUDA generators

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
                       "script": self.corpus.script, "tokens": int(len(self.split.train)), "processes": self.dist.world},
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
        """Every process checks (their weights are equal, so they stop alike); rank 0 writes."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise ZhrnnError(f"the weights became NaN or infinite at step {self.step}; nothing was saved "
                             "(the last checkpoint is untouched); lower --learning-rate")
        if self.dist.main:
            checkpoint.save(self.state(), self.ckpt_path)
        return self.ckpt_path

    # --- steps ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", net=None) -> torch.Tensor:
        """Cross-entropy in nats of predicting y (B, T) from x (B, T); the softmax in float32."""
        with self._autocast():
            nats, _ = (net or self.model)(x, targets=y)  # (B*T,)
        return nats.mean() if reduction == "mean" else nats

    def train_step(self) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        loss = self._loss(*self.batches.next(), net=self.net)
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
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # nats, characters
        for window in eval_windows(self.split.val, self.cfg.batch_size, self.cfg.seq_length, self.cfg.eval_tokens,
                                   rank=self.dist.rank, world=self.dist.world):
            window = window.to(self.device)  # (b, T+1)
            length = self.char_len[window[:, 1:]].flatten()  # (b*T,) characters each target stands for
            # a label token is not text: its prediction is not counted (so BPC compares with unlabelled runs)
            totals[0] += (self._loss(window[:, :-1], window[:, 1:], reduction="none") * (length > 0)).sum()
            totals[1] += length.sum()
        self.model.train()
        nats, chars = self.dist.all_sum(totals).tolist()
        return nats / chars / math.log(2)

    def sample(self) -> str:
        cfg = SampleConfig(length=self.cfg.sample_len, temperature=self.cfg.sample_temperature,
                           seed=self.cfg.seed + self.step)  # its own generator: training RNG untouched
        return sample(self.model, self.tokenizer, self.cfg.start, cfg, device=self.device)[0]

    def checkpoint_and_sample(self, train_loss: float, speed: float) -> dict:
        """Every process evaluates its share; rank 0 alone saves, samples and logs."""
        val = self.evaluate()
        if val is not None and (self.best_val is None or val < self.best_val):
            self.best_val = val
        self.save()
        record = {"step": self.step, "train_loss": round(train_loss, 5), "val_bpc": None if val is None else round(val, 5),
                  "lr": lr_at(self.step - 1, self.cfg), "chars_per_s": round(speed), "time": time.time()}
        if not self.dist.main:
            return record
        text = self.sample()
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
                f"{self.corpus.script}{cached}), vocabulary {len(self.tokenizer)}, {m.cell.upper()} {m.num_layers}x{m.hidden_size} ({m.output} softmax), "
                f"{self.model.num_parameters():,} params, on {where}{amp}")

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
        tokens_per_step = cfg.batch_size * cfg.seq_length  # the global batch, on all processes together
        # Losses are fetched (one GPU sync) every few steps, not every step. Under torchrun that is
        # also where the processes agree to stop (Ctrl-C, SIGTERM): each step on CPUs, where a
        # step is slow and the check cheap.
        sync_every = 1 if self.dist.active and self.device.type == "cpu" else 10
        pending: list[torch.Tensor] = []
        tick, tick_step = time.perf_counter(), self.step
        speed, last_loss, agreed_stop = 0.0, float("nan"), False

        def stopping() -> bool:  # one process stops as soon as it is told to; several where they agreed
            return agreed_stop or (not self.dist.active and stop.is_set())

        with tqdm(total=cfg.iters, initial=self.step, disable=not progress, unit="it", dynamic_ncols=True,
                  desc="train") as bar, stop_on_signals(stop):  # the bar is closed even when training fails
            while self.step < cfg.iters and not stopping():
                pending.append(self.dist.guard("training", self.train_step))
                save_now = self.step % cfg.save_freq == 0 or self.step == cfg.iters
                if len(pending) >= sync_every or save_now or stopping():
                    # mean loss over processes, and whether any of them was told to stop
                    both = torch.cat([torch.stack(pending).float(), torch.tensor([float(stop.is_set())], device=self.device)])
                    values = self.dist.all_sum(both).tolist()
                    agreed_stop = values.pop() > 0
                    values = [v / self.dist.world for v in values]
                    pending.clear()
                    if not all(map(math.isfinite, values)):
                        raise ZhrnnError(
                            f"the loss became NaN or infinite near step {self.step}; lower --learning-rate "
                            f"(the last checkpoint, if any, is untouched)"
                        )
                    result.losses.extend(values)
                    last_loss = values[-1]
                    if self.step - tick_step >= 10 or save_now:  # over several steps: a steady figure
                        now = time.perf_counter()
                        speed = (self.step - tick_step) * tokens_per_step * self.chars_per_token / max(now - tick, 1e-9)
                        tick, tick_step = now, self.step
                    bar.set_postfix(loss=f"{last_loss:.3f}", chars_s=f"{speed:,.0f}", refresh=False)
                bar.update(1)
                if save_now:
                    record = self.checkpoint_and_sample(last_loss, speed)
                    tick = time.perf_counter()  # the speed is of training: evaluation and saving excluded
                    result.val_bpc = record["val_bpc"]
                    if on_save:
                        on_save(record)
            if stopping() and self.step < cfg.iters:
                self.save()
                result.interrupted = True
        result.step = self.step
        return result


def refuse_other_checkpoint(run_dir: Path, advice: str) -> None:
    if (run_dir / checkpoint.FILENAME).exists():
        raise ConfigError(f"{run_dir} already has a checkpoint; {advice}")


def prepare_run(corpus_paths, options: dict, resume: str | Path | bool | None = None, dist: Dist | None = None) -> Trainer:
    """Build a Trainer for a new run, or for continuing one (resume: a checkpoint, a run
    directory, or True for the newest run on this corpus). Under torchrun, rank 0 finds and
    reads the checkpoint and hands it to the others: only its machine needs the run directory."""
    dist = dist or Dist()
    if isinstance(corpus_paths, (str, Path)):
        corpus_paths = [corpus_paths]
    if not corpus_paths:
        raise ConfigError("no training text given")
    if not resume:
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
        corpus_cfg, model_cfg, cfg = split_options(options)
        run_dir = Path(cfg.out_dir) if cfg.out_dir else None
        if run_dir:
            dist.from_main(lambda: refuse_other_checkpoint(run_dir, "continue it with --resume or choose another --out-dir"))
        return Trainer(corpus_paths, corpus_cfg, model_cfg, cfg, run_dir=run_dir, base=base, dist=dist)

    def find() -> tuple[Path, dict]:
        path = rundir.find_resume(corpus_paths) if resume is True else checkpoint.resolve(resume)
        return path, checkpoint.load(path)

    path, state = dist.from_main(find)
    if any(k not in state for k in ("optimizer", "rng", "step", "corpus", "train_config")):
        raise ConfigError(f"cannot resume from {path}: it holds no training state (a model for sampling only)")
    model_cfg = asdict(ModelConfig.from_dict(state["model_config"]))
    fixed = {**state.get("corpus_config", {}), **model_cfg, **state["train_config"]}
    changed = sorted(k for k, v in options.items() if k not in RESUMABLE and fixed.get(k) != v)
    if changed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
    merged = {**fixed, "out_dir": None, "cache_dir": None, **{k: v for k, v in options.items() if k in RESUMABLE}}
    corpus_cfg, model_cfg, cfg = split_options(merged)
    # Continue in place only from a run's own ckpt.pt; from any other file (a backup, a shipped
    # model) or with --out-dir, write elsewhere so no other checkpoint is overwritten.
    if cfg.out_dir:
        run_dir = Path(cfg.out_dir)
        if run_dir.resolve() != path.parent.resolve():
            dist.from_main(lambda: refuse_other_checkpoint(run_dir, "choose another --out-dir"))
    else:
        run_dir = path.parent if path.name == checkpoint.FILENAME else None
    return Trainer(corpus_paths, corpus_cfg, model_cfg, cfg, state=state, run_dir=run_dir, dist=dist)


def fit(corpus_paths, resume=None, progress: bool = True, on_save=None, **options) -> TrainResult:
    """Train (or resume) a model on text files; options are the fields of CorpusConfig,
    ModelConfig and TrainConfig, e.g. train("诗.txt", hidden_size=512, iters=5000).
    Under torchrun, the processes train one model together (see zhrnn.distributed)."""
    dist = setup()
    try:
        return prepare_run(corpus_paths, options, resume, dist).run(progress=progress and dist.main, on_save=on_save)
    finally:
        dist.close()
