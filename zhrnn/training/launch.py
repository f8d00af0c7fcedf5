"""`zhrnn train --nproc-per-node N ...`: torchrun, started for the user, with one-line errors;
and who a process is under torchrun (env()), which every command reads first: no torch here
until a launch.

It runs torchrun's own launcher in this process, so the processes are those of
`torchrun --nproc-per-node N -m zhrnn train ...`; what it adds is a check of the rendezvous
port before anything starts, a thread count per process that shares out the machine's cores
(torchrun gives each 1), and one line instead of torchrun's report when a process dies or the
launch fails.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass

from ..errors import ConfigError, DistributedError

DEFAULT_PORT = 29500  # torchrun's
OPTIONS = {"--nproc-per-node": "nproc_per_node", "--nnodes": "nnodes", "--node-rank": "node_rank",
           "--master-addr": "master_addr", "--master-port": "master_port"}


@dataclass(frozen=True)
class Env:
    """Who this process is, from torchrun's environment (all 0 / 1 outside it)."""
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    local_world: int = 1
    launched: bool = False  # started by torchrun (even as its only process)


def env() -> Env:
    get = lambda name, default: int(os.environ.get(name, default))  # noqa: E731
    return Env(get("RANK", 0), get("LOCAL_RANK", 0), get("WORLD_SIZE", 1), get("LOCAL_WORLD_SIZE", 1),
               "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ)


def without_launch_options(argv: list[str]) -> list[str]:
    """The `zhrnn train` arguments each process gets: argv less the launch options."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in OPTIONS:
            skip = True
        elif arg.split("=", 1)[0] not in OPTIONS:
            out.append(arg)
    return out


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as torchrun's store: a closed run's port is free
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def launch(train_argv: list[str], nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
           master_addr: str = "127.0.0.1", master_port: int | None = None) -> int:
    """Train with nproc_per_node processes on this machine (node_rank of nnodes machines)."""
    if nproc_per_node < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ConfigError("--nproc-per-node and --nnodes must be at least 1, and --node-rank in [0, --nnodes)")
    args = ["--nproc-per-node", str(nproc_per_node)]
    if nnodes == 1 and master_port is None:
        args.append("--standalone")  # a free port, found by torchrun: two local trainings never collide
    else:
        port = master_port or DEFAULT_PORT
        if node_rank == 0 and port_in_use(port):
            raise ConfigError(f"port {port} is in use on this machine (another training?); choose a free one with "
                              "--master-port, the same on every machine")
        args += ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--master-addr", master_addr,
                 "--master-port", str(port)]
    # torchrun sets 1 thread per process when it has several; on CPUs, share the cores out instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))

    from torch.distributed import DistError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import RendezvousError
    from torch.distributed.run import parse_args, run

    for name in ["torch.distributed", *logging.root.manager.loggerDict]:  # its banner and report: said below instead
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args([*args, "-m", "zhrnn", "train", *train_argv]))
    except ChildFailedError as e:
        # A process killed by a signal said nothing; one that exited with an error code printed why
        # (its line is above). Report the first silent one, the SIGTERMs torchrun sent last.
        silent = sorted((f.signal_name() == "SIGTERM", f.timestamp, rank, f) for rank, f in e.failures.items()
                        if f.exitcode < 0)
        if not silent:
            return max(f.exitcode for f in e.failures.values())
        *_, rank, failure = silent[0]
        raise DistributedError(
            f"rank {rank} (pid {failure.pid}) was killed by {failure.signal_name()}; the other processes were "
            "stopped; checkpoints already saved are intact, continue with --resume") from None
    except SignalException as e:
        print(f"zhrnn: stopped by {e.sigval.name}; the run saved a checkpoint if it could, continue with --resume",
              file=sys.stderr)
        return 130
    except (DistError, RendezvousError, TimeoutError) as e:  # machines that never meet, a store that fails
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DistributedError(f"cannot start the rendezvous at {master_addr}:{master_port or DEFAULT_PORT}: {first}") from None
    return 0
