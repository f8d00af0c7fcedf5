"""The train/validation split: whole paragraphs spread through the text, fixed by their text,
near-twins on one side, the tail for what has too few paragraphs, and old runs kept on the tail."""
import random

import numpy as np

from zhrnn import checkpoint
from zhrnn.text.pipeline import CorpusConfig, prepare
from zhrnn.text.tokenizer import CharTokenizer
from zhrnn.training.plan import plan_run
from zhrnn.training.split import split_ids

HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def poems(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    clause = lambda: "".join(rng.choice(HAN) for _ in range(5))  # noqa: E731
    return [f"{clause()}，{clause()}。{clause()}，{clause()}。" for _ in range(n)]


def encoded(lines: list[str]):
    text = prepare("\n".join(lines)).text
    tok = CharTokenizer.build(text + "".join(HAN))  # one vocabulary for every text here
    return tok, tok.encode(text)


def paragraphs(ids, tok) -> list[str]:
    return [p for p in tok.decode(ids).split("^") if p]


def test_whole_paragraphs_spread_through_the_text_are_held_out():
    lines = poems(400)
    tok, ids = encoded(lines)
    split = split_ids(ids, 20, 0.1, "paragraphs", tok)
    val, train = paragraphs(split.val, tok), paragraphs(split.train, tok)
    assert split.method == "paragraphs" and split.held_out == len(val) and 20 <= len(val) <= 65
    assert sorted(val + train) == sorted(line + "\n" for line in lines)  # whole paragraphs, each on one side
    where = [lines.index(p.rstrip("\n")) for p in val]
    assert min(where) < 100 and max(where) > 300  # from all through the text, not its tail
    assert len(split.val) + len(split.train) == len(ids)


def test_the_held_out_paragraphs_stay_held_out_when_text_is_appended():
    lines = poems(400)
    tok, ids = encoded(lines)
    before = set(paragraphs(split_ids(ids, 20, 0.1, "paragraphs", tok).val, tok))
    tok, more = encoded(lines + poems(200, seed=1))
    after = set(paragraphs(split_ids(more, 20, 0.1, "paragraphs", tok).val, tok))
    assert before and before <= after  # the old ones stay (none of the new poems is a near-twin)


def test_copies_and_near_twins_never_straddle_the_split():
    lines = poems(400)
    tok, ids = encoded(lines)
    held = paragraphs(split_ids(ids, 20, 0.1, "paragraphs", tok).val, tok)[0].rstrip("\n")
    twin = "錯" + held[1:]  # one character changed: three of its four clauses are the same
    tok, ids = encoded(lines + [held, held, twin])
    split = split_ids(ids, 20, 0.1, "paragraphs", tok)
    val, train = paragraphs(split.val, tok), paragraphs(split.train, tok)
    side = val if held + "\n" in val else train
    assert side.count(held + "\n") == 3 and twin + "\n" in side  # copies and the twin: one side
    # the twin was not drawn (its own hash), so it trains, and so does the poem it nearly copies
    assert side is train and split.near_twins >= 1
    assert split.copies == 2 and "2 paragraphs repeat an earlier one" in split.describe()


def test_a_text_of_too_few_paragraphs_validates_on_its_tail():
    tok, ids = encoded(poems(1) * 40)  # one paragraph, forty times: held out whole or not at all
    split = split_ids(ids, 20, 0.1, "paragraphs", tok)
    assert split.method == "tail" and len(split.val) == int(len(ids) * 0.1)
    assert np.array_equal(split.val, ids[-len(split.val):])


def test_a_run_from_before_the_paragraph_split_resumes_on_its_tail(trained, monkeypatch):
    state = checkpoint.load(trained.checkpoint)
    assert "split" in state["train_config"]  # what runs record now
    del state["train_config"]["split"]
    old = trained.run_dir.parent / "old" / checkpoint.FILENAME
    checkpoint.save(state, old)
    plan = plan_run(trained.run_dir.parent / "诗.txt", {"iters": 400}, resume=old)
    assert plan.cfg.split == "tail"


def test_a_labelled_text_holds_out_the_same_paragraphs_as_the_text_alone():
    lines = poems(300)
    plain = prepare("\n".join(lines)).text
    labelled = prepare("\n".join(f"{'李白' if i % 2 else '杜甫'}\t{line}" for i, line in enumerate(lines)),
                       CorpusConfig(labels=True, label_min_count=1))
    tok = CharTokenizer.build(plain + labelled.text, labels=labelled.labels)
    a = split_ids(tok.encode(plain), 20, 0.1, "paragraphs", tok)
    b = split_ids(tok.encode(labelled.text), 20, 0.1, "paragraphs", tok)
    shown = lambda split: [p.translate({ord(t): None for t in labelled.labels.values()})  # noqa: E731
                           for p in paragraphs(split.val, tok)]
    assert shown(a) == shown(b) and a.held_out == b.held_out > 0


def held_out_of(lines: list[str]) -> list[str]:
    tok, ids = encoded(lines)
    return [p.rstrip("\n") for p in paragraphs(split_ids(ids, 20, 0.1, "paragraphs", tok).val, tok)]


def test_a_quoted_couplet_or_half_the_clauses_make_a_near_twin():
    lines = poems(400)
    held = held_out_of(lines)
    a, b = held[0], held[1]
    couplet = a[: a.index("。") + 1]  # a training line that quotes the first couplet of a held poem
    half = b[:12] + "".join(reversed(b[12:]))  # the same first two clauses, the last two changed
    for extra in ([couplet], [half]):
        again = held_out_of(lines + extra)
        assert (a if extra == [couplet] else b) not in again  # it trains now, beside its near-twin
    assert set(held_out_of(lines + [couplet, half])) <= set(held)


def test_text_before_the_first_marker_trains():
    tok, ids = encoded(poems(400))
    prefix = tok.encode("前言前言前言")
    split = split_ids(np.concatenate([prefix, ids]), 20, 0.1, "paragraphs", tok)
    assert np.array_equal(split.train[: len(prefix)], prefix) and split.method == "paragraphs"


def test_a_run_that_fell_back_to_the_tail_resumes_on_its_tail(trained):
    state = checkpoint.load(trained.checkpoint)
    assert state["corpus"]["split"]["method"] == "tail"  # val_fraction 0: there is nothing to hold out
    assert plan_run(trained.run_dir.parent / "诗.txt", {"iters": 400}, resume=trained.run_dir).cfg.split == "tail"
