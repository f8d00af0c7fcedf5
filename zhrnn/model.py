"""CharRNN: embedding -> GRU/LSTM/RNN x N (fused cuDNN / oneDNN kernels) -> linear over the vocabulary."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' is the GPU when PyTorch sees one, else the CPU; anything else is checked here so a
    wrong --device is one clear message, not a failure deep inside PyTorch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: there are only {torch.cuda.device_count()} GPU(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("--device mps was asked for, but this machine has no usable Metal GPU")
    elif device.type != "cpu":
        raise ConfigError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


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
