"""The device a run uses, chosen on purpose: what a GPU checkpoint keeps when it is moved to the
CPU, which half precision `--amp auto` picks for the GPU a run trains on, and (marked `cuda`,
skipped without a GPU) a short run on CUDA resumed on the CPU."""
import os
import subprocess
import sys

import pytest
import torch

from zhrnn.checkpoint import _to_cpu
from zhrnn.training.build import amp_dtype

from .conftest import GPU_ENV, REPO, TINY, cli_options


def test_the_suite_itself_sees_no_gpu():
    """Every test (and every process it starts) runs on the CPU unless it is marked `cuda`."""
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert not torch.cuda.is_available()


def test_a_tensor_met_twice_is_moved_once_and_stays_one():
    """A tied embedding and output weight are one tensor in the state; .cpu() of a CUDA tensor
    copies, so without care the checkpoint would hold two (saved twice, loaded untied)."""
    tied, other = torch.randn(5, 3), torch.randn(5, 3)
    state = {"model": {"embedding.weight": tied, "head.weight": tied, "other": other},
             "optimizer": [tied.t(), torch.zeros(0), torch.zeros(0)]}
    out = _to_cpu(state)
    assert out["model"]["embedding.weight"] is out["model"]["head.weight"]
    assert out["model"]["other"] is not out["model"]["embedding.weight"]
    assert torch.equal(out["optimizer"][0], tied.t())  # a view of another shape is its own tensor
    assert out["optimizer"][1] is not out["optimizer"][2]  # empty tensors share no memory to keep


@pytest.mark.parametrize("capability, cudnn, expected", [
    ((9, 0), 91300, torch.bfloat16),  # Hopper, a cuDNN that runs RNNs in bf16
    ((8, 0), 91000, torch.float16),  # Ampere, an older cuDNN: fp16 with loss scaling
    ((7, 0), 91300, torch.float16),  # V100: bf16 only emulated
    ((7, 5), 91300, torch.float16),  # T4
])
def test_amp_auto_asks_the_gpu_the_run_trains_on(monkeypatch, capability, cudnn, expected):
    asked = []

    def capability_of(device=None):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: cudnn)
    assert amp_dtype("auto", torch.device("cuda", 1)) == expected
    assert asked == [torch.device("cuda", 1)]  # the run's own GPU, not the current one
    assert amp_dtype("auto", torch.device("cpu")) is None
    assert amp_dtype("bf16", torch.device("cuda", 1)) == torch.bfloat16
    assert amp_dtype("off", torch.device("cuda", 1)) is None


@pytest.mark.cuda
def test_a_run_on_the_gpu_resumes_on_the_cpu_and_keeps_a_tied_weight_tied(tmp_path):
    (tmp_path / "诗.txt").write_text("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n" * 4, encoding="utf-8")
    options = cli_options({**TINY, "iters": 60, "save_freq": 30}) + ["--tie-embedding"]
    env = {**GPU_ENV, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}

    def train(*extra):
        return subprocess.run([sys.executable, "-m", "zhrnn", "train", "诗.txt", "--out-dir", "run", *options, *extra],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    first = train("--device", "cuda", "--amp", "auto")
    assert first.returncode == 0, first.stderr[-2000:]
    state = torch.load(tmp_path / "run" / "ckpt.pt", map_location="cpu", weights_only=True)
    model = state["model"]
    assert model["embedding.weight"].data_ptr() == model["head.weight"].data_ptr()
    resumed = train("--device", "cpu", "--resume", "run", "--iter", "90")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "ckpt.pt", map_location="cpu", weights_only=True)["step"] == 90
