"""Step-by-step generation for `zhrnn interactive`: the model side (the terminal side is
zhrnn/interactive.py)."""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..model import CharRNN, map_hidden
from ..text.render import render
from ..text.tokenizer import Tokenizer
from .config import SampleConfig, check_temperature
from .decoder import resolve_start
from .processors import NEG_INF
from .sampling import MAX_LINE, draw, line_ends, line_score


class Line(NamedTuple):
    """A candidate next line (Stepper.lines)."""
    text: str
    score: float  # log p / tokens**alpha under the model
    ids: list[int]


class Stepper:
    """Step-by-step generation for interactive use: feed text, read the next-character
    distribution, continue, undo. Every step keeps its state, so undo recomputes nothing."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, start: str = "", device="cpu", seed: int | None = None):
        self.model, self.tokenizer, self.device = model.eval(), tokenizer, torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed() if seed is None else self.generator.manual_seed(seed)
        prime = [tokenizer.marker_id] if tokenizer.marker_id is not None else [tokenizer.unk_id + 1]
        self.states: list[tuple[list[int], torch.Tensor, object]] = []  # (ids after the prime, logits (V,), hidden)
        self.actions: list[int] = []  # how many states there were before each action: undo goes back one
        self._push(prime, None, [], keep=False)
        if start:
            self.feed(start)

    @torch.no_grad()
    def _push(self, ids: list[int], hidden, before: list[int], keep: bool = True) -> None:
        logits, hidden = self.model(torch.tensor(ids, device=self.device)[None], hidden)
        self.states.append((before + ids if keep else before, logits[0, -1].float(), hidden))

    def _offered(self, logits: torch.Tensor) -> torch.Tensor:
        """The model's logits (..., V) as they are offered and drawn from: never <unk> or a label."""
        logits = logits.clone()
        logits[..., [self.tokenizer.unk_id, *self.tokenizer.label_ids]] = NEG_INF
        return logits

    @torch.no_grad()
    def lines(self, k: int, temperature: float = 0.8) -> list[Line]:
        """Up to k different next lines, drawn as one batch of k and scored as --candidates scores
        them (log p / tokens**alpha under the model), the most probable first. A line ends at a
        clause mark or a line break. Nothing is added: take() the one chosen."""
        check_temperature(temperature)
        _, logits, hidden = self.states[-1]
        logits = logits.expand(k, -1)  # (k, V)
        hidden = map_hidden(hidden, lambda h: h.expand(-1, k, -1).contiguous())  # (L, k, H)
        ends = line_ends(tuple(self.tokenizer.vocab), self.tokenizer.marker_id).to(self.device)
        drafts: list[list[int]] = [[] for _ in range(k)]
        logp = torch.zeros(k, device=self.device)
        open_ = torch.ones(k, dtype=torch.bool, device=self.device)  # rows still writing their line
        for _ in range(MAX_LINE):
            tokens = draw((self._offered(logits) / temperature).softmax(-1), self.generator)  # (k,)
            logp += torch.where(open_, logits.log_softmax(-1).gather(1, tokens[:, None]).squeeze(1), 0.0)
            for row in open_.nonzero().flatten().tolist():
                drafts[row].append(int(tokens[row]))
            open_ &= ~ends[tokens]
            if not open_.any():
                break
            logits, hidden = self.model(tokens[:, None], hidden)
            logits = logits[:, -1].float()  # (k, V)
        alpha = SampleConfig.length_alpha
        found = {tuple(ids): Line(render(self.tokenizer.decode(ids), self.tokenizer.marker, blocks=self.tokenizer.blocks),
                                  line_score(total, len(ids), alpha), ids)
                 for ids, total in zip(drafts, logp.tolist())}
        return sorted(found.values(), key=lambda line: -line.score)

    def feed(self, text: str) -> None:
        """Append text (refused with VocabularyError if the model cannot read it)."""
        self.take(self.tokenizer.encode(resolve_start(text, self.tokenizer, "text")).tolist())

    def read(self, text: str) -> None:
        """Append text as one action and one state, in one forward pass: for a caller that never
        undoes inside it (the server reads a whole text so far), at the cost of one step's state,
        not one per character."""
        ids = self.tokenizer.encode(resolve_start(text, self.tokenizer, "text")).tolist()
        if ids:
            self.actions.append(len(self.states))
            before, _, hidden = self.states[-1]
            self._push(ids, hidden, before)

    def take(self, tokens: list[int]) -> None:
        """Append tokens (a candidate line's ids) as one action."""
        self.actions.append(len(self.states))
        for token in tokens:
            ids, _, hidden = self.states[-1]
            self._push([token], hidden, ids)

    def top(self, n: int) -> list[tuple[str, float]]:
        """The n most likely next tokens with their probabilities."""
        probs = self._offered(self.states[-1][1]).softmax(-1)
        values, indices = probs.topk(max(1, min(n, len(probs))))
        return [(self.tokenizer.vocab[i], p) for i, p in zip(indices.tolist(), values.tolist())]

    def continue_(self, tokens: int, temperature: float = 0.8) -> None:
        check_temperature(temperature)
        self.actions.append(len(self.states))
        for _ in range(tokens):
            probs = (self._offered(self.states[-1][1]) / temperature).softmax(-1)
            token = int(draw(probs[None], self.generator))
            ids, _, hidden = self.states[-1]
            self._push([token], hidden, ids)

    def undo(self) -> bool:
        """Take back the last action (a choice, a typed text, a continuation) as a whole."""
        if not self.actions:
            return False
        del self.states[self.actions.pop():]
        return True

    @property
    def text(self) -> str:
        return render(self.tokenizer.decode(self.states[-1][0]), self.tokenizer.marker, blocks=self.tokenizer.blocks)
