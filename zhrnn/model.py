"""CharRNN: embedding -> GRU/LSTM/RNN x N (fused cuDNN / oneDNN kernels) -> linear over the vocabulary."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


@dataclass
class ModelConfig:
    vocab_size: int = 0  # set from the tokenizer
    cell: str = "gru"
    num_layers: int = 2
    hidden_size: int = 256
    embedding_size: int = 128
    dropout: float = 0.1

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"--cell must be one of {', '.join(CELLS)}, not {self.cell!r}")
        for name in ("num_layers", "hidden_size", "embedding_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("--dropout must be in [0, 1)")


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        # One fused multi-layer module, not a Python loop over cells: this is what makes cuDNN
        # (and oneDNN on CPU) fast. Its dropout acts between layers only.
        self.rnn = CELLS[config.cell](
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, idx: torch.Tensor, hidden=None):
        """idx: (B, T) token ids; hidden: the state carried from the previous call, or None for zeros.

        Returns logits (B, T, V) and the new hidden state ((L, B, H), or a pair of them for LSTM).
        """
        x = self.drop(self.embedding(idx))  # (B, T, E)
        out, hidden = self.rnn(x, hidden)  # (B, T, H)
        return self.head(self.drop(out)), hidden  # (B, T, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
