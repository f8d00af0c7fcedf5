"""The command line, end to end in subprocesses, as a user runs it."""
import signal
import subprocess
import sys
import time

import torch

from .conftest import POEMS, REPO, TINY, assert_clean_error, cli_options, run_cli

FAST = dict(TINY, iters=150, save_freq=50)


def test_train_then_sample_from_the_newest_run(tmp_path):
    tmp_path = tmp_path / "我的 文件夹"  # spaces and Chinese in every path
    tmp_path.mkdir()
    (tmp_path / "作文 一.txt").write_text(POEMS, encoding="utf-8")
    train = run_cli("train", "作文 一.txt", *cli_options(FAST), cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert (tmp_path / "runs" / "作文 一" / "ckpt.pt").exists()
    # every save_freq: a sample on stdout and in samples.txt; progress and messages on stderr
    samples = (tmp_path / "runs" / "作文 一" / "samples.txt").read_text(encoding="utf-8")
    assert samples.count("=== step") == 3 and "^" not in samples
    assert "--- step 150" in train.stderr and "runs/作文 一/ckpt.pt" in train.stderr
    assert train.stdout.strip() and "zhrnn:" not in train.stdout

    sample = run_cli("sample", "--start", "春", "--len", "30", "--greedy", cwd=tmp_path)  # no --model: newest run
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("春眠不觉晓，处处闻啼鸟。\n")
    assert len(sample.stdout.rstrip("\n")) == 30

    many = run_cli("sample", "--start", "床", "--len", "12", "--num", "3", "--seed", "1", "--convert", "s2t", cwd=tmp_path)
    assert many.returncode == 0, many.stderr
    texts = many.stdout.strip().split("\n\n")
    assert texts == ["牀前明月光，疑是地上霜。"] * 3  # printed in Traditional (s2t)


def test_ctrl_c_saves_and_resume_continues(tmp_path):
    (tmp_path / "诗.txt").write_text(POEMS, encoding="utf-8")
    env_cmd = [sys.executable, "-m", "zhrnn", "train", "诗.txt", *cli_options(dict(TINY, iters=100000, save_freq=20))]
    proc = subprocess.Popen(env_cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    ckpt = tmp_path / "runs" / "诗" / "ckpt.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert ckpt.exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err and "--resume" in err
    step = torch.load(ckpt, weights_only=True)["step"]
    assert step >= 20

    resumed = run_cli("train", "诗.txt", "--resume", "--iter", str(step + 5), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(ckpt, weights_only=True)["step"] == step + 5


def test_bad_input_gets_one_line_and_a_non_zero_exit_from_a_real_process(tmp_path, trained):
    # The full list is in test_bad_input.py (in-process); these go through the real entry point.
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 8)
    good = trained.checkpoint.read_bytes()
    cases = [
        (("train", "empty.txt"), "empty"),
        (("train", "empty.txt", "--iter", "x"), "invalid int"),
        (("sample", "--model", trained.run_dir, "--start", "选"), "选"),
        (("sample", "--model", "random.pt"), "corrupt"),
        (("sample", "--model", "不存在的模型"), "no shipped model of that name"),
        (("sample", "--model", trained.run_dir, "--top-k", "0"), "--top-k must be at least 1, not 0"),  # its declaration
        (("interactive", "--model", trained.run_dir, "--form", "五言绝句", "--tones", "古韵"), "--tones takes"),
    ]
    for args, fragment in cases:
        assert_clean_error(run_cli(*args, cwd=tmp_path), fragment)
    assert trained.checkpoint.read_bytes() == good


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "evil.pt"
    payload.write_text("", encoding="utf-8")
    script = (
        "import torch, os\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'format': 'zhrnn', 'version': 1, 'model': Evil()}}, {str(payload)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    proc = run_cli("sample", "--model", payload, cwd=tmp_path)
    assert_clean_error(proc, "not a safe zhrnn checkpoint")
    assert not marker.exists()


def test_renamed_options_keep_their_old_spellings():
    """--num-paragraphs was sample's --paragraphs (which in train is a mode), --output-layer was
    train's --output (elsewhere a file): scripts with the old spellings still work."""
    from zhrnn.cli import build_parser

    parse = build_parser().parse_args
    for spelling in ("--num-paragraphs", "--paragraphs"):
        assert parse(["sample", spelling, "2"]).num_paragraphs == 2
    for spelling in ("--output-layer", "--output"):
        assert parse(["train", "诗.txt", spelling, "full"]).output_layer == "full"
