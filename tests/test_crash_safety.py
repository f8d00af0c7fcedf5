"""However a run dies, the latest checkpoint stays loadable and --resume continues; two
trainings never write into one directory; NaN never reaches a checkpoint."""
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from zhrnn import checkpoint
from zhrnn.training import rundir
from zhrnn.errors import ConfigError, ZhrnnError
from zhrnn.training.build import prepare_run

from .conftest import REPO, TINY, POEMS, cli_options, run_cli

# Big enough that writing a checkpoint takes a real share of each step, so kills land mid-write.
CRASHY = dict(TINY, hidden_size=256, embedding_size=64, num_layers=2, iters=100_000, save_freq=1, sample_len=5)


def start_training(corpus, run, resume: bool):
    args = [sys.executable, "-m", "zhrnn", "train", str(corpus), "-q"]
    args += ["--resume", str(run)] if resume else ["--out-dir", str(run), *cli_options(CRASHY)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def test_sigkill_at_random_moments_always_leaves_a_checkpoint_that_resumes(poems, tmp_path):
    run, rng, steps = tmp_path / "run", random.Random(0), []
    for trial in range(20):
        ckpt = run / "ckpt.pt"
        proc = start_training(poems, run, resume=ckpt.exists())
        seen = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        deadline = time.time() + 60  # wait until this process has written a checkpoint, then strike
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != seen:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(rng.uniform(0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = checkpoint.load(ckpt)  # loads, whatever the moment of the kill
        assert all(torch.isfinite(v).all() for v in state["model"].values())
        steps.append(state["step"])
    assert steps == sorted(steps) and steps[-1] > steps[0]  # every resume went on from the last save
    final = run_cli("train", poems, "--resume", run, "--iter", steps[-1] + 3, "-q", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert checkpoint.load(run)["step"] == steps[-1] + 3
    assert not list(run.glob("*.tmp")) and not (run / rundir.LOCK).exists()


def test_a_second_training_in_the_same_directory_is_refused_while_the_first_runs(poems, tmp_path):
    run = tmp_path / "run"
    first = start_training(poems, run, resume=False)
    try:
        deadline = time.time() + 60
        while not (run / "ckpt.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        second = run_cli("train", poems, "--resume", run, cwd=tmp_path)
        assert second.returncode == 1
        assert second.stderr.strip() == f"zhrnn: error: another training (process {first.pid}) is writing to {run}; " \
                                        "wait for it, or use another --out-dir"
        assert first.poll() is None  # the first one goes on
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 130 and checkpoint.load(run)["step"] > 0


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / rundir.LOCK).write_text(str(dead.pid), encoding="ascii")
    with rundir.locked(tmp_path):
        assert (tmp_path / rundir.LOCK).read_text(encoding="ascii") == str(os.getpid())
    assert not (tmp_path / rundir.LOCK).exists()


def test_runs_started_together_get_their_own_directories(tmp_path):
    (tmp_path / "诗.txt").write_text(POEMS, encoding="utf-8")
    args = [sys.executable, "-m", "zhrnn", "train", "诗.txt", "-q", *cli_options(dict(TINY, iters=5, save_freq=5))]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["诗", "诗-2", "诗-3"] and all((tmp_path / "runs" / r / "ckpt.pt").exists() for r in runs)


def test_nan_weights_stop_training_and_never_reach_a_checkpoint(poems, tmp_path):
    trainer = prepare_run(poems, dict(TINY, iters=40, save_freq=10, out_dir=str(tmp_path / "run")))
    stop = threading.Event()
    trainer.run(progress=False, stop=stop, on_save=lambda record: record["step"] == 10 and stop.set())
    saved = (tmp_path / "run" / "ckpt.pt").read_bytes()
    with torch.no_grad():
        trainer.model.head.weight[0, 0] = math.nan  # what an exploding step leaves behind
    with pytest.raises(ZhrnnError, match="NaN"):
        trainer.run(progress=False)
    with pytest.raises(ZhrnnError, match="NaN"):
        trainer.save()
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() == saved
    assert not (tmp_path / "run" / rundir.LOCK).exists()  # released on the way out


def test_resuming_a_run_that_another_process_holds_is_refused_in_process(poems, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (run / rundir.LOCK).write_text(str(holder.pid), encoding="ascii")
        with pytest.raises(ConfigError, match=f"process {holder.pid}"):
            with rundir.locked(run):
                pass
    finally:
        holder.kill()
        holder.wait()
