"""Logits processors: the steps that shape each next-token distribution, for sampling, greedy
decoding and beam search alike. Each is one small class,

    processor(logits (n, V), streams, step) -> logits (n, V)

given the streams it scores (their tokens and rendered text) and the step (tokens generated so
far by the batch; under --form every stream is at that position, while without one a
--candidates row that waits for its group falls behind, so a rule about a stream's own position
reads len(stream.tokens)).

A rule that remembers what a row has written keeps that memory itself, one entry per row: the
request tells it each token a row takes (update) and each reordering of the rows (reorder: beam
search, a chosen line), so everything about one rule is in one class. A new constraint (a tone
pattern, a banned word list, a rhyme across a song) is one class here, its line in constraints()
at the end, and its test.

Constraints and penalties run first; the sampling warpers (temperature, top-k, top-p) only when
sampling. Masked tokens get -inf.
"""
from __future__ import annotations

import logging
import math
import unicodedata
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache

import torch

from ..text.tokenizer import Tokenizer
from .config import SampleConfig
from .forms import Form, Rhyme, han_mask

log = logging.getLogger(__name__)

NEG_INF = float("-inf")
# Under line-scoped repeats a line may end this many times in one paragraph: a chorus comes back
# two or three times a song, while greedy decoding would otherwise sing one line forever.
LINE_REPEATS = 4
TAIL = 4  # a line's last Chinese characters read together for its rhyme (银行: hang)
RHYME_LINE = 16  # under --rhyme a line ends by this many characters unless --line-len says otherwise
RHYME_PULL = 3.0  # a line that may not end yet: its rhymes' probability times 1 + this x P(the model ends it)


class Processor:
    """A step of the next-token distribution. A stateless rule needs only __call__; a stateful one
    keeps a list `rows` of per-row state and overrides update, and its reorder copies the rows
    (two rows may come from one parent, and Request.fork must leave the original untouched)."""

    rows: list = []

    def __call__(self, logits: torch.Tensor, streams: list, step: int) -> torch.Tensor:
        raise NotImplementedError

    def update(self, row: int, token: int, seen: int | None) -> None:
        """Row `row` took `token`; `seen` is what a reader sees of it as an id (a marker shows as
        the line break it prints), or None when it shows nothing (a label, a marker at a line's start)."""

    def reorder(self, parents: list[int]) -> None:
        """Row i becomes a copy of row parents[i]."""
        if self.rows:
            self.rows = [self.rows[p].copy() for p in parents]


class BanUnknown(Processor):
    """<unk> is never emitted."""

    def __init__(self, unk_id: int):
        self.unk_id = unk_id

    def __call__(self, logits, streams, step):
        logits[:, self.unk_id] = NEG_INF
        return logits


class PlaceLabels(Processor):
    """A context-label token goes right after a paragraph marker and nowhere else; with --label,
    every paragraph begins with the one asked for."""

    def __init__(self, tokenizer: Tokenizer, label_id: int | None, device):
        self.marker_id = tokenizer.marker_id
        self.elsewhere = torch.ones(len(tokenizer), dtype=torch.bool, device=device)  # (V,)
        self.elsewhere[tokenizer.label_ids] = False
        self.after_marker = torch.ones_like(self.elsewhere)  # (V,)
        if label_id is not None:
            self.after_marker = torch.zeros_like(self.elsewhere)
            self.after_marker[label_id] = True

    def __call__(self, logits, streams, step):
        after = torch.tensor([s.previous == self.marker_id for s in streams], device=logits.device)  # (n,)
        allowed = torch.where(after[:, None], self.after_marker, self.elsewhere)  # (n, V)
        return logits.masked_fill(~allowed, NEG_INF)


class FormMask(Processor):
    """--form / --acrostic: at each position only what the form allows (any Chinese character,
    or the one character fixed there)."""

    def __init__(self, form: Form, offset: int):
        self.form, self.offset = form, offset  # offset: positions the start text already fills

    def __call__(self, logits, streams, step):
        position = self.offset + step
        if position < len(self.form):
            logits = logits.masked_fill(~self.form.allowed(position).to(logits.device), NEG_INF)
        return logits


class StreamMask(Processor):
    """A mask that depends on what each stream has written: --rhyme (the 韵脚 stay in the group the
    first one chose) and --tones (the 平仄 and rhyme of a pattern the poem so far still fits). rule
    is the Form's method giving (V,) bool for a position and the poem's ids, or None; a mask that
    would leave the form's position empty is not applied."""

    def __init__(self, form: Form, start_ids: list[int], rule):
        self.form, self.start_ids, self.rule = form, start_ids, rule  # a form is char level: one id per position

    def __call__(self, logits, streams, step):
        position = len(self.start_ids) + step
        if position >= len(self.form):
            return logits
        allowed = self.form.allowed(position)
        for r, stream in enumerate(streams):
            ok = self.rule(position, self.start_ids + stream.tokens)
            if ok is not None and (ok & allowed).any():
                logits[r] = logits[r].masked_fill(~ok.to(logits.device), NEG_INF)
        return logits


class RepetitionPenalty(Processor):
    """Divides the probability of a character seen in the last `window` visible tokens by
    `penalty`: unlike CTRL's rule on the sign of a logit, the same for any shift of the logits
    (an adaptive output gives log-probabilities, all negative). Punctuation, spaces, line breaks
    and the marker are exempt: a poem repeats ，and 。 by design."""

    def __init__(self, tokenizer: Tokenizer, penalty: float, window: int, rows: int, device):
        self.log_penalty, self.window = math.log(penalty), window
        self.penalisable = _content_tokens(tuple(tokenizer.vocab), tokenizer.unk_id, tokenizer.marker_id).to(device)
        self.rows = [Recent(deque(maxlen=window)) for _ in range(rows)]  # each row's last visible tokens

    def update(self, row, token, seen):
        if seen is not None:
            self.rows[row].tokens.append(seen)

    def __call__(self, logits, streams, step):
        hits = torch.zeros(len(streams), logits.size(-1), dtype=torch.bool, device=logits.device)  # (n, V)
        rows = [r for r, recent in enumerate(self.rows) for _ in recent.tokens]
        if rows:  # every row's recent tokens set in one indexing op (one copy to the device, not one a row)
            where = torch.tensor([rows, [t for recent in self.rows for t in recent.tokens]], device=logits.device)
            hits[where[0], where[1]] = True
        return logits - (hits & self.penalisable) * self.log_penalty


@dataclass
class Recent:
    """The last visible tokens of a row (RepetitionPenalty)."""
    tokens: deque

    def copy(self) -> "Recent":
        return Recent(deque(self.tokens, maxlen=self.tokens.maxlen))


@dataclass
class Said:
    """What NoRepeatNgram remembers of a row."""
    tail: list[int] = field(default_factory=list)  # the last n-1 visible tokens
    ngrams: dict[tuple, set[int]] = field(default_factory=dict)  # (n-1)-gram -> tokens that followed it
    line: list[int] = field(default_factory=list)  # the line being written (line scope)
    lines: dict[tuple, int] = field(default_factory=dict)  # line -> times it ended in this paragraph

    def copy(self) -> "Said":
        return Said(list(self.tail), {g: set(s) for g, s in self.ngrams.items()}, list(self.line), dict(self.lines))


class NoRepeatNgram(Processor):
    """No n-gram of visible tokens twice in one output, or in one line under line scope (the
    n-grams are forgotten at each line break), where a line that already ended LINE_REPEATS times
    in the paragraph may not end there again. A marker that would print a banned line break is
    banned with it. Not where the form fixes the character, and never to a dead end: a row with
    every option banned keeps them all."""

    def __init__(self, n: int, newline_id: int | None, marker_id: int | None, form: Form | None, offset: int,
                 rows: int, line_scope: bool = False):
        self.n, self.newline_id, self.marker_id = n, newline_id, marker_id
        self.form, self.offset = form, offset  # offset: positions the start text already fills
        self.line_scope = line_scope
        self.rows = [Said() for _ in range(rows)]

    def update(self, row, token, seen):
        said, n = self.rows[row], self.n
        if token == self.marker_id:
            said.lines.clear()  # a new paragraph (song) counts its lines afresh
            said.line = []
        if seen is None:
            return
        if len(said.tail) == n - 1:
            said.ngrams.setdefault(tuple(said.tail), set()).add(seen)
        if n > 1:
            said.tail = (said.tail + [seen])[-(n - 1):]
        if self.line_scope:
            if seen == self.newline_id:
                said.ngrams.clear()  # a new line: what the lines before it said may be said again
                if said.line:
                    key = tuple(said.line)
                    said.lines[key] = said.lines.get(key, 0) + 1
                said.line = []
            else:
                said.line.append(seen)

    def __call__(self, logits, streams, step):
        if self.form is not None and self.offset + step < len(self.form) and self.form.slots[self.offset + step] is not None:
            return logits
        hit_rows, hit_tokens = [], []  # gathered over the streams, then set in one indexing op
        for r, (stream, said) in enumerate(zip(streams, self.rows)):
            followed = said.ngrams.get(tuple(said.tail))
            sung = self.line_scope and said.lines and said.lines.get(tuple(said.line), 0) >= LINE_REPEATS
            if not (followed or sung):
                continue  # the common case: nothing to ban
            banned = set(followed or ())
            if sung:
                banned |= {self.newline_id, self.marker_id}  # this line has been sung enough: it goes on or differs
            elif self.newline_id in banned and stream.renderer.marker_breaks_line():
                banned.add(self.marker_id)  # the marker would print that same line break
            banned.discard(None)
            hit_rows += [r] * len(banned)
            hit_tokens += banned
        if hit_tokens:
            kept = logits.clone()
            logits[hit_rows, hit_tokens] = NEG_INF
            dead = ~torch.isfinite(logits).any(-1)  # (n,) every option banned: a repeat beats a dead end
            logits[dead] = kept[dead]
        return logits


@dataclass
class Line:
    """What LineRules remembers of a row: the line being written and the rhymes of its section."""
    length: int = 0  # characters shown on the line so far
    tail: str = ""  # its last Chinese characters (TAIL): the last rhymes, read with the ones before it
    index: int = 0  # lines ended in this section (paragraph)
    groups: torch.Tensor | None = None  # (G,) the rhyme groups still open for the lines that rhyme now
    sung: tuple[str, ...] = ()  # the rhymes the row's lines have ended in, in order (the page shows them)

    def copy(self) -> "Line":
        return replace(self)  # groups is replaced, never changed in place


class LineRules(Processor):
    """--rhyme, --rhyme-scheme and --line-len for songs and free text: a line (ended by a line
    break, or by the marker that ends a paragraph) may end only after `low` characters, only on a
    character of its rhyme where the scheme says it rhymes, and must end by `high` (under --rhyme,
    RHYME_LINE unless given): one character before it, a line that must rhyme may take only a
    rhyming character. The first rhyme of a section (paragraph) opens its groups (unless --rhyme
    named them); aabb opens new ones, other than the couplet's before, every two lines. Where the
    model would end a line that may not end yet, its rhymes are drawn more readily (_pulled). Where
    these rules and the constraints before them would leave a row nothing, the row keeps what the
    others allow (the line ends unrhymed, or goes on), and the log says so. A paragraph (a song)
    is never empty."""

    def __init__(self, tokenizer: Tokenizer, rhyme: Rhyme | None, scheme: str, line_range: tuple[int, int | None] | None,
                 newline_id: int | None, rows: int):
        self.rhyme, self.scheme = rhyme, scheme
        self.low, self.high = line_range or (1, None)
        if rhyme is not None and self.high is None:  # a line looking for its rhyme does not run on
            self.high = max(self.low, RHYME_LINE)
        self.marker_id = tokenizer.marker_id
        self.ends = [t for t in (newline_id, tokenizer.marker_id) if t is not None]  # what ends a line
        self.han, self.vocab = han_mask(tuple(tokenizer.vocab)), tokenizer.vocab  # (V,)
        self.rows = [self._section() for _ in range(rows)]

    def _section(self, sung: tuple[str, ...] = ()) -> Line:
        """A row's state as a section begins (a rhyme named with --rhyme holds through them all)."""
        return Line(groups=None if self.rhyme is None else self.rhyme.given, sung=sung)

    def rhymes(self, line: Line) -> bool:
        """Whether the line being written must rhyme (abab: the second of each pair)."""
        return self.rhyme is not None and (self.scheme != "abab" or line.index % 2 == 1)

    def update(self, row, token, seen):
        line = self.rows[row]
        if token == self.marker_id:
            self.rows[row] = self._section(line.sung)  # a new paragraph: a new section, rhymed afresh
        elif seen is None:
            return
        elif seen in self.ends:
            if line.length:
                if self.rhymes(line):  # the groups narrow to the end's own
                    heard = self.rhyme.ending(line.tail)
                    if (line.groups & heard).any():
                        name = self.rhyme.names[int((line.groups & heard).nonzero()[0])]
                        line.sung += (name,) if line.sung[-1:] != (name,) else ()
                    line.groups = self.rhyme.narrow(line.groups, heard)
                line.index += 1
                if self.rhyme is not None and self.scheme == "aabb" and line.index % 2 == 0:
                    fresh = self.rhyme.given & ~line.groups  # a named rhyme has nothing fresh: it holds
                    line.groups = fresh if self.rhyme.allowed(fresh).any() else self.rhyme.given
            line.length, line.tail = 0, ""
        else:
            line.length += 1
            if self.han[seen]:
                line.tail = (line.tail + self.vocab[seen])[-TAIL:]

    def __call__(self, logits, streams, step):
        for r, line in enumerate(self.rows):
            if not line.length:  # a line begins as the model likes, but a paragraph (a song) is not empty
                if not line.index and self.marker_id is not None and torch.isfinite(logits[r]).sum() > 1:
                    logits[r, self.marker_id] = NEG_INF
                continue
            must = self.rhymes(line)
            may_end = line.length >= self.low and (not must or bool((line.groups & self.rhyme.ending(line.tail)).any()))
            full = self.high is not None and line.length >= self.high
            if full:  # it ends here
                keep = torch.zeros(logits.size(-1), dtype=torch.bool)
                keep[self.ends] = True
            elif must and self.high is not None and line.length == self.high - 1:  # its last character rhymes
                keep = self.rhyme.allowed(line.groups) & self.han  # (V,), a new tensor (allowed's is kept)
                keep[self.ends] = may_end
            elif not may_end:
                if must and RHYME_PULL:  # where its model would end the line, a rhyme is drawn more readily
                    logits[r] = _pulled(logits[r], self.ends, self.rhyme.allowed(line.groups))
                keep = torch.ones(logits.size(-1), dtype=torch.bool)
                keep[self.ends] = False
            else:
                continue
            ruled = logits[r].masked_fill(~keep.to(logits.device), NEG_INF)
            if not torch.isfinite(ruled).any():
                log.info("--rhyme / --line-len: the other rules leave a line of %d characters nothing these allow; "
                         "it goes on as they do", line.length)
                continue
            logits[r] = ruled
            if full and not may_end:
                log.info("--rhyme: a line of %d characters found no rhyme to end on; it ends unrhymed", line.length)
        return logits


def _pulled(logits: torch.Tensor, ends: list[int], rhymes: torch.Tensor) -> torch.Tensor:
    """logits (V,) of a line that may not end yet, its rhyming tokens (V,) bool made 1 + RHYME_PULL
    x P(end) times as likely: where the model would end the line, a rhyme (after which it may) is
    drawn more often, at most 1 + RHYME_PULL times."""
    p_end = logits.float().softmax(-1)[ends].sum()
    return logits + rhymes.to(logits.device) * torch.log1p(RHYME_PULL * p_end)


@dataclass
class Song:
    """What SongStructure remembers of a row."""
    section: int = -1  # the section being written (the prime's marker opens the first)
    lines: int = 0  # lines ended in it
    length: int = 0  # characters on the line being written
    chorus: list[int] = field(default_factory=list)  # the first chorus's tokens as written (no label or marker)
    replay: int | None = None  # where a later chorus is in singing the first again

    def copy(self) -> "Song":
        return replace(self, chorus=list(self.chorus))


class SongStructure(Processor):
    """--structure: each section is a paragraph of its number of lines (the marker, which ends a
    paragraph, ends its last line, and no other); the first chorus is written and each later one
    is the first sung again, token for token. Runs last, so that a chorus sung again is not
    undone by a rule about repeats or rhymes."""

    def __init__(self, tokenizer: Tokenizer, sections: list[tuple[str, int]], newline_id: int | None,
                 label_id: int | None, rows: int):
        self.sections, self.newline_id, self.marker_id = sections, newline_id, tokenizer.marker_id
        self.label_ids, self.label_id = frozenset(tokenizer.label_ids), label_id
        self.rows = [Song() for _ in range(rows)]

    def update(self, row, token, seen):
        song = self.rows[row]
        if token == self.marker_id:
            song.section += 1
            song.lines = song.length = 0
            again = song.section < len(self.sections) and self.sections[song.section][0] == "chorus" and song.chorus
            song.replay = 0 if again else None
            return
        if token in self.label_ids or song.section >= len(self.sections):
            return
        if song.replay is not None:
            song.replay += 1
        elif self.sections[song.section][0] == "chorus":
            song.chorus.append(token)  # the first chorus, as it is written
        if seen == self.newline_id:
            song.lines += song.length > 0
            song.length = 0
        elif seen is not None:
            song.length += 1

    def __call__(self, logits, streams, step):
        for r, (song, stream) in enumerate(zip(self.rows, streams)):
            if not 0 <= song.section < len(self.sections) or stream.previous == self.marker_id and self.label_id is not None:
                continue  # past the song; or --label's label goes first (PlaceLabels)
            if song.replay is not None:  # the chorus again, then the marker that ends it
                token = song.chorus[song.replay] if song.replay < len(song.chorus) else self.marker_id
                logits[r] = torch.full_like(logits[r], NEG_INF)
                logits[r, token] = 0.0
                continue
            if self.newline_id is None:
                continue
            # A line ends as the model likes; the section's last line by the marker (which ends the
            # paragraph), the others by a line break: the one's probability goes to the other.
            last = song.lines >= self.sections[song.section][1] - 1
            end, other = (self.marker_id, self.newline_id) if last else (self.newline_id, self.marker_id)
            logits[r, end] = torch.logaddexp(logits[r, end], logits[r, other])
            logits[r, other] = NEG_INF
            if not song.length:  # no empty line inside a section
                kept = logits[r, end].clone()
                logits[r, end] = NEG_INF
                if not torch.isfinite(logits[r]).any():
                    logits[r, end] = kept
        return logits


# --- sampling warpers ------------------------------------------------------------------------


TINY_TEMPERATURE = 0.01  # below it the logits are shifted before dividing (at usual ones, as they always were)


class Temperature(Processor):
    """Divides the logits by the temperature of each stream's next character (a list is cycled,
    one per character)."""

    def __init__(self, temperatures: tuple[float, ...]):
        self.temperatures = temperatures

    def __call__(self, logits, streams, step):
        # within float32's range (1e-300 is 0 there, 1e300 inf, and -inf / inf is NaN)
        ts = tuple(min(max(t, 1e-30), 1e30) for t in self.temperatures)
        if min(ts) < TINY_TEMPERATURE:  # shifted first, so that dividing cannot overflow to inf (inf - inf: NaN)
            logits = logits - logits.max(-1, keepdim=True).values
        if len(ts) == 1:
            return logits / ts[0]
        per_row = torch.tensor([ts[len(s.tokens) % len(ts)] for s in streams], device=logits.device)  # (n,)
        return logits / per_row[:, None]


class TopK(Processor):
    """Only the k most likely tokens."""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, logits, streams=None, step=0):
        if self.k >= logits.size(-1):
            return logits
        kth = torch.topk(logits, self.k, dim=-1).values[:, -1:]  # (n, 1)
        return logits.masked_fill(logits < kth, NEG_INF)


class TopP(Processor):
    """Nucleus sampling: drop a token when the more likely tokens before it already cover p
    (the first is always kept)."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, logits, streams=None, step=0):
        if self.p >= 1:
            return logits
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        drop = (probs.cumsum(-1) - probs) >= self.p
        drop[..., 0] = False  # even where p is below float32's range (1e-300 is 0 there)
        return logits.masked_fill(drop.scatter(-1, order, drop), NEG_INF)


# --- the lists a request applies ---------------------------------------------------------------


def constraints(req) -> list[Processor]:
    """The constraints and penalties of a request (req: its request.Request), in the order they apply."""
    cfg, tok = req.cfg, req.tokenizer
    out = [BanUnknown(tok.unk_id)]
    if tok.label_ids:
        out.append(PlaceLabels(tok, req.label_id, req.device))
    if req.form is not None:  # a form is char level: the start fills one position per id
        out.append(FormMask(req.form, len(req.start_ids)))
        if req.form.rhyme_positions:
            out.append(StreamMask(req.form, req.start_ids, req.form.rhyme_allowed))
        if req.form.meter is not None:
            out.append(StreamMask(req.form, req.start_ids, req.form.tones_allowed))
    if req.form is None and (req.rhyme is not None or cfg.line_range):  # a form keeps its own lines and rhymes
        out.append(LineRules(tok, req.rhyme, cfg.rhyme_scheme, cfg.line_range, req.newline_id, req.rows))
    if cfg.repetition_penalty > 1:
        out.append(RepetitionPenalty(tok, cfg.repetition_penalty, cfg.repetition_window, req.rows, req.device))
    if cfg.no_repeat_ngram > 0:
        out.append(NoRepeatNgram(cfg.no_repeat_ngram, req.newline_id, tok.marker_id, req.form, len(req.start_ids),
                                 req.rows, req.line_scope))
    if cfg.structure:
        out.append(SongStructure(tok, cfg.sections, req.newline_id, req.label_id, req.rows))
    return out


def warpers(cfg: SampleConfig) -> list[Processor]:
    """What sampling (not greedy decoding or beam search) applies after the constraints."""
    return ([Temperature(cfg.temperatures)] + ([TopK(cfg.top_k)] if cfg.top_k is not None else [])
            + ([TopP(cfg.top_p)] if cfg.top_p is not None else []))


@lru_cache(maxsize=8)  # one per vocabulary, not one per call
def _content_tokens(vocab: tuple[str, ...], unk_id: int, marker_id: int | None) -> torch.Tensor:
    """(V,) bool: tokens that are content, not punctuation, spaces, controls, <unk> or the marker."""
    return torch.tensor([i not in (unk_id, marker_id) and not all(unicodedata.category(c)[0] in "PZC" for c in tok)
                         for i, tok in enumerate(vocab)])
