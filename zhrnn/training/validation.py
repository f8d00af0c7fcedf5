"""How a run is measured: its held-out streams, the network's bits per character on them, and,
with counts, the mixture's, whose weights are fitted here. The trainer evaluates with it at every
save; `zhrnn export --counts` measures a finished model with it."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from .batches import eval_streams
from .distributed import Dist
from ..counts import MIN_FITTED, Counts, fit_weights, histories, mixed_nats
from ..model import CharRNN, evaluating
from ..text.tokenizer import Tokenizer


@dataclass
class Evaluation:
    """Validation bits per character (over every target but labels: val; text characters alone:
    text_val) of the network, and with the counts mixed in (mix_val, mix_text_val: each half of
    the streams scored with the weights fitted on the other half, so no target weighs itself),
    and of the counts alone (the Kneser-Ney floor the network is measured against)."""
    val: float
    text_val: float
    mix_val: float | None = None
    mix_text_val: float | None = None
    counts_val: float | None = None
    counts_text_val: float | None = None

    @property
    def headline(self) -> float:
        """What the saved model gives: the mixture's bits per text character, where there is one."""
        return self.text_val if self.mix_text_val is None else self.mix_text_val


@torch.no_grad()
def target_nats(model: CharRNN, rows: torch.Tensor, seq_length: int, autocast=contextlib.nullcontext) -> torch.Tensor:
    """Nats of each target of rows (s, L+1) (eval_streams), read seq_length tokens at a time with
    the hidden state carried: (s, L), float64. How the rows are cut into chunks does not change it."""
    if not rows.size(0):  # a process with no row of its own (more processes than rows)
        return rows.new_zeros(0, rows.size(1) - 1, dtype=torch.float64)
    hidden, out = None, []
    with evaluating(model):
        for begin in range(0, rows.size(1) - 1, seq_length):
            y = rows[:, begin + 1 : begin + seq_length + 1]  # (s, t)
            with autocast():
                nats, hidden = model(rows[:, begin : begin + y.size(1)], hidden, targets=y)  # (s*t,)
            out.append(nats.double().view(y.shape))  # (s, t)
    return torch.cat(out, 1)


class Validation:
    """The held-out streams of a run (eval_streams: the same every evaluation, this process's
    share under torchrun) and what a model scores on them."""

    def __init__(self, val_ids: np.ndarray, seq_length: int, eval_tokens: int, tokenizer: Tokenizer,
                 device: torch.device, dist: Dist | None = None, counts: Counts | None = None):
        self.dist, self.seq_length, self.device, self.counts = dist or Dist(), seq_length, device, counts
        self.rows = eval_streams(val_ids, seq_length, eval_tokens, rank=self.dist.rank,
                                 world=self.dist.world).to(device)  # (s, L+1)
        self.vocab_size = len(tokenizer)
        self.char_len = torch.from_numpy(tokenizer.char_lengths()).to(device)  # (V,) characters of each token
        self.text_len = torch.from_numpy(tokenizer.text_lengths()).to(device)  # (V,) text characters of each
        self._counted = None  # P(target) under the counts and the context length they know: (s, L) each

    @torch.no_grad()
    def __call__(self, model: CharRNN, autocast=contextlib.nullcontext) -> tuple[Evaluation, torch.Tensor | None]:
        """The figures of model (the network alone), two ways: over every target but context
        labels (markers and line breaks included: val_bpc, as logged from the start), and over
        the text's characters alone (markers, line breaks and labels excluded: val_text_bpc);
        with counts, the mixture's too, and its weights fitted on all the streams."""
        nats = target_nats(model, self.rows, self.seq_length, autocast)  # (s, L)
        ev = Evaluation(*self.bpc(nats))
        if self.counts is None:
            return ev, None
        mixed, weights = self._mixture(nats)
        ev.mix_val, ev.mix_text_val = self.bpc(mixed)
        ev.counts_val, ev.counts_text_val = self.bpc(-torch.log(self._counted[0]))
        return ev, weights

    def bpc(self, nats: torch.Tensor) -> tuple[float, float]:
        """Bits per character of the targets' nats (s, L), summed over the processes: over every
        target but labels, and over text characters alone."""
        targets = self.rows[:, 1:]  # (s, L)
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)  # nats, characters: all, text
        # a label token is not text: its prediction is not counted (so BPC compares with unlabelled runs)
        for i, lengths in enumerate((self.char_len, self.text_len)):
            length = lengths[targets]  # (s, L) characters each target stands for
            totals[2 * i] += (nats * (length > 0)).sum()
            totals[2 * i + 1] += length.sum()
        nats, chars, text_nats, text_chars = self.dist.all_sum(totals).tolist()
        return nats / chars / math.log(2), text_nats / max(text_chars, 1) / math.log(2)

    def _mixture(self, nats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nats (s, L) of the targets under the mixture, each half of the streams (by their global
        index) scored with the weights fitted on the other (where each half has targets enough;
        else all with the weights of all), and the weights fitted on all."""
        rows, order, all_sum = self.rows, self.counts.order, self.dist.all_sum
        if self._counted is None:
            hist = histories(rows[:, :-1], order)  # (s, L, order-1)
            p, known = self.counts.target_probs(hist.flatten(0, 1).cpu().numpy(), rows[:, 1:].flatten().cpu().numpy())
            self._counted = (torch.from_numpy(p).to(self.device).view(nats.shape),
                             torch.from_numpy(known).to(self.device).view(nats.shape))
        p_counts, known = self._counted
        p_net, counted = torch.exp(-nats), self.char_len[rows[:, 1:]] > 0  # (s, L)
        index = self.dist.rank + self.dist.world * torch.arange(rows.size(0), device=self.device)
        odd = (index % 2 == 1)[:, None].expand_as(nats)  # (s, L)
        weights = fit_weights(p_net, p_counts, known, order, counted, all_sum)
        halves = all_sum(torch.stack([(counted & odd).sum(), (counted & ~odd).sum()]).double())
        if halves.min() < MIN_FITTED:  # one stream (a short held-out part): no half to fit the other on
            return mixed_nats(p_net, p_counts, known, weights), weights.cpu()
        w_odd = fit_weights(p_net, p_counts, known, order, counted & odd, all_sum)
        w_even = fit_weights(p_net, p_counts, known, order, counted & ~odd, all_sum)
        mixed = torch.where(odd, mixed_nats(p_net, p_counts, known, w_even), mixed_nats(p_net, p_counts, known, w_odd))
        return mixed, weights.cpu()
