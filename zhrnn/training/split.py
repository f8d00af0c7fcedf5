"""Which of the text trains and which validates.

    paragraphs (default)  whole paragraphs held out, spread through the text: a paragraph is
                          held out when a hash of its text falls under val_fraction, so the choice
                          depends on the paragraph alone and copies of one paragraph share a side.
                          Near-twins share a side too: a held-out paragraph trains instead when half
                          or more of its clauses occur in training paragraphs, or half or more of a
                          training paragraph's clauses occur in it (全唐诗 repeats poems under several
                          authors with a word changed, and quotes couplets of longer poems), repeated
                          until nothing moves. Appended text can only move held-out paragraphs into
                          training (when it brings their near-twins), never the other way.
    tail                  the last val_fraction of the text (the only choice for a text of one
                          paragraph, and what runs from before the paragraph split used)

Validation then reads held-out paragraphs, training draws its windows from the others; neither
window crosses into the other side, since each side is its own array.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, CorpusError
from ..text.tokenizer import Tokenizer

log = logging.getLogger(__name__)

SPLITS = ("paragraphs", "tail")
CLAUSE = re.compile(r"[^\n，。？！；：、,.?!;:]{4,}")  # between punctuation, four characters or more: what near-twins share
NEAR_TWIN = 0.5  # share of one paragraph's clauses found in another that makes them near-twins


@dataclass
class Split:
    train: np.ndarray  # (N_train,) ids
    val: np.ndarray | None  # None when the text is too short to spare a validation part
    method: str = "tail"  # the one that was used: paragraphs falls back to tail on a text of too few paragraphs
    held_out: int = 0  # paragraphs held out (paragraphs method)
    near_twins: int = 0  # paragraphs drawn for validation that train instead
    copies: int = 0  # paragraphs whose text an earlier one already has (each stays on its original's side)

    def describe(self) -> str:
        if self.val is None:
            return "no validation part (the text is too short)"
        share = len(self.val) / (len(self.val) + len(self.train))
        if self.method == "tail":
            return f"validation: the last {share:.1%} of the text"
        return (f"validation: {self.held_out:,} paragraphs spread through the text ({share:.1%} of it); "
                f"{self.copies:,} paragraphs repeat an earlier one and stay on its side, {self.near_twins:,} drawn "
                "paragraphs train instead, sharing half their clauses or more with training text")


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by the text alone (the same on every machine and in every run)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big") / 2**64


def split_ids(ids: np.ndarray, seq_length: int, val_fraction: float, method: str = "tail",
              tokenizer: Tokenizer | None = None) -> Split:
    """The training and validation ids of a text (see the module's doc). The paragraphs method
    needs the tokenizer (to find paragraphs and read their text)."""
    if method not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {method!r}")
    need = seq_length + 1
    if len(ids) < need + 1:
        raise CorpusError(
            f"the text has {len(ids)} tokens, fewer than --seq-length {seq_length} + 2; "
            "use a longer text or a smaller --seq-length"
        )
    if method == "paragraphs" and val_fraction > 0 and tokenizer is not None and tokenizer.marker_id is not None:
        split = _by_paragraph(ids, need, val_fraction, tokenizer)
        if split is not None:
            return split
    n_val = int(len(ids) * val_fraction)
    if n_val < need or len(ids) - n_val < need + 1:
        return Split(ids, None)
    return Split(ids[:-n_val], ids[-n_val:])


def _by_paragraph(ids: np.ndarray, need: int, val_fraction: float, tokenizer: Tokenizer) -> Split | None:
    """None when it cannot give both sides a window (a text of too few paragraphs)."""
    starts = np.flatnonzero(np.asarray(ids) == tokenizer.marker_id)  # (P,) where each paragraph begins
    if len(starts) < 2:
        return None
    bounds = np.append(starts, len(ids))  # anything before the first marker trains
    # the text alone: labelled or not, whatever the marker, a paragraph is drawn alike
    layout = {ord(token): None for token in [*tokenizer.labels.values(), tokenizer.marker]}
    texts = [tokenizer.decode(ids[a:b]).translate(layout) for a, b in zip(bounds[:-1], bounds[1:])]
    drawn = np.array([_unit(t) < val_fraction for t in texts])  # (P,)
    held = _without_near_twins(texts, drawn)
    lengths = np.diff(bounds)  # (P,)
    is_val = np.zeros(len(ids), dtype=bool)
    is_val[starts[0]:] = np.repeat(held, lengths)
    n_val = int(is_val.sum())
    if n_val < need or len(ids) - n_val < need + 1:
        return None
    return Split(ids[~is_val], ids[is_val], "paragraphs", int(held.sum()), int(drawn.sum() - held.sum()),
                 len(texts) - len(set(texts)))


def _without_near_twins(texts: list[str], drawn: np.ndarray) -> np.ndarray:
    """(P,) bool: the drawn paragraphs that stay held out once near-twins of training text train."""
    clauses = [{hash(c) for c in CLAUSE.findall(t)} for t in texts]  # hash(): compared within this process only
    held = drawn.copy()
    while True:
        in_training = {c for i in np.flatnonzero(~held) for c in clauses[i]}
        where_held: dict[int, list[int]] = {}  # clause -> the held paragraphs that have it
        for i in np.flatnonzero(held):
            for c in clauses[i]:
                where_held.setdefault(c, []).append(i)
        moved = {i for i in np.flatnonzero(held)
                 if clauses[i] and len(clauses[i] & in_training) >= NEAR_TWIN * len(clauses[i])}
        for j in np.flatnonzero(~held):  # a training paragraph quoting half or more of itself from a held one
            hits: dict[int, int] = {}
            for c in clauses[j]:
                for i in where_held.get(c, ()):
                    hits[i] = hits.get(i, 0) + 1
            moved.update(i for i, n in hits.items() if n >= NEAR_TWIN * len(clauses[j]))
        if not moved:
            return held
        held[list(moved)] = False
