"""Whatever a user feeds zhrnn: one clear line on stderr, a non-zero exit, no traceback, and
nothing saved before is touched. Runs the CLI's main() in-process (fast); test_cli.py checks a
few of the same through a real subprocess."""
import errno
import os
import subprocess
import sys

import pytest
import torch

from zhrnn import checkpoint
from zhrnn.cli import main

from .conftest import POEMS, TINY, cli_options


def run_main(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code, err, fragment):
    assert code not in (0, None), err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zhrnn: error:") and fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained):
    d = tmp_path_factory.mktemp("bad")

    def write(name, data: bytes):
        (d / name).write_bytes(data)
        return d / name

    good = trained.checkpoint.read_bytes()
    state = torch.load(trained.checkpoint, weights_only=True)
    newer = d / "newer.pt"
    torch.save({**state, "version": checkpoint.VERSION + 1}, newer)
    foreign = d / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    (d / "no_txt_here").mkdir()
    (d / "run_without_ckpt").mkdir()
    (d / "a_file").write_text("x", encoding="utf-8")
    return {
        "dir": d,
        "poems": write("诗.txt", POEMS.encode("utf-8")),
        "empty": write("empty.txt", b""),
        "blank": write("blank.txt", b" \n\t\r\n\xe3\x80\x80\n"),  # spaces, tab, CRLF, ideographic space
        "one": write("one.txt", "字".encode("utf-8")),
        "short": write("short.txt", "短诗一句，不够长。".encode("utf-8")),
        "png": write("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
        "zip": write("archive.txt", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64)),
        "nul": write("nul.txt", "正常的文字".encode("utf-8") + b"\x00\x00" + "后面还有".encode("utf-8")),
        "latin1": write("latin1.txt", "crème brûlée à la française, déjà vu".encode("latin-1")),
        "mixed": write("mixed.txt", "一半是UTF-8".encode("utf-8") + "一半是GBK编码".encode("gbk")),
        "junk": write("junk.txt", bytes([0x80, 0xFF, 0xFE, 0xFD, 0x81]) * 20),  # no byte-order mark
        "surrogate": write("surrogate.txt", b"abc\xed\xa0\x80def" * 10),  # UTF-8 of a lone surrogate
        "gbk": write("gbk.txt", ("床前明月光，疑是地上霜。" * 20).encode("gbk")),
        "other_vocab": write("other.txt", ("完全不同的文字内容，只有这些字而已。\n" * 10).encode("utf-8")),
        "ckpt": trained.checkpoint,
        "run": trained.run_dir,
        "good_bytes": good,
        "truncated": write("truncated.pt", good[: len(good) // 2]),
        "random": write("random.pt", os.urandom(4096)),
        "zip_not_ckpt": write("zip.pt", b"PK\x05\x06" + bytes(18)),  # an empty zip archive
        "newer": newer,
        "foreign": foreign,
    }


TRAIN = [
    (lambda f: ["train", f["dir"] / "missing.txt"], "does not exist"),
    (lambda f: ["train", f["empty"]], "empty"),
    (lambda f: ["train", f["blank"]], "empty"),
    (lambda f: ["train", f["one"]], "--seq-length"),
    (lambda f: ["train", f["short"]], "--seq-length"),
    (lambda f: ["train", f["png"]], "binary"),
    (lambda f: ["train", f["zip"]], "binary"),
    (lambda f: ["train", f["nul"]], "binary"),
    (lambda f: ["train", f["latin1"]], "--encoding"),
    (lambda f: ["train", f["mixed"]], "--encoding"),
    (lambda f: ["train", f["junk"]], "--encoding"),
    (lambda f: ["train", f["surrogate"]], "--encoding"),
    (lambda f: ["train", f["dir"] / "no_txt_here"], "no .txt or .lrc files"),
    (lambda f: ["train", f["gbk"], "--encoding", "klingon"], "unknown encoding"),
    (lambda f: ["train", f["gbk"], "--encoding", "utf-8"], "not valid utf-8"),
    (lambda f: ["train", f["poems"], "--out-dir", f["dir"] / "a_file", *cli_options(TINY)], "File exists"),
    (lambda f: ["train", f["poems"], "--out-dir", f["run"]], "already has a checkpoint"),
    (lambda f: ["train", f["other_vocab"], "--resume", f["ckpt"]], "vocabulary lacks"),
    (lambda f: ["train", f["poems"], "--resume", f["dir"] / "nope.pt"], "no checkpoint"),
    (lambda f: ["train", f["poems"], "--resume", f["ckpt"], "--hidden-size", "8"], "cannot change hidden_size"),
    (lambda f: ["train", f["poems"], "--hidden-size", "0"], "--hidden-size"),
    (lambda f: ["train", f["poems"], "--dropout", "1.5"], "--dropout"),
    (lambda f: ["train", f["poems"], "--learning-rate", "0"], "--learning-rate"),
    (lambda f: ["train", f["poems"], "--iter", "-1"], "--iter"),
    (lambda f: ["train", f["poems"], "--device", "gpu"], "--device"),
    (lambda f: ["train", f["poems"], "--convert", "x2y"], "OpenCC"),
    (lambda f: ["train", f["poems"], "--start", "选", *cli_options(dict(TINY, seq_length=8))], "start"),
    (lambda f: ["train", f["poems"], "--cell", "transformer"], "--cell takes gru, lstm or rnn"),
    (lambda f: ["train", f["poems"], "--iter", "many"], "invalid int"),
]
SAMPLE = [
    (lambda f: ["--start", "选"], "选"),
    (lambda f: ["--start", "𠀀𠀁𠀂"], "--start"),
    (lambda f: ["--start", "\udcff"], "--start"),  # a lone surrogate, as Python passes undecodable argv bytes
    (lambda f: ["--len", "0"], "--len"),
    (lambda f: ["--len", "-5"], "--len"),
    (lambda f: ["--len", str(10**9)], "--len"),
    (lambda f: ["--temperature", "0"], "--temperature"),
    (lambda f: ["--temperature", "-1"], "--temperature"),
    (lambda f: ["--top-p", "0"], "--top-p"),
    (lambda f: ["--top-p", "1.5"], "--top-p"),
    (lambda f: ["--top-k", "0"], "--top-k"),
    (lambda f: ["--num", "0"], "--num"),
    (lambda f: ["--convert", "x2y"], "OpenCC"),
    (lambda f: ["--candidates", "0"], "--candidates"),
    (lambda f: ["--candidates", "1000"], "--candidates"),
    (lambda f: ["--candidates", "4", "--greedy"], "--candidates"),
    (lambda f: ["--form", "五言绝句", "--tones", "古韵"], "--tones"),
    (lambda f: ["--form", "□□□，□□□。", "--tones"], "近体"),
]
MODELS = [
    (lambda f: f["dir"] / "missing.pt", "no checkpoint"),
    (lambda f: f["dir"] / "run_without_ckpt", "no checkpoint"),
    (lambda f: f["truncated"], "corrupt"),
    (lambda f: f["random"], "corrupt"),
    (lambda f: f["zip_not_ckpt"], "corrupt"),
    (lambda f: f["newer"], "upgrade zhrnn"),
    (lambda f: f["foreign"], "not a zhrnn checkpoint"),
]


@pytest.mark.parametrize("case", range(len(TRAIN)))
def test_bad_training_input(case, files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv, fragment = TRAIN[case]
    code, out, err = run_main(argv(files), capsys)
    assert_one_error_line(code, err, fragment)
    assert files["ckpt"].read_bytes() == files["good_bytes"]


@pytest.mark.parametrize("case", range(len(SAMPLE)))
def test_bad_sampling_options(case, files, capsys):
    argv, fragment = SAMPLE[case]
    code, out, err = run_main(["sample", "--model", files["run"], *argv(files)], capsys)
    assert_one_error_line(code, err, fragment)
    assert out == ""


@pytest.mark.parametrize("case", range(len(MODELS)))
def test_bad_checkpoints(case, files, capsys):
    path, fragment = MODELS[case]
    code, out, err = run_main(["sample", "--model", path(files), "--start", "春"], capsys)
    assert_one_error_line(code, err, fragment)


def test_sampling_with_no_model_anywhere(capsys, in_tmp, monkeypatch):
    from zhrnn import shipped

    monkeypatch.setattr(shipped, "directory", lambda: in_tmp / "no-shipped-models")  # an install without them
    assert_one_error_line(*run_main(["sample"], capsys)[::2], "no model under ./runs and no shipped model")


def test_a_full_disk_keeps_the_previous_checkpoint(poems, capsys, monkeypatch, tmp_path):
    saves = []
    real_save = torch.save

    def filling_disk(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) > 1:  # the first checkpoint fits; the second runs out of space half-way
            f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", filling_disk)
    code, out, err = run_main(["train", poems, "--out-dir", tmp_path / "run", "-q",
                               *cli_options(dict(TINY, iters=20, save_freq=10))], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("zhrnn: error: No space left on device")
    state = checkpoint.load(tmp_path / "run")  # the step-10 checkpoint, whole
    assert state["step"] == 10
    assert checkpoint.load(tmp_path / "run" / "ckpt.pt", last=True)["step"] == 10
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob(".*.tmp"))


def test_a_log_that_cannot_be_written_is_said_once_and_training_goes_on(poems, capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").mkdir()  # what cannot be appended to (a full disk, a file made read-only, ...)
    code, out, err = run_main(["train", poems, "--out-dir", run, "-q",
                               *cli_options(dict(TINY, iters=30, save_freq=10))], capsys)
    assert code == 0 and "Traceback" not in err
    said = [line for line in err.splitlines() if "cannot write" in line]
    assert len(said) == 1 and said[0].startswith(f"zhrnn: cannot write {run / 'log.jsonl'} (")
    assert checkpoint.load(run)["step"] == 30 and (run / "samples.txt").read_text(encoding="utf-8").count("===") == 6


def test_an_unwritable_output_directory_is_one_line(poems, capsys, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "ro"))

    # as root a chmod'ed directory stays writable, so simulate what a read-only one answers
    monkeypatch.setattr(os, "open", refuse)
    code, out, err = run_main(["train", poems, "--out-dir", tmp_path / "ro", "-q", *cli_options(TINY)], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"zhrnn: error: Permission denied: {tmp_path / 'ro'}"


@pytest.mark.skipif(sys.platform != "linux", reason="reads the peak as Linux's ru_maxrss (kB)")
def test_a_100_mb_file_with_no_newline_trains_in_bounded_memory(tmp_path):
    unit = "春眠不觉晓，处处闻啼鸟。the quick brown fox "
    line = unit * (100_000_000 // len(unit.encode("utf-8")) + 1)  # 100 MB of UTF-8, no newline
    (tmp_path / "one line.txt").write_text(line, encoding="utf-8")
    assert (tmp_path / "one line.txt").stat().st_size >= 100_000_000
    argv = ["train", str(tmp_path / "one line.txt"), "--out-dir", str(tmp_path / "run"), "-q",
            *map(str, cli_options(dict(TINY, iters=1, save_freq=1)))]
    # its own process, so that the peak is this training's alone
    script = ("import resource, sys; from zhrnn.cli import main; code = main(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024  # ru_maxrss: kB on Linux
    assert peak_mb < 700  # held whole, the line took 1.2 GB; cut every million characters, about 420 MB
    assert "a line longer than 1,048,576 characters is cut at sentence ends" in done.stderr
    state = checkpoint.load(tmp_path / "run")
    assert state["step"] == 1 and set(state["tokenizer"]["vocab"]) == {"<unk>", "^", "\n"} | set(line)
