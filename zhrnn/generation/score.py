"""How surprised a model is by a text: bits per character overall, and each character's surprise
(-log2 p), with an HTML heat map of it: what the network has learned, made visible."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import torch

from ..model import CharRNN, evaluating
from ..text.pipeline import CorpusConfig, load_corpus, prepare
from ..text.layout import Layout
from ..text.tokenizer import Tokenizer


@dataclass
class Score:
    pieces: list[str] = field(default_factory=list)  # the text, one entry per predicted token
    bits: list[float] = field(default_factory=list)  # surprise of each piece, in bits
    chars: int = 0  # characters predicted (the marker counts as one, as in training)
    unknown: int = 0  # characters the vocabulary lacks (scored as <unk>)

    @property
    def bpc(self) -> float:
        return sum(self.bits) / max(1, self.chars)


def _text_config(corpus_cfg: dict | None, encoding: str | None = None) -> CorpusConfig:
    """The model's own text options (markers, conversion), read with this file's encoding."""
    return CorpusConfig(**{**(corpus_cfg or {}), "encoding": encoding})


def score_text(model: CharRNN, tokenizer: Tokenizer, text: str, corpus_cfg: dict | None = None,
               device="cpu", chunk: int = 4096) -> Score:
    """Score a string prepared exactly as the model's training text was (markers, conversion)."""
    prepared = prepare(text, _text_config(corpus_cfg), labels=tokenizer.labels).text
    return score_prepared(model, tokenizer, prepared, device, chunk)


def score_files(model: CharRNN, tokenizer: Tokenizer, paths, corpus_cfg: dict | None = None,
                encoding: str | None = None, device="cpu", chunk: int = 4096) -> Score:
    """Score files read and prepared exactly as the model's training text was."""
    prepared = load_corpus(paths, _text_config(corpus_cfg, encoding), labels=tokenizer.labels).text
    return score_prepared(model, tokenizer, prepared, device, chunk)


@torch.no_grad()
def score_prepared(model: CharRNN, tokenizer: Tokenizer, prepared: str, device="cpu", chunk: int = 4096) -> Score:
    """Score text that the pipeline has prepared (markers in place)."""
    ids = torch.from_numpy(tokenizer.encode(prepared).astype("int64")).to(device)  # (N,)
    lengths = tokenizer.char_lengths()
    out = Score(unknown=sum(1 for ch in prepared if ch not in tokenizer.index))
    with evaluating(model):
        hidden = None
        for begin in range(0, len(ids) - 1, chunk):  # carry the state across chunks: one pass, any length
            x = ids[begin : begin + chunk][None]  # (1, c)
            y = ids[begin + 1 : begin + chunk + 1]  # (c',)
            # the targets' nats alone: no (c', V) logits (with counts mixed in, no (c', V) distributions)
            nats, hidden = model(x[:, : len(y)], hidden, targets=y[None])  # (c',)
            for token, bits in zip(y.tolist(), (nats / math.log(2)).tolist()):
                if lengths[token]:  # a context label is given, not text: not scored
                    out.bits.append(bits)
                    out.pieces.append(tokenizer.vocab[token])
                    out.chars += int(lengths[token])
    return out


def shown(score: Score, layout: Layout) -> list[tuple[str, float]]:
    """Each scored piece as the model's text shows it (markers rendered, by the one rule) with its bits."""
    renderer = layout.renderer()
    return [(renderer.feed(piece), bits) for piece, bits in zip(score.pieces, score.bits)]


def heatmap_html(score: Score, layout: Layout, title: str = "zhrnn score") -> str:
    """A self-contained page: each character shaded by its surprise, the bits on hover."""
    top = max(score.bits, default=1.0) or 1.0
    spans = []
    for piece, bits in shown(score, layout):
        alpha = min(1.0, bits / top)
        for i, part in enumerate(piece.split("\n")):
            if i:
                spans.append("<br>\n")
            if part:
                spans.append(f'<span title="{bits:.2f} bits" style="background:rgba(220,40,40,{alpha:.2f})">'
                             f"{html.escape(part)}</span>")
    return (
        "<!doctype html><html lang=\"zh\"><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:20px/1.8 serif;max-width:48em;margin:2em auto}span{padding:0 1px}</style>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{score.bpc:.3f} bits per character over {score.chars} characters; "
        f"{score.unknown} unknown to the model. Redder is more surprising; hover for bits.</p>"
        f"<p>{''.join(spans)}</p></html>\n"
    )
