"""Step-by-step generation for `zhrnn interactive`: the model side (the terminal side is
zhrnn/interactive.py)."""
from __future__ import annotations

import torch

from ..model import CharRNN
from ..text.render import render
from ..text.tokenizer import Tokenizer
from .config import check_temperature
from .decoder import resolve_start
from .processors import NEG_INF
from .sampling import draw


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
        logits = logits[0, -1].float()
        logits[[self.tokenizer.unk_id, *self.tokenizer.label_ids]] = NEG_INF  # never offered: <unk>, labels
        self.states.append((before + ids if keep else before, logits, hidden))

    def feed(self, text: str) -> None:
        """Append text (refused with VocabularyError if the model cannot read it)."""
        tokens = self.tokenizer.encode(resolve_start(text, self.tokenizer, "text")).tolist()
        self.actions.append(len(self.states))
        for token in tokens:
            ids, _, hidden = self.states[-1]
            self._push([token], hidden, ids)

    def top(self, n: int) -> list[tuple[str, float]]:
        """The n most likely next tokens with their probabilities."""
        probs = self.states[-1][1].softmax(-1)
        values, indices = probs.topk(max(1, min(n, len(probs))))
        return [(self.tokenizer.vocab[i], p) for i, p in zip(indices.tolist(), values.tolist())]

    def continue_(self, tokens: int, temperature: float = 0.8) -> None:
        check_temperature(temperature)
        self.actions.append(len(self.states))
        for _ in range(tokens):
            probs = (self.states[-1][1] / temperature).softmax(-1)
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
        return render(self.tokenizer.decode(self.states[-1][0]), self.tokenizer.marker)
