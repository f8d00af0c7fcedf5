"""Encoded corpus -> train/validation ids -> (B, T) batches on the device."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import CorpusError
from .tokenizer import Tokenizer


def encode_ids(text: str, tokenizer: Tokenizer) -> np.ndarray:
    """Token ids as the smallest unsigned type that holds the vocabulary (uint16 for any CJK set)."""
    ids = tokenizer.encode(text)
    return ids.astype(np.uint16 if len(tokenizer) < 2**16 else np.uint32)


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray | None  # None when the text is too short to spare a validation part


def split_ids(ids: np.ndarray, seq_length: int, val_fraction: float) -> Split:
    """The last val_fraction of the text is held out (contiguous, so no sequence leaks across)."""
    need = seq_length + 1
    if len(ids) < need + 1:
        raise CorpusError(
            f"the text has {len(ids)} tokens, fewer than --seq-length {seq_length} + 2; "
            "use a longer text or a smaller --seq-length"
        )
    n_val = int(len(ids) * val_fraction)
    if n_val < need or len(ids) - n_val < need + 1:
        return Split(ids, None)
    return Split(ids[:-n_val], ids[-n_val:])


class Batches:
    """Random windows of the training ids, drawn with its own generator so runs resume exactly."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int, device: torch.device, seed: int):
        self.ids = torch.from_numpy(ids.astype(np.int32))  # (N,); widened per batch, not for the whole text
        self.batch_size, self.seq_length, self.device = batch_size, seq_length, device
        self.generator = torch.Generator().manual_seed(seed)
        self.offsets = torch.arange(seq_length + 1)  # (T+1,)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: (B, T) long tensors on the device; y is x shifted by one token."""
        starts = torch.randint(len(self.ids) - self.seq_length, (self.batch_size,), generator=self.generator)
        window = self.ids[starts[:, None] + self.offsets].long()  # (B, T+1)
        window = window.to(self.device, non_blocking=True)
        return window[:, :-1], window[:, 1:]

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def eval_windows(ids: np.ndarray, batch_size: int, seq_length: int, max_tokens: int):
    """Fixed, non-overlapping (B, T+1) windows over the validation ids: the same every evaluation."""
    n = min((len(ids) - 1) // seq_length, max(1, max_tokens // seq_length))
    data = torch.from_numpy(ids.astype(np.int64))
    windows = torch.stack([data[i * seq_length : i * seq_length + seq_length + 1] for i in range(n)])  # (n, T+1)
    return windows.split(batch_size)
