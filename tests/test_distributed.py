"""Training with several processes (torchrun, DDP over gloo on the CPU).

The launches are real: torchrun starts 2 processes on this machine, which train one model
together. With per-process batch B/2 they must follow the loss curve of one process with
batch B, and a run must resume with another number of processes as if it had never stopped.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import (OPTIONS, POEMS, TEXT, assert_clean_error, assert_same_curve, cli_options, curve, env,
                       run_cli, torchrun, zhrnn_train)
from zhrnn.training.batches import Batches, eval_streams, stream_starts
from zhrnn.training.launch import without_launch_options

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the shares of each process (in-process, no launch) ------------------------------------------


def test_process_shares_make_up_the_single_process_batch():
    ids = np.arange(5000, dtype=np.uint16)
    one = Batches(ids, 8, 10, torch.device("cpu"), seed=3)
    two = [Batches(ids, 8, 10, torch.device("cpu"), seed=3, rank=r, world=2) for r in range(2)]
    for _ in range(3):
        x, y = one.next()
        parts = [b.next() for b in two]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    # the generator state means the same with any number of processes: a resume may change it
    assert torch.equal(one.state(), two[0].state())


def test_validation_streams_are_shared_out_without_overlap_and_span_the_validation_text():
    ids = np.arange(100_000, dtype=np.uint32)
    whole = eval_streams(ids, 50, 10_000)
    starts, length = stream_starts(len(ids), 50, 10_000)
    assert whole.shape == (32, length + 1) and torch.equal(whole[:, 0], torch.from_numpy(starts))
    assert whole[:, 1:].numel() == 10_000 - 10_000 % 32 and starts[-1] > 95_000  # from all through it
    parts = [eval_streams(ids, 50, 10_000, rank=r, world=3) for r in range(3)]
    assert sorted(map(tuple, torch.cat(parts).tolist())) == sorted(map(tuple, whole.tolist()))
    assert eval_streams(ids[:120], 50, 10_000, rank=2, world=3).shape == (0, 60)  # 2 rows, 3 processes


def test_launch_options_are_not_passed_on():
    argv = ["诗.txt", "--nproc-per-node", "2", "--iter", "5", "--master-port=29501", "--nnodes", "1", "-q"]
    assert without_launch_options(argv) == ["诗.txt", "--iter", "5", "-q"]


# --- real launches ---------------------------------------------------------------------------


def test_two_processes_follow_one_and_resume_with_the_other_count(tmp_path):
    """1 process x batch 16 vs torchrun 2 processes x 8; then each resumed with the other count."""
    (tmp_path / "诗.txt").write_text(TEXT, encoding="utf-8")
    first = cli_options({**OPTIONS, "iters": 100})
    second = ["--iter", "200"]

    one = zhrnn_train("诗.txt", *first, "--out-dir", "one", "-q", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = torchrun("诗.txt", *first, "--out-dir", "two", "-q", cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    assert_same_curve(curve(tmp_path / "one"), curve(tmp_path / "two"))
    assert curve(tmp_path / "two")[-1][1] < 0.5 * curve(tmp_path / "two")[0][1]  # it learned

    # 1 -> 2 processes (through zhrnn's own launcher) and 2 -> 1
    up = zhrnn_train("诗.txt", "--resume", "one", *second, "--nproc-per-node", "2", "-q", cwd=tmp_path)
    assert up.returncode == 0, up.stderr[-2000:]
    down = zhrnn_train("诗.txt", "--resume", "two", *second, "-q", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    a, b = curve(tmp_path / "one"), curve(tmp_path / "two")
    assert [s for s, _, _ in a] == list(range(20, 201, 20))
    assert_same_curve(a, b)

    # the 2-process checkpoint is like any other: it samples the memorised lines
    for line in POEMS.splitlines():
        out = run_cli("sample", "--model", "two", "--start", line[0], "--greedy", "--len", len(line),
                      "--seed", 1, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == line


def test_mismatched_corpora_between_machines_stop_both(tmp_path):
    """Two 'machines' (node ranks 0 and 1 on this one) whose 诗.txt differ in one character."""
    port = free_port()
    procs = []
    for node, text in enumerate((TEXT, TEXT.replace("春", "秋"))):
        where = tmp_path / f"node{node}"
        where.mkdir()
        (where / "诗.txt").write_text(text, encoding="utf-8")
        args = ["诗.txt", *cli_options(OPTIONS), "--nproc-per-node", "1", "--nnodes", "2", "--node-rank", node,
                "--master-port", port, "-q"]
        procs.append(subprocess.Popen([sys.executable, "-m", "zhrnn", "train", *map(str, args)], cwd=where, env=env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"))
    for node, proc in enumerate(procs):
        _, err = proc.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, err
        assert f"[rank {node}] error: the text differs between processes" in lines[0]
        assert "every machine needs the same text files" in lines[0]
        assert "Traceback" not in err
    assert not list(tmp_path.glob("node*/runs/*/ckpt.pt"))


def test_batch_that_does_not_split_is_refused_once(tmp_path):
    (tmp_path / "诗.txt").write_text(TEXT, encoding="utf-8")
    proc = torchrun("诗.txt", *cli_options({**OPTIONS, "batch_size": 15}), "-q", cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("zhrnn:")]
    assert proc.returncode != 0
    assert errors == ["zhrnn: [rank 0] error: --batch-size 15 (the global batch) does not split evenly over "
                      "2 processes; use a multiple of 2"], proc.stderr


def test_port_in_use_is_one_line(tmp_path):
    (tmp_path / "诗.txt").write_text(TEXT, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = zhrnn_train("诗.txt", "--nproc-per-node", "2", "--master-port", port, cwd=tmp_path)
    assert_clean_error(proc, f"port {port} is in use", "--master-port")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank-1 process through /proc")
def test_a_dead_process_ends_the_run_with_one_line_and_keeps_the_checkpoint(tmp_path):
    (tmp_path / "诗.txt").write_text(TEXT, encoding="utf-8")
    args = ["诗.txt", *cli_options({**OPTIONS, "iters": 1_000_000}), "--out-dir", "run", "--nproc-per-node", "2", "-q"]
    launcher = subprocess.Popen([sys.executable, "-m", "zhrnn", "train", *args], cwd=tmp_path, env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    ckpt = tmp_path / "run" / "ckpt.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), launcher.communicate()[1]
    rank1 = [pid for pid in map(int, subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                                     text=True).stdout.split())
             if b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
    assert len(rank1) == 1
    os.kill(rank1[0], signal.SIGKILL)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 1
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("zhrnn: error: rank 1") and "SIGKILL" in last and "--resume" in last, err
    # the checkpoint is whole (saved at a save_freq step) and continues with one process
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] % OPTIONS["save_freq"] == 0 and state["step"] > 0
    more = zhrnn_train("诗.txt", "--resume", "run", "--iter", state["step"] + 20, "-q", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert curve(tmp_path / "run")[-1][0] == state["step"] + 20


def test_ctrl_c_stops_every_process_at_one_step_and_saves_it(tmp_path):
    (tmp_path / "诗.txt").write_text(TEXT, encoding="utf-8")
    args = ["诗.txt", *cli_options({**OPTIONS, "iters": 1_000_000, "save_freq": 1_000_000}), "--out-dir", "run",
            "--nproc-per-node", "2"]
    launcher = subprocess.Popen([sys.executable, "-m", "zhrnn", "train", *args], cwd=tmp_path, env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    deadline = time.time() + 120
    while not (tmp_path / "run" / "run.json").exists() and time.time() < deadline:  # training has begun
        time.sleep(0.2)
    time.sleep(2)
    launcher.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does: torchrun passes it on
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, err
    assert "Traceback" not in err
    state = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert 0 < state["step"] < 1_000_000  # saved where it stopped, not at a save_freq step
    assert f"interrupted at step {state['step']}; saved" in err
