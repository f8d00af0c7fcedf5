"""The two baselines zhrnn's training speed is measured against (benchmarks/speed.py).

Both are the model of most char-RNN tutorials: embedding 256 -> 2 GRU layers of 512 -> a full
softmax over the vocabulary, trained with Adam at 2e-3 on batches of 64 windows of 100 tokens.
  GRUCellLoop  the tutorial way: one nn.GRUCell per layer, a Python loop over the time steps
  FusedGRU     the same network with one fused nn.GRU over the whole sequence
Each returns the loss in nats of every target, like zhrnn's CharRNN(x, targets=y).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBEDDING, HIDDEN, LAYERS = 256, 512, 2
BATCH, SEQ, LEARNING_RATE = 64, 100, 2e-3


class GRUCellLoop(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING)
        self.cells = nn.ModuleList(nn.GRUCell(EMBEDDING if i == 0 else HIDDEN, HIDDEN) for i in range(LAYERS))
        self.head = nn.Linear(HIDDEN, vocab_size)

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x)  # (B, T, E)
        hidden = [emb.new_zeros(x.shape[0], HIDDEN) for _ in self.cells]
        outputs = []
        for t in range(x.shape[1]):
            inp = emb[:, t]  # (B, E)
            for i, cell in enumerate(self.cells):
                hidden[i] = inp = cell(inp, hidden[i])  # (B, H)
            outputs.append(inp)
        logits = self.head(torch.stack(outputs, 1))  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")


class FusedGRU(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING)
        self.rnn = nn.GRU(EMBEDDING, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, vocab_size)

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(x))  # (B, T, H)
        logits = self.head(out)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")


BASELINES = {"GRUCell loop": GRUCellLoop, "fused nn.GRU": FusedGRU}
