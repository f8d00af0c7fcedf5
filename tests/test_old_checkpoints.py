"""Checkpoints of the first release (tests/data/checkpoint-2026-11-21: full softmax, no stored
rate, split or evaluation protocol) still load, sample, resume and start new runs, so that a
user's old runs and the models shipped before keep working when the shipped ones are replaced."""
import shutil

import pytest

from zhrnn import api, checkpoint
from zhrnn.generation.score import score_text

from .conftest import POEMS, REPO

OLD = REPO / "tests" / "data" / "checkpoint-2026-11-21"


@pytest.mark.parametrize("name", ["ckpt.pt", "exported.pt"])
def test_an_old_checkpoint_samples_with_its_label(name):
    model = api.load(OLD / name)
    assert model.info["step"] == 40 and set(model.tokenizer.labels) == {"五言"}
    text = model.generate(start="春", length=30, seed=0, label="五言")
    assert text.startswith("春") and len(text) == 30
    assert all(c in model.tokenizer.index or c == "\n" for c in text)
    scored = score_text(model.model, model.tokenizer, "五言\t床前明月光，疑是地上霜。", model.info["corpus_config"])
    assert scored.chars > 0 and all(b > 0 for b in scored.bits)


def test_an_old_checkpoint_resumes_where_it_stopped(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD, run, ignore=shutil.ignore_patterns("exported.pt", "README.md"))
    api.train(run / "text.tsv", resume=run / "ckpt.pt", iters=44, save_freq=44, progress=False)
    state = checkpoint.load(run / "ckpt.pt")
    assert state["step"] == 44
    old = checkpoint.load(OLD / "ckpt.pt")["tokenizer"]
    assert {k: state["tokenizer"][k] for k in old} == old  # the vocabulary stays (the layout flags are new)


def test_a_new_run_starts_from_an_old_checkpoint(tmp_path):
    (tmp_path / "new.txt").write_text("江南可采莲，莲叶何田田。\n鱼戏莲叶东，鱼戏莲叶西。\n" * 4 + POEMS, encoding="utf-8")
    old = api.load(OLD / "ckpt.pt").tokenizer
    model = api.train(tmp_path / "new.txt", init_from=str(OLD / "ckpt.pt"), iters=3, save_freq=3, seq_length=24,
                      out_dir=str(tmp_path / "run"), progress=False)
    assert model.tokenizer.vocab[:len(old)] == old.vocab  # old ids keep their meaning
    assert len(model.tokenizer) > len(old) and set(model.tokenizer.labels) == {"五言"}
