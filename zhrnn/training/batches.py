"""The ids of each side of the split (split.py) -> (B, T) training batches on the device (random
windows, or contiguous streams for stateful training), and the fixed validation streams."""
from __future__ import annotations

import numpy as np
import torch


class Batches:
    """Random windows of the training ids, drawn with its own generator so runs resume exactly.

    Under torchrun every process draws the same global batch of batch_size windows and keeps
    its own slice of it: together they train on exactly the batch one process would, and the
    generator's state means the same thing whatever the number of processes (so a run can be
    resumed with more or fewer of them).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int, device: torch.device, seed: int,
                 rank: int = 0, world: int = 1):
        if batch_size % world:  # the plan (plan.py) says so to the user before any text is read
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {world} processes")
        self.ids = ids  # (N,), possibly memory-mapped: read a window at a time, never as a whole
        self.batch_size, self.seq_length, self.device = batch_size, seq_length, device
        share = batch_size // world
        self.rows = slice(rank * share, (rank + 1) * share)
        self.generator = torch.Generator().manual_seed(seed)
        self.offsets = np.arange(seq_length + 1)  # (T+1,)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: (B/world, T) long tensors on the device; y is x shifted by one token."""
        starts = torch.randint(len(self.ids) - self.seq_length, (self.batch_size,), generator=self.generator)
        starts = starts[self.rows].numpy()  # (B/world,)
        window = torch.from_numpy(self.ids[starts[:, None] + self.offsets].astype(np.int64))  # (B/world, T+1)
        window = window.to(self.device, non_blocking=True)
        return window[:, :-1], window[:, 1:]

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


class Streams:
    """Contiguous streams for stateful training (truncated BPTT): the training ids cut into
    batch_size stretches, read seq_length tokens further at each step, so the trainer can carry
    each row's hidden state into the next step (detached). A character is then predicted from far
    more than one window of context, as at evaluation and sampling, and no step starts cold.

    Where a stream stands is a function of the step alone, so a resumed run reads on exactly;
    every pass over the text starts the streams afresh (fresh_at tells the trainer when to zero
    the state). Under torchrun each process reads its own rows of the global batch.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int, device: torch.device,
                 rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {world} processes")
        self.ids, self.seq_length, self.device = ids, seq_length, device
        share = batch_size // world
        stretch = (len(ids) - 1) // batch_size  # tokens of each stream
        self.steps_per_pass = max(1, stretch // seq_length)
        self.room = len(ids) - seq_length  # the possible window starts: a tiny text's streams wrap and overlap
        self.first = (np.arange(batch_size) * stretch)[rank * share : (rank + 1) * share]  # (B/world,)
        self.offsets = np.arange(seq_length + 1)  # (T+1,)
        self.step = 0

    def fresh_at(self, step: int) -> bool:
        """Whether the streams start a new pass at this step (the carried state is then dropped)."""
        return step % self.steps_per_pass == 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: (B/world, T) long tensors on the device, each row the continuation of its row in
        the step before (unless fresh_at). Each pass starts a little further on (by a prime number
        of tokens), so that on a text of only a few windows a stream each the same windows are
        not read over and over."""
        passes, step = divmod(self.step, self.steps_per_pass)
        starts = (self.first + passes * 7919 + step * self.seq_length) % self.room  # (B/world,)
        self.step += 1
        window = torch.from_numpy(self.ids[starts[:, None] + self.offsets].astype(np.int64))  # (B/world, T+1)
        window = window.to(self.device, non_blocking=True)
        return window[:, :-1], window[:, 1:]

    def state(self) -> torch.Tensor:
        return torch.tensor([self.step])

    def set_state(self, state: torch.Tensor) -> None:
        self.step = int(state[0])


EVAL_STREAMS = 32  # validation streams: a fixed number, so the figure does not depend on --batch-size
EVAL_PROTOCOL = f"{EVAL_STREAMS} streams, state carried"  # what a checkpoint's best figures were measured by


def stream_starts(n_ids: int, seq_length: int, max_tokens: int) -> tuple[np.ndarray, int]:
    """Where each validation stream begins in the validation ids, and how many targets it has:
    EVAL_STREAMS stretches (fewer on a short text) at even spacing over the whole part, so the
    figure covers held-out text from all through the corpus, max_tokens targets in all."""
    n = min(n_ids - 1, max_tokens)
    rows = max(1, min(EVAL_STREAMS, n // seq_length))
    length = n // rows
    spacing = (n_ids - 1) // rows  # >= length
    return np.arange(rows) * spacing, length


def eval_streams(ids: np.ndarray, seq_length: int, max_tokens: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """The validation streams, the same every evaluation: (s, L+1) of this process's rows, L
    targets each (stream_starts). They are read seq_length at a time with the hidden state
    carried, so every target is predicted from all of its stream before it (from a zero state
    the first characters of a window cost the shipped model ~0.9 bits more). Under torchrun each
    process takes every world-th row; the sums over the processes are those of one process."""
    starts, length = stream_starts(len(ids), seq_length, max_tokens)
    mine = [torch.from_numpy(np.asarray(ids[a : a + length + 1], dtype=np.int64)) for a in starts[rank::world]]
    return torch.stack(mine) if mine else torch.empty(0, length + 1, dtype=torch.int64)
