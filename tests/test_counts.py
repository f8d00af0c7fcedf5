"""The counts (zhrnn/counts.py): Kneser-Ney as arrays, the same as the reference floor of
benchmarks/kneser_ney.py; the mixture a proper distribution; carried through checkpoints, export
and loading; --ngram off the network exactly."""
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zhrnn
from zhrnn import checkpoint
from zhrnn.api import TextModel
from zhrnn.cli import main as cli_main
from zhrnn.counts import Counts, Mixed, histories
from zhrnn.generation.score import score_text
from zhrnn.model import CharRNN, ModelConfig
from zhrnn.training import fit as train

from .conftest import POEMS, TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from kneser_ney import KneserNey  # noqa: E402  the reference: dicts, one probability at a time

# with a held-out part, so the weights are fitted and --ngram auto counts
COUNTED = dict(TINY, val_fraction=0.2, iters=60, save_freq=30)


def _stream(n=3000, vocab=40, seed=0):
    rng = np.random.default_rng(seed)
    phrase = rng.integers(0, vocab, 6)
    ids = rng.integers(0, vocab, n)
    for at in range(0, n - 6, 37):  # a phrase that recurs, so long contexts have counts above one
        ids[at : at + 6] = phrase
    return ids


def test_the_arrays_give_the_reference_kneser_ney():
    ids, V = _stream(), 45  # five ids never seen
    reference, counts = KneserNey(list(ids), 4, V), Counts.build(ids, V, order=4)
    rng = np.random.default_rng(1)
    history = np.stack([ids[i : i + 3] for i in rng.integers(0, len(ids) - 3, 30)] +
                       [rng.integers(0, V, 3) for _ in range(10)] + [np.array([-1, -1, 7]), np.array([-1, -1, -1])])
    p, _ = counts.distributions(history)
    for row in range(len(history)):  # one history alone (a sampling step's path) as in the batch
        assert np.allclose(counts.distributions(history[row : row + 1])[0][0], p[row], rtol=1e-5, atol=1e-8)
    for row, h in enumerate(history):
        known = tuple(int(t) for t in h if t >= 0)
        for token in (0, 3, int(ids[5]), V - 1):
            assert p[row, token] == pytest.approx(reference.prob(known, token), rel=1e-4, abs=1e-7)
    targets = rng.integers(0, V, len(history))
    one, _ = counts.target_probs(history, targets)
    assert one == pytest.approx(p[np.arange(len(history)), targets].astype(np.float64), rel=1e-5)


def test_every_distribution_sums_to_one_even_pruned_and_after_unseen_tokens():
    ids, V = _stream(20_000, vocab=300), 320
    sizes = []
    for max_bytes in (10**9, 3_000):  # whole, and pruned as hard as it goes
        counts = Counts.build(ids, V, order=5, max_bytes=max_bytes)
        sizes.append(counts.num_entries())
        history = np.random.default_rng(2).integers(-1, V, (200, 4))  # unseen ids 300..319, and none (-1)
        history[:100] = np.stack([ids[i : i + 4] for i in range(0, 10_000, 100)])
        p, known = counts.distributions(history)
        assert np.allclose(p.sum(1), 1, atol=1e-5) and (p > 0).all()
        assert known.min() >= 0 and known.max() == 4
    assert sizes[1] < sizes[0] / 2


def test_the_mixture_is_a_distribution_over_the_whole_vocabulary(trained):
    model = zhrnn.load(trained.run_dir)
    tok = model.tokenizer
    ids = tok.encode(POEMS).astype(np.int64)
    counts = Counts.build(ids, len(tok), order=5)
    mixed = Mixed(model.model, counts, [0.3, 0.5, 0.6, 0.7, 0.8])
    first = torch.tensor([[tok.marker_id, tok.unk_id, 0]])  # the marker, an unknown character, a label slot
    logp, hidden = mixed(first)
    nxt, _ = mixed(torch.tensor([[len(tok) - 1]]), hidden)
    for out in (logp, nxt):
        assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:2]), atol=1e-4)
    # read in pieces with the state carried, the same as in one go
    whole, _ = mixed(torch.from_numpy(ids[None, :40]))
    part, h = mixed(torch.from_numpy(ids[None, :17]))
    rest, _ = mixed(torch.from_numpy(ids[None, 17:40]), h)
    assert torch.allclose(torch.cat([part, rest], 1), whole, atol=1e-5)
    # one token at a time (a sampling step: its own short path), one stream or two, the same again
    for rows in (1, 2):
        steps, h = [], None
        for i in range(40):
            out, h = mixed(torch.from_numpy(ids[None, i : i + 1]).repeat(rows, 1), h)
            steps.append(out[:1])
        assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)
    # the target path (scoring, validation) agrees with the full distributions
    y = torch.from_numpy(ids[None, 1:41])
    nats, _ = mixed(torch.from_numpy(ids[None, :40]), targets=y)
    assert torch.allclose(nats, -whole[0].gather(1, y[0, :, None]).squeeze(1), atol=1e-4)


def test_the_counts_find_what_a_barely_trained_network_does_not(tmp_path):
    rng = random.Random(0)
    filler = "春夏秋冬山水风云日月花鸟虫鱼江河湖海"
    lines = []
    for _ in range(400):  # after 天地玄 always 黄, elsewhere characters at random
        line = "".join(rng.choice(filler) for _ in range(rng.randint(3, 12)))
        cut = rng.randint(0, len(line))
        lines.append(line[:cut] + "天地玄黄" + line[cut:])
    corpus = tmp_path / "四字.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(tmp_path / "run"), **dict(COUNTED, iters=3, save_freq=3))
    mixed, net = zhrnn.load(result.run_dir), TextModel.from_checkpoint(result.run_dir, counts=False)
    assert isinstance(mixed.model, Mixed) and isinstance(net.model, CharRNN)
    x = torch.from_numpy(mixed.tokenizer.encode("^春天地玄").astype(np.int64)[None])
    yellow = mixed.tokenizer.index["黄"]
    p_mixed = mixed.model(x)[0][0, -1].exp()[yellow].item()
    p_net = net.model(x)[0][0, -1].log_softmax(-1).exp()[yellow].item()
    assert p_net < 0.2 < 0.8 < p_mixed


def test_counts_are_saved_exported_and_loaded_to_the_same_scores(tmp_path):
    corpus = tmp_path / "诗.txt"
    corpus.write_text(POEMS * 20, encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(tmp_path / "run"), **COUNTED)
    record = json.loads((result.run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["mix_val_text_bpc"] < record["val_text_bpc"]  # the counts help on a text that repeats
    assert record["mix_val_text_bpc"] <= record["counts_val_text_bpc"] + 0.05  # and the mixture is not worse than them
    run = zhrnn.load(result.run_dir)
    state = checkpoint.load(result.run_dir / "best.pt")
    assert state["best"]["mix_val_text_bpc"] == pytest.approx(min(
        json.loads(line)["mix_val_text_bpc"] for line in (result.run_dir / "log.jsonl").read_text().splitlines()))
    exported = checkpoint.export(result.run_dir, tmp_path / "small.pt", half=False)
    again = zhrnn.load(exported)
    assert isinstance(again.model, Mixed)
    text = "春眠不觉晓，处处闻啼鸟。\n白日依山尽，黄河入海流。\n"
    first = score_text(run.model, run.tokenizer, text, run.info["corpus_config"])
    second = score_text(again.model, again.tokenizer, text, again.info["corpus_config"])
    assert first.bits == pytest.approx(second.bits, rel=1e-6)
    alone = score_text(TextModel.from_checkpoint(exported, counts=False).model, run.tokenizer, text,
                       run.info["corpus_config"])
    assert first.bits < alone.bits  # the text was trained on: the counts know it by heart


def test_ngram_off_is_the_network_exactly(tmp_path):
    corpus = tmp_path / "诗.txt"
    corpus.write_text(POEMS * 20, encoding="utf-8")
    logs = {}
    for ngram in ("auto", "off"):
        result = train(corpus, progress=False, out_dir=str(tmp_path / ngram), ngram=ngram, **COUNTED)
        logs[ngram] = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
        assert ("counts" in checkpoint.load(result.run_dir / "ckpt.pt") and
                checkpoint.load(result.run_dir / "ckpt.pt")["counts"] is not None) == (ngram == "auto")
    for on, off in zip(logs["auto"], logs["off"]):
        assert on["val_bpc"] == off["val_bpc"] and on["train_loss"] == off["train_loss"]
        assert "mix_val_bpc" in on and "mix_val_bpc" not in off
    assert isinstance(zhrnn.load(tmp_path / "off").model, CharRNN)


def test_a_resumed_run_keeps_its_counts(tmp_path):
    corpus = tmp_path / "诗.txt"
    corpus.write_text(POEMS * 20, encoding="utf-8")
    first = train(corpus, progress=False, out_dir=str(tmp_path / "run"), **COUNTED)
    before = checkpoint.load(first.run_dir / "ckpt.pt")["counts"]
    train(corpus, resume=first.run_dir, progress=False, iters=90)
    after = checkpoint.load(first.run_dir / "ckpt.pt")["counts"]
    for a, b in zip(before["levels"], after["levels"]):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_adds_counts_to_a_model_trained_without_them(tmp_path):
    corpus = tmp_path / "诗.txt"
    corpus.write_text(POEMS * 20, encoding="utf-8")
    result = train(corpus, progress=False, out_dir=str(tmp_path / "run"), ngram="off", **COUNTED)
    out = tmp_path / "counted.pt"
    assert cli_main(["export", str(result.run_dir), "-o", str(out), "--counts", str(corpus),
                     "--credits", "唐诗选 (公有领域)"]) == 0
    state = checkpoint.load(out)
    assert state["counts"]["order"] == 5 and len(state["counts"]["weights"]) == 5
    loaded = zhrnn.load(out)
    assert isinstance(loaded.model, Mixed) and loaded.info["credits"] == "唐诗选 (公有领域)"
    assert isinstance(zhrnn.load(out, counts=False).model, CharRNN)  # zhrnn sample --no-counts


def test_histories_are_the_tokens_before_each_next_one():
    stream = torch.tensor([[1, 2, 3, 4]])
    assert histories(stream, 3).tolist() == [[[-1, 1], [1, 2], [2, 3], [3, 4]]]
    assert histories(stream[:, 2:], 3, before=torch.tensor([[1, 2]])).tolist() == [[[2, 3], [3, 4]]]
    model = CharRNN(ModelConfig(vocab_size=10, hidden_size=8, embedding_size=4, num_layers=1))
    assert histories(stream, 1).shape == (1, 4, 0) and model.config.vocab_size == 10
