"""A run built from its plan: the settings agreed across processes, the text encoded, the model,
DDP wrapper, optimizer and batches made, a resumed state restored, the run directory created.
prepare_run (plan, then build) and fit are how a training starts."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from . import encoded, rundir
from .batches import Batches, Streams
from .distributed import Dist, setup
from .finetune import grow_state
from .plan import LOCAL, Resume, RunPlan, TrainConfig, auto_dropout, auto_layers, new_schedule, passes, plan_run
from .schedule import SECONDS
from .split import Split, split_ids
from .trainer import Trainer, TrainResult
from ..counts import COUNTED_TOKENS, Counts
from ..generation.request import resolve_start
from ..model import CharRNN, map_hidden

log = logging.getLogger(__name__)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        # bf16 where the GPU computes in it (compute capability 8.0 on: Ampere, Hopper), asked of
        # the training device itself (torch.cuda.is_bf16_supported() asks the current device and
        # says yes where bf16 is only emulated, V100 and T4), and where cuDNN runs RNNs in it
        # (from 9.13); elsewhere fp16 with loss scaling is the fast path
        cudnn = torch.backends.cudnn.version() or 0
        native = torch.cuda.get_device_capability(device) >= (8, 0)
        return torch.bfloat16 if native and cudnn >= 91300 else torch.float16
    return torch.float16 if amp == "fp16" else torch.bfloat16


def build_trainer(plan: RunPlan, dist: Dist | None = None) -> Trainer:
    """The Trainer of a plan. Every process of a torchrun training calls it, with the dist the
    plan was made with (its batch split and device were checked for those processes): they agree
    on the settings and the text, and rank 0 alone creates the run directory."""
    dist = dist or Dist()
    cfg, device = plan.cfg, plan.device
    # the same options everywhere (named if not), before minutes of preparing the text
    settings = {**asdict(plan.corpus_cfg), **{k: v for k, v in asdict(plan.model_cfg).items() if k != "vocab_size"},
                **{k: v for k, v in asdict(cfg).items() if k not in LOCAL}}
    dist.agree("settings", settings, "start every machine with the same options")

    def encode() -> encoded.Encoded:
        return encoded.encode_corpus(plan.corpus_paths, plan.corpus_cfg, cfg.level, cfg.min_count, cfg.max_vocab,
                                     plan.tokenizer_for, labels=plan.labels, cache=cfg.cache_dir, shared=dist.active)

    # One process per machine prepares the encoded text; the others map what it wrote.
    text = dist.from_local_main(encode, then=encode)
    dist.agree("text", text.digest, "every machine needs the same text files (same bytes) and text options")
    # a resumed run's split is the one it used (its checkpoint's train_config keeps it: Trainer.state)
    split = split_ids(text.ids, cfg.seq_length, cfg.val_fraction, cfg.split, text.tokenizer)
    schedule = plan.schedule or new_schedule(cfg, len(split.train), fine_tune=plan.init_from is not None)
    resolve_start(cfg.start, text.tokenizer)  # refuse an unknown start character before training

    amp = amp_dtype(cfg.amp, device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what stays in float32

    tokenizer = text.tokenizer
    model_cfg = replace(plan.model_cfg, vocab_size=len(tokenizer))
    if model_cfg.num_layers is None:  # a new run given no --num-layers: by the size of its text
        model_cfg = replace(model_cfg, num_layers=auto_layers(len(split.train)))
        log.info("%d layer%s, as for a training text of %s tokens (--num-layers to choose)", model_cfg.num_layers,
                 "s" if model_cfg.num_layers > 1 else "", f"{len(split.train):,}")
    # a new run given no --dropout gets one for the passes it makes (a resumed one keeps its own);
    # under --time the Trainer chooses it with the rate, once the speed says how many steps the budget holds
    choose_dropout = model_cfg.dropout is None and schedule.unit == SECONDS
    if choose_dropout:  # until then, a short run's
        model_cfg = replace(model_cfg, dropout=auto_dropout(0))
    elif model_cfg.dropout is None:
        reads = passes(cfg, schedule.end, len(split.train))
        model_cfg = replace(model_cfg, dropout=auto_dropout(reads))
        log.info("dropout %.2g, as for the %.0f passes over the training text %d steps make (--dropout to choose)",
                 model_cfg.dropout, reads, schedule.end)
    model_cfg = model_cfg.resolved(reserved=len(tokenizer.labels))  # labels sit before the frequent tokens
    # right before the model: its initial weights (and the dropout masks after them) follow the seed alone
    torch.manual_seed(cfg.seed)
    model = CharRNN(model_cfg)
    if plan.init_from is not None:
        model.load_state_dict(grow_state(plan.init_from.model, model))
    model.to(device)
    # What trains: under torchrun, DDP averages the gradients over processes in backward().
    net = model
    if dist.active:
        ids = [device.index] if device.type == "cuda" else None
        # an adaptive output's clusters get no gradient in a step whose targets miss them
        unused = model.config.output_layer == "adaptive"
        net = dist.guard("starting DDP", lambda: DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=unused))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.0, betas=(0.9, 0.99),  # each step sets it (Schedule.rate)
    )
    # fp16 needs loss scaling; bf16 has float32's range and does not
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    if cfg.stateful:
        batches = Streams(split.train, cfg.batch_size, cfg.seq_length, device, rank=dist.rank, world=dist.world)
    else:
        batches = Batches(split.train, cfg.batch_size, cfg.seq_length, device, cfg.seed, rank=dist.rank, world=dist.world)

    step, best, elapsed, hidden = 0, None, 0.0, None
    if plan.resume is not None:
        restore(plan.resume, model, optimizer, scaler, batches, device)
        step, best, elapsed = plan.resume.step, plan.resume.best, plan.resume.elapsed
        if cfg.stateful and dist.world == 1:  # float32, whatever --device or --amp it was saved under
            hidden = map_hidden(plan.resume.hidden, lambda h: h.to(device, torch.float32))
        if plan.resume.fingerprint != text.info.fingerprint:
            log.warning("the corpus text changed since the checkpoint (same vocabulary); training goes on with the new text")
    seed_dropout(cfg, dist, step)

    def make_run_dir() -> Path:
        path = plan.run_dir or rundir.new_run_dir(plan.corpus_paths)
        path.mkdir(parents=True, exist_ok=True)  # an unusable --out-dir fails here, before training
        return path

    counts, weights = make_counts(cfg, plan.resume, split, len(tokenizer))
    run_dir = dist.from_main(make_run_dir)  # rank 0 writes; the others know where
    # the paragraph mode --paragraphs auto chose, kept: scoring and resuming read text as training did
    corpus_cfg = plan.corpus_cfg
    if corpus_cfg.paragraphs == "auto":
        corpus_cfg = replace(corpus_cfg, paragraphs=text.info.layout)
    return Trainer(corpus_paths=plan.corpus_paths, corpus_cfg=corpus_cfg, cfg=cfg, schedule=schedule, text=text,
                   split=split, model=model, net=net, optimizer=optimizer, scaler=scaler, batches=batches, device=device,
                   amp=amp, run_dir=run_dir, dist=dist, step=step, best=best, elapsed=elapsed, hidden=hidden,
                   counts=counts, weights=weights, choose_dropout=choose_dropout)


def make_counts(cfg: TrainConfig, resume: Resume | None, split: Split, vocab_size: int):
    """The counts mixed into the run's probabilities and their weights: a resumed run's own
    (counted from the same split), else counted now (every process counts the same), or none:
    --ngram off (so a run from before the counts), or auto with no held-out text to fit their
    weight on."""
    if resume is not None and resume.counts is not None:
        return Counts.from_state_dict(resume.counts), torch.as_tensor(resume.counts["weights"], dtype=torch.float64)
    order = cfg.ngram_order
    if order is None or (split.val is None and cfg.ngram == "auto"):
        return None, None
    began = time.perf_counter()
    counts = Counts.build(split.train[:COUNTED_TOKENS], vocab_size, order)  # a huge text: its first 30 M tokens
    log.debug("%d-gram counts of the training text: %s entries in %.1f s (--ngram off to leave them out)", order,
             f"{counts.num_entries():,}", time.perf_counter() - began)
    return counts, None


def restore(resume: Resume, model: CharRNN, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            batches: Batches | Streams, device: torch.device) -> None:
    """Weights, optimizer, loss scale and every random stream as the checkpoint left them, so
    the run goes on as if it had never stopped."""
    model.load_state_dict(resume.model)
    optimizer.load_state_dict(resume.optimizer)
    if resume.scaler:
        scaler.load_state_dict(resume.scaler)
    torch.set_rng_state(resume.rng["torch"])
    batches.set_state(resume.rng["batches"])
    if device.type == "cuda" and "cuda" in resume.rng:
        torch.cuda.set_rng_state(resume.rng["cuda"], device)


def seed_dropout(cfg: TrainConfig, dist: Dist, step: int) -> None:
    """Each process of a torchrun training draws its own dropout masks (rank 0 keeps the
    single-process stream, so one process trains as it always did)."""
    if dist.rank:
        torch.manual_seed(cfg.seed + 7919 * dist.rank + step)  # CPU and CUDA generators


def prepare_run(corpus_paths, options: dict, resume: str | Path | bool | None = None, dist: Dist | None = None) -> Trainer:
    """A Trainer for a new run, or for continuing one (resume: see plan_run)."""
    dist = dist or Dist()
    return build_trainer(plan_run(corpus_paths, options, resume, dist), dist)


def fit(corpus_paths, resume=None, progress: bool = True, on_save=None, **options) -> TrainResult:
    """Train (or resume) a model on text files; options are the fields of CorpusConfig,
    ModelConfig and TrainConfig, e.g. fit("诗.txt", hidden_size=512, iters=5000).
    Under torchrun, the processes train one model together (see zhrnn.training.distributed)."""
    dist = setup()
    try:
        return prepare_run(corpus_paths, options, resume, dist).run(progress=progress and dist.main, on_save=on_save)
    finally:
        dist.close()
