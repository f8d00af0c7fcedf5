import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPORA = REPO.parent / "shared" / "corpora"

# The suite runs on the CPU on purpose: on a machine with a GPU, `--device auto` would train it on
# CUDA under AMP (other figures than the tests expect) and two torchrun processes would share one
# GPU. Hidden before anything starts CUDA, here and in every process a test starts; a test that
# wants the GPU is marked `cuda` and starts its processes with GPU_ENV.
GPU_ENV = dict(os.environ)
os.environ["CUDA_VISIBLE_DEVICES"] = ""


def _has_gpu() -> bool:
    probe = "import torch; print(torch.cuda.is_available())"
    proc = subprocess.run([sys.executable, "-c", probe], env=GPU_ENV, capture_output=True, text=True, timeout=120)
    return proc.stdout.strip() == "True"


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: runs on a CUDA GPU (skipped without one)")


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if marked and not _has_gpu():
        for item in marked:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))

# Four lines whose first characters differ and whose characters each have one continuation,
# so a model that has learned the text reproduces any line from its first character.
POEMS = "床前明月光，疑是地上霜。\n春眠不觉晓，处处闻啼鸟。\n白日依山尽，黄河入海流。\n千山鸟飞绝，万径人踪灭。\n"

# Small and fast: enough to memorise POEMS in a few seconds on one CPU core.
TINY = dict(hidden_size=96, embedding_size=32, num_layers=1, dropout=0.0, batch_size=16, seq_length=24,
            learning_rate=1e-2, warmup=10, iters=300, save_freq=100, sample_len=30, val_fraction=0.0)


def cli_options(options: dict) -> list[str]:
    """TINY-style options as `zhrnn train` flags."""
    names = {"iters": "--iter", "sample_len": "--len"}
    out = []
    for key, value in options.items():
        out += [names.get(key, "--" + key.replace("_", "-")), str(value)]
    return out


def cli_env(**extra) -> dict:
    """The environment of a `python -m zhrnn` subprocess: this checkout, UTF-8 output."""
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8", **extra}


def run_cli(*args, cwd, timeout=300, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "zhrnn", *map(str, args)], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout, **kwargs)


# --- runs of `zhrnn train` in processes, and their loss curves (test_distributed, test_output) ---

# Long enough for a validation part of 3 windows (split 2 + 1 over the processes).
TEXT = POEMS * 8
# dropout 0: the processes' masks would differ; the tail: the text repeats its 4 poems, which are all to be learned
OPTIONS = {**TINY, "val_fraction": 0.2, "save_freq": 20, "split": "tail"}


def env() -> dict:
    # one thread each: 2 processes on a 2-core machine, and the single-process runs alike
    return cli_env(OMP_NUM_THREADS="1")


def torchrun(*args, cwd, nproc=2, timeout=300):
    """The standard launch: torchrun --nproc-per-node N -m zhrnn train ..."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "zhrnn", "train", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def zhrnn_train(*args, cwd, timeout=300):
    return run_cli("train", *args, cwd=cwd, timeout=timeout, env=env())


def curve(run_dir: Path) -> list[tuple[int, float, float]]:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["step"], r["train_loss"], r["val_bpc"]) for r in records]


def assert_same_curve(a, b, tol=2e-3):
    assert [s for s, _, _ in a] == [s for s, _, _ in b]
    for (step, loss_a, val_a), (_, loss_b, val_b) in zip(a, b):
        assert abs(loss_a - loss_b) < tol, (step, loss_a, loss_b)
        assert abs(val_a - val_b) < tol, (step, val_a, val_b)


def assert_clean_error(proc, *fragments):
    """A user error: non-zero exit, exactly one line on stderr, no traceback, the message says why."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("zhrnn: error:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(autouse=True, scope="session")
def encoded_cache(tmp_path_factory):
    """The encoded-text cache of every training in the tests (and their subprocesses), not ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("ZHRNN_CACHE")
    os.environ["ZHRNN_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("ZHRNN_CACHE", None)
    else:
        os.environ["ZHRNN_CACHE"] = previous


@pytest.fixture
def poems(tmp_path):
    path = tmp_path / "诗.txt"
    path.write_text(POEMS, encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One model trained on POEMS, shared by the tests that only read it."""
    from zhrnn.training import fit as train

    root = tmp_path_factory.mktemp("trained")
    corpus = root / "诗.txt"
    corpus.write_text(POEMS, encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(root / "run"), **TINY)
    return result


def shared(*parts) -> Path:
    path = SHARED_CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared corpora at {SHARED_CORPORA} (not in a plain clone)")
    return path
