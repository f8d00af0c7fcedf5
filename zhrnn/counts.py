"""The counts: an interpolated Kneser-Ney n-gram model of the training split, kept as arrays, and
its mixture with the network, through which every probability zhrnn uses passes.

A count model counted in seconds beats a network trained for minutes on small files of modern
Chinese (it remembers every phrase it saw once), and the network beats it on what it never saw;
their mixture beats both. The mixture weight on the network is fitted on the held-out part, one
weight for each length of the longest context the counts know (a phrase seen many times is
better told by the counts, a new one by the network).

How the counts are kept (no Python dicts: built with numpy in seconds, saved as tensors in the
checkpoint, read back memory-mapped). A context is the last m tokens before a target (m = 0 ..
order-1). The contexts of length m that the training text holds are numbered by sorting their keys,
a context (c1 .. cm), cm the most recent, keyed as id(c2 .. cm) * V + c1: its id is found from its
one shorter suffix, so one chain of lookups finds every context of a history, longest last.

Level m holds, for each context of length m, the tokens seen after it (CSR: offsets into tokens
and values) with their discounted probabilities (count - D) / total and the context's backoff
weight gamma: P_m(w | c) = value(c, w) + gamma(c) * P_{m-1}(w | c without its oldest token). The
longest level counts occurrences, the shorter ones continuation counts (how many different tokens
came before), with modified Kneser-Ney discounts (Chen & Goodman 1998: three per level, for counts
1, 2 and 3+); level 0 backs off to a uniform distribution, so every token, also one never seen,
has a probability. A context the counts do not know ends the chain (its longer ones are unknown
too). Pruning drops rare long contexts and, where the size asks for it, rare entries; gamma is
then recomputed as one minus what the context keeps, so every distribution still sums to one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .errors import CheckpointError
from .model import CharRNN

# Counts bigger than this are pruned: (min_context, min_count) tried in order until they fit.
# An entry is 8 bytes (token, probability), so the default keeps a run's checkpoint under ~40 MB.
MAX_ENTRIES = 5_000_000
PRUNING = ((1, 1), (2, 1), (2, 2), (3, 2), (4, 3), (8, 4), (16, 8), (64, 32))
WEIGHT_ITERATIONS = 50  # EM steps that fit the mixture weights
MIN_FITTED = 50  # a context length with fewer held-out targets takes the weight fitted on all


@dataclass
class Level:
    """The distributions after contexts of one length m: all numpy at build, torch once built."""

    keys: np.ndarray  # (C,) int64, sorted: id(c2..cm) * V + c1
    offsets: np.ndarray  # (C+1,) int64: context i's entries are offsets[i]:offsets[i+1]
    gamma: np.ndarray  # (C,) float32 backoff weight
    tokens: np.ndarray  # (E,) int32, sorted within each context
    values: np.ndarray  # (E,) float32 discounted probability


def _discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts for counts 1, 2 and 3+ from the counts of counts."""
    n = [int((counts == k).sum()) for k in (1, 2, 3, 4)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] and n[1] else 0.5
    d = (1 - 2 * y * n[1] / n[0] if n[0] else 0.5, 2 - 3 * y * n[2] / n[1] if n[1] else 1.0,
         3 - 4 * y * n[3] / n[2] if n[2] else 1.5)
    return tuple(max(x, 0.0) for x in d)


def _level(context: np.ndarray, token: np.ndarray, count: np.ndarray, keys: np.ndarray,
           discounts: tuple[float, float, float], min_count: int) -> Level:
    """A level from its (context id, token, count) entries, sorted by context then token."""
    n_contexts = len(keys)
    total = np.bincount(context, weights=count, minlength=n_contexts)  # (C,)
    d = np.where(count >= 3, discounts[2], np.where(count == 2, discounts[1], discounts[0]))
    values = np.maximum(count - d, 0) / total[context]
    keep = count >= min_count
    context, token, values = context[keep], token[keep], values[keep]
    kept = np.bincount(context, weights=values, minlength=n_contexts)
    offsets = np.zeros(n_contexts + 1, dtype=np.int64)
    np.cumsum(np.bincount(context, minlength=n_contexts), out=offsets[1:])
    return Level(keys, offsets, np.clip(1 - kept, 0, 1).astype(np.float32), token.astype(np.int32),
                 values.astype(np.float32))


def _pack(keys: list[np.ndarray], seen: list[np.ndarray], entries: list, V: int, min_context: int,
          min_count: int) -> list[Level]:
    """The levels, keeping contexts of 2+ tokens seen min_context times or more and, in those
    levels, entries counted min_count times or more; a context is kept only where it holds an
    entry or leads to a longer one that does (its suffix is then kept too). Contexts renumbered."""
    order = len(keys)
    minimum = [min_count if m >= 2 else 1 for m in range(order)]
    # which contexts (by their counting ids) are worth keeping, longest first
    useful, below = [None] * order, None
    for m in range(order - 1, -1, -1):
        pair, count = entries[m]
        holds = np.bincount(pair[count >= minimum[m]] // V, minlength=len(keys[m])) > 0
        if below is not None:
            holds |= np.bincount(keys[m + 1][below] // V, minlength=len(keys[m])) > 0
        if m >= 2:
            holds &= seen[m] >= min_context
        useful[m], below = holds, holds
    useful[0][:] = True
    levels, renumber = [], np.zeros(1, dtype=np.int64)
    for m in range(order):
        if m:  # contexts worth keeping whose suffix was kept, numbered by their keys in the kept suffixes
            parent, oldest = keys[m] // V, keys[m] % V
            keep = useful[m] & (renumber[parent] >= 0)
            new_keys = renumber[parent[keep]] * V + oldest[keep]
            by_key = np.argsort(new_keys, kind="stable")
            renumber = np.full(len(keys[m]), -1, dtype=np.int64)
            renumber[np.flatnonzero(keep)[by_key]] = np.arange(len(by_key))
            level_keys = new_keys[by_key]
        else:
            level_keys = keys[0]
        pair, count = entries[m]
        context = renumber[pair // V]
        discounts = _discounts(count)  # from all the counts, before pruning
        kept = context >= 0
        context, token, count = context[kept], pair[kept] % V, count[kept]
        by_entry = np.argsort(context * V + token, kind="stable")
        levels.append(_level(context[by_entry], token[by_entry], count[by_entry], level_keys, discounts, minimum[m]))
    return levels


class Counts:
    """Kneser-Ney counts of one token stream (see the module's docstring)."""

    def __init__(self, order: int, vocab_size: int, levels: list[Level]):
        self.order, self.vocab_size, self.levels = order, vocab_size, levels
        # the shortest level in full: P(token) with no context, every token (even one never seen) above zero
        self._unigram = np.full(vocab_size, levels[0].gamma[0] / vocab_size, dtype=np.float32)  # (V,)
        self._unigram[levels[0].tokens] += levels[0].values

    @staticmethod
    def _to_torch(level: Level) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(getattr(level, k)) for k in ("keys", "offsets", "gamma", "tokens", "values")}

    @classmethod
    def build(cls, ids: np.ndarray, vocab_size: int, order: int = 5, max_entries: int = MAX_ENTRIES) -> "Counts":
        """Count ids (the training split's token ids). When the counts would hold more than
        max_entries (token, probability) entries, rare long contexts and then rare entries are
        pruned (PRUNING, in order) until they fit."""
        ids = np.asarray(ids, dtype=np.int64)
        n, V = len(ids), vocab_size
        # ctx[m][t]: the id of the m tokens before position t (t >= m), keyed on its one shorter suffix
        ctx, keys, seen = [np.zeros(n, dtype=np.int64)], [np.zeros(1, dtype=np.int64)], [np.array([n])]
        for m in range(1, order):
            key = ctx[m - 1][m:] * V + ids[: n - m]  # for t >= m: suffix id, then the oldest token ids[t - m]
            uniq, inverse, times = np.unique(key, return_inverse=True, return_counts=True)
            ctx.append(np.concatenate([np.full(m, -1, dtype=np.int64), inverse.reshape(-1)]))
            keys.append(uniq)
            seen.append(times)
        # (context, token) pairs and counts of each level: occurrences at the longest, continuation counts below
        entries = [None] * order
        pairs = np.unique(ctx[order - 1][order - 1:] * V + ids[order - 1:], return_counts=True)
        entries[order - 1] = pairs
        for m in range(order - 2, -1, -1):
            longer = pairs[0] if m == order - 2 else np.unique(ctx[m + 1][m + 1:] * V + ids[m + 1:])
            suffix = keys[m + 1][longer // V] // V  # each (longer context, token) type counts once for its suffix
            pairs = np.unique(suffix * V + longer % V, return_counts=True)
            entries[m] = pairs
        del ctx
        for min_context, min_count in PRUNING:
            counts = cls(order, V, _pack(keys, seen, entries, V, min_context, min_count))
            if counts.num_entries() <= max_entries:
                break
        return counts

    # ---- saving -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"order": self.order, "vocab_size": self.vocab_size,
                "levels": [self._to_torch(level) for level in self.levels]}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Counts":
        try:
            levels = [Level(**{k: t.numpy() for k, t in level.items()}) for level in state["levels"]]
            counts = cls(int(state["order"]), int(state["vocab_size"]), levels)
        except (KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"the checkpoint's counts are damaged ({type(e).__name__})") from None
        if len(levels) != counts.order:
            raise CheckpointError("the checkpoint's counts are damaged (levels do not match the order)")
        return counts

    def grown(self, vocab_size: int) -> "Counts":
        """The same counts over a larger vocabulary (new ids never seen: they share the uniform floor)."""
        return Counts(self.order, vocab_size, self.levels) if vocab_size != self.vocab_size else self

    def num_entries(self) -> int:
        return sum(len(level.values) for level in self.levels)

    # ---- reading (numpy, on the CPU: a step of one stream is a few dozen small operations, which
    # numpy runs several times faster than torch dispatches them) ---------------------------------
    def contexts(self, history: np.ndarray) -> np.ndarray:
        """history (N, order-1) token ids, the most recent last, -1 where there is none ->
        (N, order) context ids of lengths 0 .. order-1, -1 where the counts do not know it."""
        out = np.full((len(history), self.order), -1, dtype=np.int64)
        out[:, 0] = 0
        for m in range(1, self.order):
            keys, prev = self.levels[m].keys, out[:, m - 1]
            token = history[:, self.order - 1 - m]  # the oldest token of the length-m context
            ok = (prev >= 0) & (token >= 0)
            if not len(keys) or not ok.any():
                break
            key = prev * self.vocab_size + token
            pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            out[:, m] = np.where(ok & (keys[pos] == key), pos, -1)
        return out

    def distributions(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """history (N, order-1) -> (N, V) float32 probabilities of the next token, and (N,) the
        longest context length known (0 .. order-1)."""
        ctx = self.contexts(history)  # (N, order)
        p = np.tile(self._unigram, (len(history), 1))  # (N, V)
        for m in range(1, self.order):
            rows = np.flatnonzero(ctx[:, m] >= 0)
            if not len(rows):
                break
            level, ids = self.levels[m], ctx[rows, m]
            p[rows] *= level.gamma[ids][:, None]
            begin, end = level.offsets[ids], level.offsets[ids + 1]
            if len(rows) == 1:  # one stream: a slice
                entry = np.arange(begin[0], end[0])
                p[rows[0], level.tokens[entry]] += level.values[entry]
                continue
            lengths = end - begin
            row = np.repeat(rows, lengths)  # (E,)
            entry = np.repeat(begin - np.cumsum(lengths) + lengths, lengths) + np.arange(len(row))
            p[row, level.tokens[entry]] += level.values[entry]
        return p, (ctx >= 0).sum(1) - 1

    def target_probs(self, history: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """history (N, order-1), targets (N,) -> (N,) P(target) float64 and (N,) the longest context known."""
        ctx = self.contexts(history)  # (N, order)
        p = self._unigram[targets].astype(np.float64)
        for m in range(1, self.order):
            level, ids = self.levels[m], ctx[:, m]
            known = ids >= 0
            if not known.any():
                break
            safe = np.maximum(ids, 0)
            # the target among the context's tokens, which are sorted: one search of (context, token) keys
            pair = _first_not_below(level.tokens, level.offsets[safe], level.offsets[safe + 1], targets)
            hit = known & (pair < level.offsets[safe + 1])
            hit[hit] &= level.tokens[pair[hit]] == targets[hit]
            value = np.where(hit, level.values[np.minimum(pair, len(level.values) - 1)], 0.0) if len(level.values) \
                else np.zeros(len(p))
            p = np.where(known, level.gamma[safe] * p + value, p)
        return p, (ctx >= 0).sum(1) - 1


def _first_not_below(tokens: np.ndarray, begin: np.ndarray, end: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each row, the first position of tokens[begin:end] (sorted) not below its target (end
    if none): a binary search of all rows at once."""
    lo, hi = begin.copy(), end.copy()
    while True:
        go = lo < hi
        if not go.any():
            return lo
        mid = (lo + hi) // 2
        less = np.zeros(len(lo), dtype=bool)
        less[go] = tokens[mid[go]] < targets[go]
        lo = np.where(go & less, mid + 1, lo)
        hi = np.where(go & ~less, mid, hi)


def histories(stream: torch.Tensor, order: int, before: torch.Tensor | None = None) -> torch.Tensor:
    """stream (B, T) -> (B, T, order-1): the order-1 tokens before each position's next token (the
    position's own token last), from before (B, order-1) then the stream, -1 where there is none."""
    B, T = stream.shape
    if before is None:
        before = torch.full((B, order - 1), -1, dtype=torch.long, device=stream.device)
    full = torch.cat([before.long(), stream.long()], 1)  # (B, order-1+T)
    return full.unfold(1, order - 1, 1)[:, 1:] if order > 1 else full.new_zeros(B, T, 0)


def fit_weights(p_net: torch.Tensor, p_counts: torch.Tensor, known: torch.Tensor, order: int,
                mask: torch.Tensor | None = None, all_sum=lambda t: t) -> torch.Tensor:
    """(order,) float64: the network's weight in the mixture for each length of the longest known
    context, fitted by EM to the targets given: P(target) under each, the length (any shape, the
    same), and which targets count (mask). all_sum adds a tensor over processes (torchrun). A
    length with fewer than MIN_FITTED targets takes the weight fitted on all of them."""
    a, b, k = p_net.double().flatten(), p_counts.double().flatten(), known.flatten()
    m = torch.ones_like(a) if mask is None else mask.flatten().double()
    n = all_sum(torch.bincount(k, weights=m, minlength=order))  # (order,) targets of each length
    pooled = n < MIN_FITTED
    w = torch.full((order,), 0.5, dtype=torch.float64, device=a.device)
    for _ in range(WEIGHT_ITERATIONS):
        wk = w[k]
        share = wk * a / (wk * a + (1 - wk) * b).clamp(min=1e-300)  # the network's share of each target
        s = all_sum(torch.bincount(k, weights=share * m, minlength=order))
        w = torch.where(pooled, s.sum() / n.sum().clamp(min=1), s / n.clamp(min=1))
    return w.clamp(1e-4, 1 - 1e-4)


def mixed_nats(p_net: torch.Tensor, p_counts: torch.Tensor, known: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Nats of each target under the mixture (float64, the shape of p_net)."""
    w = weights.to(p_net.device, torch.float64)[known]
    return -torch.log(w * p_net.double() + (1 - w) * p_counts.double())


class Mixed(nn.Module):
    """The network with the counts mixed into its output: forward as CharRNN's, whose outputs are
    then log-probabilities of the mixture. The hidden state carries the last order-1 tokens after
    the network's own state (a (1, B, order-1) tensor, so that what selects, repeats or reorders
    rows of a state handles it as it does the network's)."""

    def __init__(self, net: CharRNN, counts: Counts, weights):
        super().__init__()
        self.net, self.counts = net, counts
        self.weights = torch.as_tensor(weights, dtype=torch.float64)  # (order,) the network's, by context length
        self.config = net.config
        self._weights = self.weights.numpy().astype(np.float32)

    def _split(self, hidden):
        if hidden is None:
            return None, None
        *state, history = hidden
        return (state[0] if len(state) == 1 else tuple(state)), history[0].long()  # (B, order-1)

    def forward(self, idx: torch.Tensor, hidden=None, targets: torch.Tensor | None = None):
        state, before = self._split(hidden)
        B, T = idx.shape
        hist = histories(idx, self.counts.order, before)  # (B, T, order-1)
        contexts = hist.reshape(B * T, -1).cpu().numpy()
        if targets is not None:
            nats, state = self.net(idx, state, targets=targets)  # (B*T,)
            p_counts, known = self.counts.target_probs(contexts, targets.reshape(-1).cpu().numpy())
            out = mixed_nats(torch.exp(-nats.double()), torch.from_numpy(p_counts).to(idx.device),
                             torch.from_numpy(known).to(idx.device), self.weights).float()
        else:
            logits, state = self.net(idx, state)  # (B, T, V)
            p_counts, known = self.counts.distributions(contexts)  # (B*T, V), (B*T,)
            w = self._weights[known][:, None]  # (B*T, 1) the network's weight after each context
            p = torch.from_numpy(p_counts * (1 - w)).to(idx.device)  # (B*T, V) the counts' part
            out = torch.log(p.view(B, T, -1) + logits.float().log_softmax(-1).exp() * torch.from_numpy(w).to(
                idx.device).view(B, T, 1))  # (B, T, V) log-probabilities of the mixture
        last = hist[:, -1:, :].transpose(0, 1).float()  # (1, B, order-1): the next call's history
        state = (state,) if not isinstance(state, tuple) else state
        return out, (*state, last)

    def num_parameters(self) -> int:
        return self.net.num_parameters()
