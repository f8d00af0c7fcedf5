"""Char and word (jieba) tokenizers: round trips, <unk>, vocabulary limits, serialisation."""
from collections import Counter

import pytest

from zhrnn.model import MIN_CLUSTER_WIDTH, CharRNN, ModelConfig

from zhrnn.text.tokenizer import UNK, CharTokenizer, Tokenizer, WordTokenizer, build_tokenizer

MIXED = "^我们在北京天安门，看升旗！\n^Hello, world!  两个空格\t和制表符。\n^表情😀🇨🇳也是字：ＡＨ全角\n"


@pytest.mark.parametrize("level", ["char", "word"])
def test_decode_encode_round_trips_the_training_text(level):
    tok = build_tokenizer(MIXED * 3, level)
    assert tok.decode(tok.encode(MIXED)) == MIXED
    assert UNK not in tok.decode(tok.encode(MIXED))


def test_every_character_is_one_token_at_char_level():
    tok = CharTokenizer.build(MIXED)
    ids = tok.encode("😀，Ｈ")
    assert len(ids) == 3 and tok.decode(ids) == "😀，Ｈ"
    assert tok.vocab[0] == UNK and tok.vocab[1] == "^"  # reserved ids come first
    assert set(tok.char_lengths()) == {1}


def test_min_count_and_max_size_send_rare_characters_to_unk():
    text = "的的的的了了了是是人"
    tok = CharTokenizer.build(text, min_count=2, marker=None)
    assert tok.vocab == [UNK, "的", "了", "是"]
    assert tok.decode(tok.encode("人的")) == UNK + "的"
    assert CharTokenizer.build(text, max_size=3, marker=None).vocab == [UNK, "的", "了"]
    assert tok.unknown_chars("人的人") == ["人"]


def test_word_level_keeps_frequent_words_and_spells_out_rare_ones():
    text = "^我们喜欢北京。\n^我们喜欢上海。\n^我们喜欢北京烤鸭。\n"
    tok = WordTokenizer.build(text, word_min_count=2)
    assert "我们" in tok.index and "喜欢" in tok.index
    assert "上海" not in tok.index  # seen once: spelled as 上 + 海, not <unk>
    ids = tok.encode("我们喜欢上海")
    assert [tok.vocab[i] for i in ids] == ["我们", "喜欢", "上", "海"]
    # bits per character need the characters each token stands for
    assert tok.char_lengths()[tok.index["我们"]] == 2


def test_the_word_vocabulary_is_in_the_order_tokens_are_emitted_after_encoding():
    """Characters used to come first and words after, so the most frequent word sat in the
    adaptive output's narrow tail; the order is now how often each token is predicted."""
    text = "^万里长风，万里江山。\n^明月照万里，清风来。\n^万里无云，明月高悬。\n" * 5
    tok = WordTokenizer.build(text, word_min_count=2)
    counts = Counter(tok.encode(text).tolist())
    reserved = 2  # <unk>, ^
    emitted = [counts.get(i, 0) for i in range(reserved, len(tok))]
    assert emitted == sorted(emitted, reverse=True)
    # the most emitted word is ahead of every character but the layout and punctuation (it was after all of them)
    assert tok.index["万里"] < min(tok.index[c] for c in "万里长风江山明月清来")
    # a character inside kept words only is still there, to spell new words, but at the end
    assert tok.encode("万").tolist() == [tok.index["万"]] and counts.get(tok.index["万"], 0) == 0


def test_adaptive_clusters_stay_wide_enough_to_tell_their_tokens_apart():
    for vocab, hidden in [(60_000, 256), (8_700, 256), (8_700, 512), (5_000, 48)]:
        config = ModelConfig(vocab_size=vocab, hidden_size=hidden).resolved()
        widths = [cluster[0].out_features for cluster in CharRNN(config).head.tail]
        assert min(widths) >= min(hidden, MIN_CLUSTER_WIDTH), (vocab, hidden, widths)
        assert widths == sorted(widths, reverse=True)
    # a checkpoint from before keeps its quarter-width clusters
    assert ModelConfig.from_dict({"vocab_size": 8700, "output_layer": "adaptive"}).resolved().div_value == 4.0


def test_tokenizer_survives_serialisation():
    for level in ("char", "word"):
        tok = build_tokenizer(MIXED, level, script="simplified")
        again = Tokenizer.from_dict(tok.to_dict())
        assert type(again) is type(tok)
        assert again.vocab == tok.vocab and again.marker == "^" and again.script == "simplified"
        assert list(again.encode(MIXED)) == list(tok.encode(MIXED))


def test_text_lengths_leave_out_the_layout_and_labels():
    tok = WordTokenizer(["<unk>", "^", "\U000f0000", "春", "\n", "春天\n", "。"], "^", labels={"李白": "\U000f0000"})
    assert tok.text_lengths().tolist() == [1, 0, 0, 1, 0, 2, 1]
    assert tok.char_lengths().tolist() == [1, 1, 0, 1, 1, 3, 1]  # what val_bpc counts: markers and breaks too
