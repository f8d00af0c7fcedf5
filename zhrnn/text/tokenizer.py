"""Tokenizers: text <-> integer ids. Char level by default; jieba words as an option.

A tokenizer is plain data (a vocabulary list and a few fields) so that it lives inside the
checkpoint and a model never needs a separate vocab file. No torch here.
"""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)

UNK = "<unk>"  # id 0; stands for characters cut by min_count / max_size; never sampled
LEVELS = ("char", "word")


class Tokenizer:
    """Shared by both levels: vocabulary, id lookup, decoding, (de)serialisation.

    The vocabulary is [UNK, marker, context labels, then tokens by falling frequency]; frequency
    order keeps the common tokens at low ids (what an adaptive softmax wants).
    """

    level = "char"

    def __init__(self, vocab: list[str], marker: str | None = "^", script: str = "unknown",
                 labels: dict[str, str] | None = None):
        if not vocab or vocab[0] != UNK:
            raise ConfigError("a vocabulary must start with <unk>")
        self.vocab = list(vocab)
        self.marker = marker
        self.script = script
        self.index = {tok: i for i, tok in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ConfigError("the vocabulary has duplicate tokens")
        self.unk_id = 0
        self.marker_id = self.index.get(marker) if marker else None
        self.labels = dict(labels or {})  # context label name -> its token (see text/labels.py)
        missing = [name for name, tok in self.labels.items() if tok not in self.index]
        if missing:
            raise ConfigError(f"label(s) {', '.join(missing[:3])} have no token in the vocabulary")
        self.label_ids = sorted(self.index[tok] for tok in self.labels.values())

    def __len__(self) -> int:
        return len(self.vocab)

    @staticmethod
    def _by_frequency(counts: Counter) -> list[tuple[str, int]]:
        """Most frequent first; ties by code point, so the same text always gives the same ids."""
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    @staticmethod
    def _reserved(marker: str | None, labels: dict[str, str] | None) -> list[str]:
        """The tokens at the front of every vocabulary: <unk>, the marker, the labels (always
        kept, whatever min_count says)."""
        return [UNK] + ([marker] if marker else []) + sorted((labels or {}).values())

    @staticmethod
    def _ordered(counts: Counter, min_count: int, max_size: int | None, marker: str | None,
                 labels: dict[str, str] | None = None) -> list[str]:
        if min_count < 1:
            raise ConfigError("--min-count must be at least 1")
        reserved = Tokenizer._reserved(marker, labels)
        keep = [tok for tok, n in Tokenizer._by_frequency(counts) if n >= min_count and tok not in reserved]
        if max_size is not None:
            if max_size <= len(reserved):
                raise ConfigError(f"--max-vocab must be more than {len(reserved)}")
            keep = keep[: max_size - len(reserved)]
        return reserved + keep

    def char_lengths(self) -> np.ndarray:
        """Characters each token stands for, for bits per *character* at any level (marker and UNK: 1;
        a label: 0, it is not part of the text)."""
        lengths = np.array([1 if i in (self.unk_id, self.marker_id) else len(t) for i, t in enumerate(self.vocab)], dtype=np.int64)
        lengths[self.label_ids] = 0
        return lengths

    def text_lengths(self) -> np.ndarray:
        """Characters of text each token stands for: char_lengths without the paragraph marker and
        line breaks, which lay the text out but are not its characters."""
        lengths = self.char_lengths()
        if self.marker_id is not None:
            lengths[self.marker_id] = 0
        for i, token in enumerate(self.vocab):
            if "\n" in token:
                lengths[i] -= token.count("\n")
        return lengths

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of text that no token can represent (they would become <unk>)."""
        return sorted({ch for ch in text if ch not in self.index})

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def to_dict(self) -> dict:
        return {"level": self.level, "vocab": self.vocab, "marker": self.marker, "script": self.script,
                "labels": self.labels}

    @staticmethod
    def from_dict(d: dict) -> "Tokenizer":
        cls = {"char": CharTokenizer, "word": WordTokenizer}.get(d.get("level"))
        if cls is None:
            raise ConfigError(f"unknown tokenizer level {d.get('level')!r}")
        # (a checkpoint of 2026-12 holds its text's layout here too: text/layout.py reads it)
        return cls(list(d["vocab"]), d.get("marker"), d.get("script", "unknown"), d.get("labels"))


class CharTokenizer(Tokenizer):
    """Every Unicode character (CJK, full-width punctuation, ASCII, emoji) is one token."""

    level = "char"

    @classmethod
    def build(cls, text: str, min_count: int = 1, max_size: int | None = None, marker: str | None = "^",
              script: str = "unknown", labels: dict[str, str] | None = None):
        return cls.from_counts(Counter(text), min_count, max_size, marker, script, labels)

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None, marker: str | None = "^",
                    script: str = "unknown", labels: dict[str, str] | None = None):
        """From how often each character occurs: what build needs of the text, so that a text
        counted a chunk at a time gets the same vocabulary."""
        return cls(cls._ordered(counts, min_count, max_size, marker, labels), marker, script, labels)

    CHUNK = 1 << 22  # characters encoded at a time: bounds the temporary arrays on huge texts

    def encode(self, text: str) -> np.ndarray:
        # Vectorised: code points via UTF-32, looked up in the sorted code points of the
        # vocabulary. Millions of characters a second instead of a Python loop.
        if not hasattr(self, "_known"):
            # plain ints, no tuples: thousands of new tuples can set off a full garbage collection,
            # a tenth of a second over all that torch has loaded, before the first character
            ids = np.array([i for i in range(len(self.vocab)) if i != self.unk_id], dtype=np.int64)
            codes = np.array([ord(self.vocab[i]) for i in ids.tolist()], dtype=np.int64)
            order = np.argsort(codes, kind="stable")
            self._known = np.stack([codes[order], ids[order]], 1)  # (n, 2): code point, id
        known = self._known
        ids = np.zeros(len(text), dtype=np.uint32)  # <unk> unless found
        if len(known) == 0:
            return ids
        for start in range(0, len(text), self.CHUNK):
            chunk = text[start : start + self.CHUNK].encode("utf-32-le", errors="surrogatepass")
            codes = np.frombuffer(chunk, dtype=np.uint32)
            pos = np.searchsorted(known[:, 0], codes).clip(max=len(known) - 1)
            hit = known[pos, 0] == codes
            ids[start : start + len(codes)] = np.where(hit, known[pos, 1], self.unk_id)
        return ids


class WordTokenizer(Tokenizer):
    """jieba words for Chinese; a word outside the vocabulary falls back to its characters.

    Every character of the corpus that meets min_count is in the vocabulary too, so rare words
    are spelled out instead of turning into <unk>, and decode(encode(text)) == text.
    """

    level = "word"

    @staticmethod
    def _cut(text: str) -> list[str]:
        import jieba  # imported lazily: loading its dictionary takes a second

        jieba.setLogLevel(logging.WARNING)
        return jieba.lcut(text, HMM=True)

    @classmethod
    def build(cls, text: str, min_count: int = 1, max_size: int | None = None, marker: str | None = "^",
              script: str = "unknown", labels: dict[str, str] | None = None, word_min_count: int = 3):
        return cls.from_counts(Counter(cls._cut(text)), min_count, max_size, marker, script, labels, word_min_count)

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None, marker: str | None = "^",
                    script: str = "unknown", labels: dict[str, str] | None = None, word_min_count: int = 3):
        """From how often each jieba word occurs, all of them: together they spell the whole text
        (jieba drops nothing), so they also give each character's count."""
        words = Counter({w: n for w, n in counts.items() if len(w) > 1 and (not marker or marker not in w)})
        chars = Counter()
        for word, n in counts.items():
            for ch in word:
                chars[ch] += n
        # Which tokens: every character (so none is crowded out by words when max_size cuts),
        # then the most frequent words.
        char_vocab = cls._ordered(chars, min_count, max_size, marker, labels)
        room = None if max_size is None else max(0, max_size - len(char_vocab))
        frequent = [w for w, n in cls._by_frequency(words) if n >= word_min_count][:room]
        # In what order: by how often each is emitted once the text is encoded (a kept word as
        # itself, any other spelled out), so that the adaptive output's head holds what is
        # predicted most (万里 among the frequent characters, not in a narrow tail cluster).
        kept = set(frequent)
        emitted = Counter()
        for word, n in counts.items():
            if word in kept:
                emitted[word] += n
            else:
                for ch in word:
                    emitted[ch] += n
        reserved = len(cls._reserved(marker, labels))
        tokens = char_vocab[reserved:] + frequent
        return cls(char_vocab[:reserved] + sorted(tokens, key=lambda t: (-emitted[t], t)), marker, script, labels)

    def encode(self, text: str) -> np.ndarray:
        ids = []
        for word in self._cut(text):
            i = self.index.get(word)
            if i is not None:
                ids.append(i)
            else:
                ids.extend(self.index.get(ch, self.unk_id) for ch in word)
        return np.array(ids, dtype=np.uint32)


def tokenizer_class(level: str) -> type[Tokenizer]:
    if level not in LEVELS:
        raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, not {level!r}")
    return CharTokenizer if level == "char" else WordTokenizer


def build_tokenizer(text: str, level: str = "char", **kwargs) -> Tokenizer:
    return tokenizer_class(level).build(text, **kwargs)


def cut_indexed(text: str) -> tuple[list[str], np.ndarray]:
    """text's jieba words as (its distinct words in first-seen order, (n,) uint32 index of each word
    among them): a worker process sends this back instead of a list of millions of strings.
    Top-level, so that a 'spawn' or 'forkserver' pool can run it."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    index: dict[str, int] = {}
    ids = [index.setdefault(word, len(index)) for word in jieba.cut(text, HMM=True)]
    return list(index), np.array(ids, dtype=np.uint32)
