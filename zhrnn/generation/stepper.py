"""Step-by-step generation for `zhrnn interactive` and the page's next-character offers: the
model side (the terminal side is zhrnn/interactive.py).

It runs on the request path of sample(): one Request (its processors, their state, the one
rendering rule) with the same SampleConfig, so offers, continuations and candidate lines keep
the no-repeat rule, a form, a label and the temperature exactly as `zhrnn sample` would.
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import torch

from ..model import CharRNN, evaluating, map_hidden
from ..text.layout import Layout
from ..text.tokenizer import Tokenizer
from .config import MAX_LENGTH, SampleConfig
from .request import Request, resolve_start
from .sampling import LineChoice, MAX_LINE, choose, generator, line_score


class Line(NamedTuple):
    """A candidate next line (Stepper.lines)."""
    text: str
    score: float  # log p / tokens**alpha under the model
    ids: list[int]


class State(NamedTuple):
    """The text after one step: its ids after the prime, the model's logits (V,) for what comes
    next, and the recurrent state."""
    ids: list[int]
    logits: torch.Tensor
    hidden: object


class Stepper:
    """Step-by-step generation for interactive use: feed text, read the next-character
    distribution, continue, undo. Every step keeps its model state, so undo runs no model."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, start: str = "", cfg: SampleConfig | None = None,
                 device="cpu", layout: Layout | None = None):
        # no length limit: the writer goes on as long as the user does (a form still ends its poem)
        self.cfg = replace(cfg or SampleConfig(), length=MAX_LENGTH, num_paragraphs=None, stop=None)
        self.model, self.tokenizer, self.device, self.layout = model, tokenizer, torch.device(device), layout
        self.generator = generator(self.cfg, self.device)
        self.request = self._request([])
        self.states: list[State] = []
        self.actions: list[int] = []  # how many states there were before each action: undo goes back one
        self._push(self.request.prime, None, [], keep=False)
        if start:
            self.feed(start)

    def _request(self, ids: list[int]) -> Request:
        """The request of the text so far: its prime (marker, label), then ids as if written. A
        start text is typed, so that undo can take it back; a form counts it in the poem."""
        request = Request(self.tokenizer, "", self.cfg, 1, self.device, self.layout)
        for token in ids:
            request.append(0, token)
        return request

    @torch.no_grad()
    def _push(self, ids: list[int], hidden, before: list[int], keep: bool = True) -> None:
        """Run ids through the model after `before` and keep the state; a paragraph marker brings
        its --label after it in the same state (a label is given, never chosen: the one rule the
        prime and PlaceLabels follow)."""
        if keep and self.request.label_id is not None and ids and ids[-1] == self.tokenizer.marker_id:
            ids = ids + [self.request.label_id]
        with evaluating(self.model):
            logits, hidden = self.model(torch.tensor(ids, device=self.device)[None], hidden)
        self.states.append(State(before + ids if keep else before, logits[0, -1].float(), hidden))
        if keep:
            for token in ids:
                self.request.append(0, token)

    @property
    def step(self) -> int:
        return len(self.request.streams[0].tokens)

    @property
    def done(self) -> bool:
        """A form's poem is complete."""
        return self.request.streams[0].done

    def top(self, n: int) -> list[tuple[str, float]]:
        """The n most likely next tokens that are text (not a label or the <unk>) and that the
        request's rules allow, with their probabilities after those rules (before temperature)."""
        logits = self.request.process(self.states[-1].logits[None], self.step)[0]  # (V,)
        logits[self.tokenizer.label_ids] = float("-inf")  # a label is given, never chosen
        probs = logits.softmax(-1)
        values, indices = probs.topk(max(1, min(n, len(probs))))
        return [(self.tokenizer.vocab[i], p) for i, p in zip(indices.tolist(), values.tolist()) if p > 0]

    @torch.no_grad()
    def lines(self, k: int) -> list[Line]:
        """Up to k different next lines, drafted as one batch of k as --candidates drafts them (the
        same rules, the model's own log p / tokens**alpha to rank), the most probable first. A line
        ends at a clause mark or a line break. Nothing is added: take() the one chosen."""
        state = self.states[-1]
        drafts = self.request.fork([0] * k)
        chooser = LineChoice(self.tokenizer, k, k, self.cfg.length_alpha, self.device)
        logits = state.logits.expand(k, -1)  # (k, V)
        hidden = map_hidden(state.hidden, lambda h: h.expand(-1, k, -1).contiguous())  # (L, k, H)
        begun = len(drafts.streams[0].shown)
        with evaluating(self.model):
            for i in range(MAX_LINE):
                tokens = choose(drafts, logits, self.step + i, self.generator)  # (k,)
                moved = [not (waiting or stream.done) for waiting, stream in zip(chooser.waiting, drafts.streams)]
                for row in (r for r, m in enumerate(moved) if m):
                    drafts.append(row, int(tokens[row]))
                chooser.record(logits, tokens, moved, drafts.done)
                if all(chooser.waiting):
                    break
                logits, hidden = self.model(tokens[:, None], hidden)
                logits = logits[:, -1].float()  # (k, V)
        found = {}
        for row, (logp, n) in enumerate(zip(chooser.logp.tolist(), chooser.tokens)):
            ids = drafts.streams[row].tokens[self.step:]
            if ids:
                found[tuple(ids)] = Line(drafts.streams[row].shown[begun:], line_score(logp, n, self.cfg.length_alpha), ids)
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

    def continue_(self, tokens: int) -> None:
        """Let the model write up to `tokens` more (a form stops at its end), as one action."""
        self.actions.append(len(self.states))
        for _ in range(tokens):
            if self.done:
                break
            ids, logits, hidden = self.states[-1]
            token = int(choose(self.request, logits[None], self.step, self.generator)[0])
            self._push([token], hidden, ids)

    def undo(self) -> bool:
        """Take back the last action (a choice, a typed text, a continuation) as a whole."""
        if not self.actions:
            return False
        del self.states[self.actions.pop():]
        self.request = self._request(self.states[-1].ids)  # the rules' memory of the text, rebuilt
        return True

    @property
    def text(self) -> str:
        return self.request.streams[0].shown
