"""A reference a user could pick instead of zhrnn (issue 29): a small character-level causal
transformer of nanoGPT's CPU shape (4 layers, 4 heads, 128 wide, context 64, batch 12, AdamW
1e-3 with warmup and a cosine over the budget), trained for a wall-clock budget on the very split
`zhrnn train` makes of the text and scored on the very validation targets its log scores.

    python benchmarks/transformer.py 全唐诗.txt --time 5m [--convert t2s]

The text, vocabulary, split and evaluation streams are zhrnn's own (encode_corpus, split_ids,
Validation: 32 stretches spread over the held-out paragraphs, 100,000 targets). The transformer
sees at most 64 tokens: each stream is read in windows of 64 moving 32 at a time, and each
target is scored once, with at least 32 tokens before it (fewer at a stream's start), where
zhrnn's network carries its state along the whole stream. Figures: val_bpc and val_text_bpc as
the log's (Validation.bpc). Our own code, written from the published shape, not nanoGPT's.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhrnn.text.pipeline import CorpusConfig  # noqa: E402
from zhrnn.training.encoded import encode_corpus  # noqa: E402
from zhrnn.training.plan import TrainConfig, parse_duration  # noqa: E402
from zhrnn.training.split import split_ids  # noqa: E402
from zhrnn.training.validation import Validation  # noqa: E402

LAYERS, HEADS, WIDTH, CONTEXT, BATCH = 4, 4, 128, 64, 12
LEARNING_RATE, MIN_RATE, WARMUP, WEIGHT_DECAY, DROPOUT = 1e-3, 1e-4, 100, 0.1, 0.0
STRIDE = CONTEXT // 2  # evaluation: windows of CONTEXT, each scoring its last STRIDE targets


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(WIDTH, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, HEADS, C // HEADS).transpose(1, 2) for t in (q, k, v))  # (B, h, T, C/h)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=DROPOUT if self.training else 0.0)
        x = x + self.proj(att.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab_size, WIDTH), nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.Sequential(*(Block() for _ in range(LAYERS)))
        self.ln = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, vocab_size, bias=False)
        self.head.weight = self.tokens.weight  # tied, as nanoGPT
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T <= CONTEXT) -> logits (B, T, V)."""
        h = self.tokens(x) + self.positions(torch.arange(x.size(1), device=x.device))
        return self.head(self.ln(self.blocks(h)))


def rate(step: int, fraction: float) -> float:
    """Warmup over WARMUP steps, then a cosine from LEARNING_RATE to MIN_RATE over the budget."""
    if step < WARMUP:
        return LEARNING_RATE * (step + 1) / WARMUP
    return MIN_RATE + 0.5 * (LEARNING_RATE - MIN_RATE) * (1 + math.cos(math.pi * min(fraction, 1.0)))


@torch.no_grad()
def stream_nats(model: TinyGPT, rows: torch.Tensor) -> torch.Tensor:
    """Nats (s, L) of each target of rows (s, L+1), each scored once from the window that ends at it."""
    model.eval()
    L = rows.size(1) - 1
    out = torch.zeros(rows.size(0), L, dtype=torch.float64)
    for end in range(STRIDE, L + STRIDE, STRIDE):  # targets end-STRIDE .. end-1 (inputs up to end-1)
        end = min(end, L)
        begin = max(0, end - CONTEXT)
        x, y = rows[:, begin:end], rows[:, begin + 1 : end + 1]  # (s, t)
        nats = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten(), reduction="none").view(y.shape)
        first = max(0, end - STRIDE) - begin  # this window scores its targets from here on
        out[:, begin + first : end] = nats[:, first:].double()
    model.train()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--time", default="5m", help="the training budget (as zhrnn train --time)")
    ap.add_argument("--convert", default=None, help="OpenCC conversion, as zhrnn train --convert")
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    cfg = TrainConfig()  # zhrnn train's defaults: its split, its evaluation streams
    corpus_cfg = replace(CorpusConfig(), convert=args.convert)
    text = encode_corpus(args.corpus, corpus_cfg, cfg.level, cfg.min_count, cfg.max_vocab, lambda built, info: built)
    split = split_ids(text.ids, cfg.seq_length, cfg.val_fraction, cfg.split, text.tokenizer)
    train = torch.from_numpy(np.asarray(split.train, dtype=np.int64))
    validation = Validation(split.val, cfg.seq_length, cfg.eval_tokens, text.tokenizer, torch.device("cpu"))
    model = TinyGPT(len(text.tokenizer))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                                  lr=LEARNING_RATE, betas=(0.9, 0.99))
    budget, generator = parse_duration(args.time), torch.Generator().manual_seed(args.seed)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {len(text.tokenizer):,}, "
          f"{len(train):,} training tokens", flush=True)
    began, step = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - began) < budget:
        for group in optimizer.param_groups:
            group["lr"] = rate(step, elapsed / budget)
        starts = torch.randint(0, len(train) - CONTEXT - 1, (BATCH,), generator=generator)
        window = torch.stack([train[s : s + CONTEXT + 1] for s in starts.tolist()])  # (B, CONTEXT+1)
        logits = model(window[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
    val, text_val = validation.bpc(stream_nats(model, validation.rows))
    print(f"{step:,} steps in {budget:.0f} s ({step * BATCH * CONTEXT / budget:,.0f} tokens/s): "
          f"val_bpc {val:.3f}, val_text_bpc {text_val:.3f}", flush=True)


if __name__ == "__main__":
    main()
