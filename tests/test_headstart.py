"""--init-from auto: the shipped base that knows a text best, chosen by scoring a sample of it."""
import pytest

from zhrnn import checkpoint, shipped
from zhrnn.cli import main
from zhrnn.training import fit as train
from zhrnn.training.headstart import unigram_bits

from .conftest import POEMS, TINY

MODERN = "我们今天去公园散步，天气很好。\n他说明天要下雨，我们就在家里看书。\n你吃饭了吗？我刚吃完。\n" * 6


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Two shipped bases of our own: one of poems, one of everyday sentences."""
    root = tmp_path_factory.mktemp("bases")
    for name, text in (("诗", POEMS * 4), ("文", MODERN)):
        corpus = root / f"{name}.txt"
        corpus.write_text(text, encoding="utf-8")
        run = train(corpus, progress=False, out_dir=str(root / f"run-{name}"), **dict(TINY, iters=200))
        checkpoint.export(run.run_dir, root / "shipped" / f"{name}.pt")
    return root / "shipped"


@pytest.mark.parametrize("text, expected", [(POEMS * 3, "诗"), (MODERN, "文")])
def test_auto_starts_from_the_base_that_knows_the_text_and_says_so(text, expected, bases, tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(shipped, "directory", lambda: bases)
    corpus = tmp_path / "mine.txt"
    corpus.write_text(text, encoding="utf-8")
    options = {k: v for k, v in TINY.items() if k not in ("hidden_size", "embedding_size", "num_layers")}
    argv = ["train", str(corpus), "--init-from", "auto", "--out-dir", str(tmp_path / "run"), "-q", "--iter", "2",
            "--save-freq", "2", "--batch-size", str(options["batch_size"]), "--seq-length", str(options["seq_length"])]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"head start: {expected} (" in err and "--init-from none trains from scratch" in err
    state = checkpoint.load(tmp_path / "run")
    assert state["train_config"]["init_from"] == expected  # what the card shows
    base = checkpoint.load(bases / f"{expected}.pt")
    assert state["model_config"]["hidden_size"] == base["model_config"]["hidden_size"]
    assert state["tokenizer"]["vocab"][: len(base["tokenizer"]["vocab"])] == base["tokenizer"]["vocab"]  # its ids kept
    # corpus inspect reports the same choice
    assert main(["corpus", "inspect", str(corpus)]) == 0
    assert f"head start (zhrnn train --init-from auto): {expected} (" in capsys.readouterr().out


def test_none_trains_from_scratch_and_a_text_no_base_knows_does_too(bases, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "directory", lambda: bases)
    corpus = tmp_path / "english.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 20, encoding="utf-8")
    common = ["--out-dir", str(tmp_path / "a"), "-q", "--iter", "1", "--save-freq", "1", "--batch-size", "4",
              "--seq-length", "16", "--hidden-size", "32", "--embedding-size", "16", "--num-layers", "1"]
    assert main(["train", str(corpus), "--init-from", "none", *common]) == 0
    assert checkpoint.load(tmp_path / "a")["train_config"]["init_from"] is None
    common[1] = str(tmp_path / "b")
    assert main(["train", str(corpus), "--init-from", "auto", *common[:-6]]) == 0
    assert "training from scratch" in capsys.readouterr().err
    assert checkpoint.load(tmp_path / "b")["train_config"]["init_from"] is None


def test_unigram_bits_are_the_texts_own_entropy():
    assert unigram_bits("abab") == pytest.approx(1.0)
    assert unigram_bits("aaaa") == 0
