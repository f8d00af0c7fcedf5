"""The counts: an interpolated Kneser-Ney n-gram model of the training split, kept as arrays, and
its mixture with the network, through which every probability zhrnn uses passes.

A count model counted in seconds beats a network trained for minutes on small files of modern
Chinese (it remembers every phrase it saw once), and the network beats it on what it never saw;
their mixture beats both. The mixture weight on the network is fitted on the held-out part, one
weight for each length of the longest context the counts know (a phrase seen many times is
better told by the counts, a new one by the network).

How the counts are kept (no Python dicts: numpy arrays, built in seconds, saved as tensors in
the checkpoint, read on the CPU). A context is the last m tokens before a target (m = 0 ..
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

# Counts bigger than this as saved are pruned: (min_context, min_count) tried in order until they
# fit. An entry takes 6 bytes (token, probability), a context 12 (key, offset).
MAX_BYTES = 48_000_000
COUNTED_TOKENS = 30_000_000  # a run counts at most this many training tokens (memory: ~50 bytes each)
PRUNING = ((1, 1), (2, 1), (2, 2), (3, 2), (4, 3), (8, 4), (16, 8), (64, 32))
WEIGHT_ITERATIONS = 50  # EM steps that fit the mixture weights
MIN_FITTED = 50  # a context length with fewer held-out targets takes the weight fitted on all


@dataclass
class Level:
    """The distributions after contexts of one length m, as numpy arrays (Counts.state_dict saves
    them as tensors)."""

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
    return tuple(max(x, 0.01) for x in d)  # above zero: the backoff (at the end, to every token) keeps some mass


def _level(context: np.ndarray, token: np.ndarray, count: np.ndarray, keys: np.ndarray,
           discounts: tuple[float, float, float], min_count: int) -> Level:
    """A level from its (context id, token, count) entries, sorted by context then token."""
    n_contexts = len(keys)
    total = np.bincount(context, weights=count, minlength=n_contexts)  # (C,)
    d = np.where(count >= 3, discounts[2], np.where(count == 2, discounts[1], discounts[0]))
    values = np.maximum(count - d, 0) / total[context]
    keep = count >= min_count
    token, values = token[keep], values[keep].astype(np.float32)
    offsets = np.zeros(n_contexts + 1, dtype=np.int64)
    np.cumsum(np.bincount(context[keep], minlength=n_contexts), out=offsets[1:])
    return Level(keys, offsets, _backoff(offsets, values), token.astype(np.int32), values)


def _backoff(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each context's backoff weight: one minus the probability its own entries hold, so that
    its distribution sums to one (also where pruning took entries away)."""
    contexts = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    kept = np.bincount(contexts, weights=values, minlength=len(offsets) - 1)
    return np.clip(1 - kept, 0, 1).astype(np.float32)


def _useful(keys: list[np.ndarray], seen: list[np.ndarray], entries: list, V: int, min_context: int,
            minimum: list[int]) -> list[np.ndarray]:
    """For each level, which contexts (by their counting ids) are worth keeping: seen min_context
    times or more (from two tokens on), and holding an entry counted minimum[m] times or more, or
    leading to a longer context that does (a kept context's suffix is then kept too: it is seen at
    least as often)."""
    order = len(keys)
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
    return useful


def _minimum(order: int, min_count: int) -> list[int]:
    return [min_count if m >= 2 else 1 for m in range(order)]


def _saved_size(keys: list[np.ndarray], seen: list[np.ndarray], entries: list, V: int, min_context: int,
                min_count: int) -> int:
    """The bytes the counts would take as saved (Counts.saved_bytes) pruned so, without building them."""
    minimum = _minimum(len(keys), min_count)
    useful = _useful(keys, seen, entries, V, min_context, minimum)
    token_bytes = 2 if V < 2**15 else 4
    size = 0
    for m, (pair, count) in enumerate(entries):
        kept = int((useful[m][pair // V] & (count >= minimum[m])).sum())
        size += kept * (4 + token_bytes) + int(useful[m].sum()) * 12
    return size


def _pack(keys: list[np.ndarray], seen: list[np.ndarray], entries: list, V: int, min_context: int,
          min_count: int) -> list[Level]:
    """The levels, keeping the contexts _useful keeps and, from two tokens on, the entries counted
    min_count times or more; contexts renumbered by their keys among the kept."""
    order = len(keys)
    minimum = _minimum(order, min_count)
    useful = _useful(keys, seen, entries, V, min_context, minimum)
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


@dataclass
class Terms:
    """The next-token distributions of N histories, kept sparse (Counts.terms): row n's is
    base[n] * P_0 plus values[k] at tokens[k] for every k with rows[k] == n (a token may come
    once from each context length)."""

    base: np.ndarray  # (N,) float32, the weight of the full shortest level P_0
    rows: np.ndarray  # (E,) int64
    tokens: np.ndarray  # (E,) int64
    values: np.ndarray  # (E,) float32
    known: np.ndarray  # (N,) the longest context length known (0 .. order-1)


class Counts:
    """Kneser-Ney counts of one token stream (see the module's docstring)."""

    def __init__(self, order: int, vocab_size: int, levels: list[Level]):
        self.order, self.vocab_size, self.levels = order, vocab_size, levels
        # the shortest level in full: P(token) with no context, every token (even one never seen) above zero
        self._unigram = np.full(vocab_size, levels[0].gamma[0] / vocab_size, dtype=np.float32)  # (V,)
        self._unigram[levels[0].tokens] += levels[0].values

    @classmethod
    def build(cls, ids: np.ndarray, vocab_size: int, order: int = 5, max_bytes: int = MAX_BYTES) -> "Counts":
        """Count ids (the training split's token ids). When the counts would take more than
        max_bytes as saved, rare long contexts and then rare entries are pruned (PRUNING, in
        order) until they fit."""
        ids = np.asarray(ids, dtype=np.int64)
        n, V = len(ids), vocab_size
        order = max(1, min(order, n))  # a text shorter than the order has no longer contexts
        # ctx[t]: the id of the m tokens before position t (t >= m), keyed on its one shorter suffix;
        # one level at a time, the previous freed once the next is built (memory: two of them)
        ctx, keys, seen = np.zeros(n, dtype=np.int64), [np.zeros(1, dtype=np.int64)], [np.array([n])]
        entries: list = [None] * order  # (context, token) pairs and counts of each level
        for m in range(1, order):
            key = ctx[m:] * V + ids[: n - m]  # for t >= m: suffix id, then the oldest token ids[t - m]
            uniq, inverse, times = np.unique(key, return_inverse=True, return_counts=True)
            ctx = np.concatenate([np.full(m, -1, dtype=np.int64), inverse.reshape(-1)])
            keys.append(uniq)
            seen.append(times)
            # the level below counts each (context of length m, token) type once for its suffix
            pairs, count = np.unique(ctx[m:] * V + ids[m:], return_counts=True)
            suffix = keys[m][pairs // V] // V
            entries[m - 1] = np.unique(suffix * V + pairs % V, return_counts=True)
        # the longest level: occurrences
        entries[order - 1] = (pairs, count) if order > 1 else np.unique(ids, return_counts=True)
        del ctx
        for min_context, min_count in PRUNING:  # the first that fits (or the hardest), sized before it is built
            if _saved_size(keys, seen, entries, V, min_context, min_count) <= max_bytes:
                break
        return cls(order, V, _pack(keys, seen, entries, V, min_context, min_count))

    # ---- saving -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """As saved: tokens in 16 bits where the vocabulary allows, offsets in 32 where they fit, the
        backoff weights left out (loading computes them again from the probabilities, as building
        did). (bfloat16 probabilities would halve the entries, but moved the backoff weights, one
        minus a sum of them, by up to a tenth.)"""
        levels = []
        for level in self.levels:
            levels.append({
                "keys": torch.from_numpy(level.keys),
                "offsets": torch.from_numpy(level.offsets.astype(np.int32 if level.offsets[-1] < 2**31 else np.int64)),
                "tokens": torch.from_numpy(level.tokens.astype(np.int16 if self.vocab_size < 2**15 else np.int32)),
                "values": torch.from_numpy(level.values)})
        return {"order": self.order, "vocab_size": self.vocab_size, "levels": levels}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Counts":
        try:
            levels = []
            for level in state["levels"]:
                offsets, values = level["offsets"].numpy().astype(np.int64), level["values"].float().numpy()
                levels.append(Level(level["keys"].numpy().astype(np.int64), offsets, _backoff(offsets, values),
                                    level["tokens"].numpy().astype(np.int32), values))
            counts = cls(int(state["order"]), int(state["vocab_size"]), levels)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
            raise CheckpointError(f"the checkpoint's counts are damaged ({type(e).__name__})") from None
        if len(levels) != counts.order:
            raise CheckpointError("the checkpoint's counts are damaged (levels do not match the order)")
        return counts

    def saved_bytes(self) -> int:
        """The size of state_dict()'s arrays."""
        token_bytes = 2 if self.vocab_size < 2**15 else 4
        return sum(len(level.values) * (4 + token_bytes) + len(level.keys) * 12 for level in self.levels)

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

    def terms(self, history: np.ndarray, share: np.ndarray | None = None) -> Terms:
        """history (N, order-1) -> each row's distribution of the next token as its terms:
        base * P_0 + the entries of its known contexts, each scaled by the backoff weights of the
        longer contexts above it. Unrolled, P_M(w) = sum over m = 1..M of (gamma_{m+1} .. gamma_M)
        value_m(w) + (gamma_1 .. gamma_M) P_0(w): no (N, V) array is made or scaled level by level
        (Mixed._step_of_one unrolls the same sum for one row). share (order,): each row's terms times share[its longest known context length] (the
        counts' part of a mixture)."""
        ctx = self.contexts(history)  # (N, order)
        n = len(history)
        gamma = np.ones((n, self.order + 1), dtype=np.float32)  # (N, order+1): 1 past the longest known
        for m in range(1, self.order):
            rows = np.flatnonzero(ctx[:, m] >= 0)
            if not len(rows):
                break
            gamma[rows, m] = self.levels[m].gamma[ctx[rows, m]]
        above = np.cumprod(gamma[:, ::-1], axis=1)[:, ::-1]  # (N, order+1): above[:, m] = gamma_m .. gamma_M
        rows, tokens, values = [], [], []
        for m in range(1, self.order):
            known = np.flatnonzero(ctx[:, m] >= 0)
            if not len(known):
                break
            level, ids = self.levels[m], ctx[known, m]
            begin, end = level.offsets[ids], level.offsets[ids + 1]
            lengths = end - begin
            row = np.repeat(known, lengths)  # (E,)
            entry = np.repeat(begin - np.cumsum(lengths) + lengths, lengths) + np.arange(len(row))
            rows.append(row)
            tokens.append(level.tokens[entry])
            values.append(level.values[entry] * above[row, m + 1])
        join = lambda parts, dtype: np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)  # noqa: E731
        t = Terms(above[:, 1], join(rows, np.int64), join(tokens, np.int64), join(values, np.float32),
                  (ctx >= 0).sum(1) - 1)
        if share is not None:
            part = share[t.known].astype(np.float32)  # (N,)
            t.base, t.values = t.base * part, t.values * part[t.rows]
        return t

    def chain(self, history: np.ndarray) -> list[int]:
        """history (order-1,) token ids, the most recent last -> the ids of its known contexts,
        shortest first (contexts() of one row, in Python scalars: a lookup a level)."""
        chain, context = [], 0
        for m in range(1, self.order):
            token, keys = int(history[self.order - 1 - m]), self.levels[m].keys
            key = context * self.vocab_size + token
            at = int(keys.searchsorted(key)) if token >= 0 else len(keys)
            if at == len(keys) or keys[at] != key:
                break
            chain.append(at)
            context = at
        return chain

    def distributions(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """history (N, order-1) -> (N, V) float32 probabilities of the next token, and (N,) the
        longest context length known (0 .. order-1)."""
        t = self.terms(history)
        p = t.base[:, None] * self._unigram[None, :]  # (N, V)
        np.add.at(p, (t.rows, t.tokens), t.values)
        return p, t.known

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
    length with fewer than MIN_FITTED targets takes the one weight fitted on all of them; with
    no target at all, the weights are even."""
    a, b, k = p_net.double().flatten(), p_counts.double().flatten(), known.flatten()
    m = torch.ones_like(a) if mask is None else mask.flatten().double()
    single, total = _em(a, b, torch.zeros_like(k), m, 1, all_sum)
    if not total.sum():
        return torch.full((order,), 0.5, dtype=torch.float64, device=a.device)
    w, n = _em(a, b, k, m, order, all_sum)
    return torch.where(n < MIN_FITTED, single, w).clamp(1e-4, 1 - 1e-4)


def _em(a: torch.Tensor, b: torch.Tensor, bucket: torch.Tensor, m: torch.Tensor, buckets: int, all_sum):
    """EM for one weight per bucket of p = w·a + (1 − w)·b: (weights, targets) of each bucket."""
    n = all_sum(torch.bincount(bucket, weights=m, minlength=buckets))  # (buckets,)
    w = torch.full((buckets,), 0.5, dtype=torch.float64, device=a.device)
    for _ in range(WEIGHT_ITERATIONS):
        wk = w[bucket]
        share = wk * a / (wk * a + (1 - wk) * b).clamp(min=1e-300)  # the network's share of each target
        w = all_sum(torch.bincount(bucket, weights=share * m, minlength=buckets)) / n.clamp(min=1)
    return w, n


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
        self._unigram = torch.from_numpy(counts._unigram)  # (V,) P_0, shared with the counts
        self._share = 1 - self._weights  # (order,) the counts' weight, by context length
        self.train(net.training)  # the mode of what it wraps (evaluating() restores the wrapper's)

    def _split(self, hidden):
        if hidden is None:
            return None, None
        *state, history = hidden
        return (state[0] if len(state) == 1 else tuple(state)), history[0].long()  # (B, order-1)

    def forward(self, idx: torch.Tensor, hidden=None, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if targets is None and B * T == 1 and idx.device.type == "cpu" and self.counts.order > 1:
            return self._step_of_one(idx, hidden)
        state, before = self._split(hidden)
        hist = histories(idx, self.counts.order, before)  # (B, T, order-1)
        contexts = hist.reshape(B * T, -1).cpu().numpy()
        if targets is not None:
            nats, state = self.net(idx, state, targets=targets)  # (B*T,)
            p_counts, known = self.counts.target_probs(contexts, targets.reshape(-1).cpu().numpy())
            out = mixed_nats(torch.exp(-nats.double()), torch.from_numpy(p_counts).to(idx.device),
                             torch.from_numpy(known).to(idx.device), self.weights).float()
        else:
            logits, state = self.net(idx, state)  # (B, T, V)
            t = self.counts.terms(contexts, self._share)  # the counts' part, sparse: no (B*T, V) array of it
            w = torch.from_numpy(self._weights[t.known]).to(idx.device)  # (B*T,) the network's weight
            probs = logits.float().softmax(-1).view(B * T, -1)  # (B*T, V); of an adaptive output's log-probs too
            probs.mul_(w[:, None]).addr_(torch.from_numpy(t.base).to(idx.device), self._unigram.to(idx.device))
            where = torch.from_numpy(t.rows * probs.size(1) + t.tokens).to(idx.device)  # (E,) flat positions
            probs.view(-1).index_add_(0, where, torch.from_numpy(t.values).to(idx.device))
            out = probs.log_().view(B, T, -1)  # (B, T, V) log-probabilities of the mixture
        last = hist[:, -1:, :].transpose(0, 1).float()  # (1, B, order-1): the next call's history
        state = (state,) if not isinstance(state, tuple) else state
        return out, (*state, last)

    def _step_of_one(self, idx: torch.Tensor, hidden):
        """forward() of one token of one stream on the CPU (a sampling step): terms() unrolled for
        one row in Python scalars, its entries gathered in numpy and added to the network's
        probabilities in one operator. At batch 1 each operator costs more to dispatch than its
        (V,) arithmetic, so the step is written for the fewest (numpy's ufuncs on the (V,) arrays
        measured slower than torch's in the sampling loop)."""
        order = self.counts.order
        *state, history = (None, None) if hidden is None else hidden
        last = ([-1] * (order - 1) if history is None else history.view(-1).tolist())[1:] + [idx.item()]
        logits, state = self.net(idx, state[0] if len(state) == 1 else tuple(state))  # (1, 1, V)
        chain = self.counts.chain(last)
        w = float(self._weights[len(chain)])
        scale, tokens, values = 1.0 - w, [], []  # the counts' share, times the backoff weights of the longer contexts
        for m in range(len(chain), 0, -1):  # longest first
            level, at = self.counts.levels[m], chain[m - 1]
            begin, end = level.offsets[at], level.offsets[at + 1]
            tokens.append(level.tokens[begin:end])
            values.append(level.values[begin:end] * np.float32(scale))
            scale *= float(level.gamma[at])
        probs = logits.detach().view(-1).float().softmax(0).mul_(w).add_(self._unigram, alpha=scale)  # (V,)
        if tokens:
            probs.index_add_(0, torch.from_numpy(np.concatenate(tokens)), torch.from_numpy(np.concatenate(values)))
        state = (state,) if not isinstance(state, tuple) else state
        return probs.log_().view(1, 1, -1), (*state, torch.tensor(last, dtype=torch.float32).view(1, 1, -1))

    def num_parameters(self) -> int:
        return self.net.num_parameters()
