"""Processes of one training: a single one, or many under torchrun (PyTorch DDP).

torchrun tells each process who it is through the environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE) and hosts the rendezvous; this module turns that into a `Dist` the trainer
asks "am I the writer?" and through which it agrees with the others. With one process every
method is a cheap no-op, so the trainer has one code path.

Conventions that keep N processes equal to one:
- rank 0 alone writes (run directory, checkpoints, samples, logs);
- a decision that changes control flow (stop now, a corpus that differs) is agreed on by a
  collective, so no process waits forever for one that went another way;
- a failed collective (a peer died) becomes one ZhrnnError that says so.
"""
from __future__ import annotations

import datetime
import re
import socket
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.distributed as tdist

from ..errors import ConfigError, DistributedError, PeerFailed, ZhrnnError
from .launch import Env, env  # noqa: F401 - who this process is: read with no torch (the CLI reads it first)

T = TypeVar("T")

# Preparing a 100M-character corpus on one process per machine while the others wait takes
# minutes: that wait (only) goes through a group with this long timeout. Training collectives
# keep PyTorch's default, so a peer lost on another machine is noticed within minutes.
PREPARE_TIMEOUT = datetime.timedelta(minutes=60)


def is_comm_failure(e: BaseException) -> bool:
    """A collective that failed because another process is gone (gloo, NCCL or the store)."""
    if isinstance(e, tdist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset", "Broken pipe", "gloo", "NCCL", "ProcessGroup")
    )


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    host: str = ""
    broken: bool = False  # a collective failed: the others are gone
    owned: bool = False  # this module started the process group (and so ends it)
    slow: object = None  # a gloo group with PREPARE_TIMEOUT, for waiting on the corpus

    @property
    def main(self) -> bool:
        """The one process that writes files and prints."""
        return self.rank == 0

    @property
    def local_main(self) -> bool:
        """The first process on this machine: prepares the machine's encoded corpus cache."""
        return self.local_rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    # --- collectives (all processes must call them, in the same order) -------------------------

    def guard(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (RuntimeError, tdist.DistError) as e:
            if not is_comm_failure(e):
                raise
            self.broken = True
            raise DistributedError(lost_contact(self, what, e)) from None

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over processes, in place (and returned)."""
        if self.active:
            self.guard("summing over processes", lambda: tdist.all_reduce(tensor))
        return tensor

    def any(self, flag: bool, slow: bool = False) -> bool:
        """True on every process when it is true on any (e.g. 'stop now'); slow: may wait long."""
        if not self.active:
            return flag
        group = self.slow if slow else None
        # a CPU tensor, unless the group can only reduce CUDA ones (an NCCL group the caller started)
        device = torch.device("cuda", torch.cuda.current_device()) if tdist.get_backend(group) == "nccl" else None
        t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
        self.guard("waiting for the other processes", lambda: tdist.all_reduce(t, group=group))
        return bool(t.item())

    def barrier(self) -> None:
        self.any(False)

    def gather(self, obj) -> list:
        """Every process's obj, in rank order, on every process."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        self.guard("exchanging settings", lambda: tdist.all_gather_object(out, obj))
        return out

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run fn on rank 0 and give its result to every process; a ZhrnnError raised by fn is
        raised on rank 0 and stops the others quietly (rank 0 prints it)."""
        failure, result = None, None
        if self.main:
            try:
                result = fn()
            except (ZhrnnError, OSError) as e:  # OSError: an unwritable run directory, ...
                failure = e
        if not self.active:
            if failure is not None:
                raise failure
            return result
        box = [result, failure is not None]  # the failure itself stays here: rank 0 prints it
        self.guard("receiving the run's state", lambda: tdist.broadcast_object_list(box, src=0))
        if box[1]:
            if failure is not None:
                raise failure
            raise PeerFailed("rank 0 failed (its message is shown)")
        return box[0]

    def from_local_main(self, fn: Callable[[], T], then: Callable[[], T]) -> T:
        """fn on the first process of each machine (which may write files), then `then` on
        the other processes there once fn has finished everywhere (e.g. open what fn wrote).
        A failure anywhere stops every process; the one that failed says why."""
        result, failure = None, None
        for step, runs in ((fn, self.local_main), (then, not self.local_main)):
            if runs:
                try:
                    result = step()
                except (ZhrnnError, OSError) as e:
                    failure = e
            if self.any(failure is not None, slow=True):
                if failure is not None:
                    raise failure
                raise PeerFailed("another process failed while preparing the text (its message is shown)")
        return result

    def agree(self, what: str, value, advice: str) -> None:
        """Every process must hold the same value (a corpus digest, a dict of settings)."""
        values = self.gather((value, self.host))
        differ = [r for r, (v, _) in enumerate(values) if v != values[0][0]]
        if not differ:
            return
        (mine, host0), (theirs, host) = values[0], values[differ[0]]
        if isinstance(mine, dict):  # name the settings, not two whole dicts
            keys = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            mine = ", ".join(f"{k}={mine.get(k)!r}" for k in keys)
            theirs = ", ".join(f"{k}={theirs.get(k)!r}" for k in keys)
        more = f" ({len(differ)} processes differ from rank 0)" if len(differ) > 1 else ""
        raise DistributedError(f"the {what} differs between processes: rank 0 on {host0} has {mine}, "
                               f"rank {differ[0]} on {host} has {theirs}{more}; {advice}")

    def close(self) -> None:
        """Leave the process group; after a lost peer there is nothing to leave politely (and
        tearing it down can abort the process), so it is left to the process's exit."""
        if self.owned and tdist.is_initialized() and not self.broken:
            tdist.destroy_process_group()


def lost_contact(d: Dist, what: str, e: BaseException) -> str:
    # "[.../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:3980. This is ..."
    reason = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip()).split(". ")[0].splitlines()[0] if str(e).strip() else ""
    return (f"rank {d.rank} lost contact with the other processes while {what} ({reason[:120] or type(e).__name__}: "
            "another process died or was stopped); checkpoints already saved are intact, continue with --resume")


def setup() -> Dist:
    """Join the process group torchrun set up for this process; a single process without it.
    Collectives on CPU tensors go through gloo, on CUDA tensors through NCCL. A group that the
    caller already started (zhrnn.train() in a user's own DDP script) is used as it is."""
    e = env()
    if e.world <= 1:
        return Dist()
    if not tdist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; train with one process")
    d = Dist(rank=e.rank, world=e.world, local_rank=e.local_rank, local_world=e.local_world, host=socket.gethostname())
    if not tdist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and tdist.is_nccl_available() else "gloo"
        d.guard("joining the process group", lambda: tdist.init_process_group(backend))
        d.owned = True
    d.slow = d.guard("joining the process group", lambda: tdist.new_group(backend="gloo", timeout=PREPARE_TIMEOUT))
    return d
