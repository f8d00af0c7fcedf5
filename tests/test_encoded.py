"""The encoded-text cache: prepared once, memory-mapped, reused only for the same bytes and
options; a damaged file found and prepared again; one preparation at a time; `zhrnn cache`."""
import logging
import threading
import time

import numpy as np
import pytest

from zhrnn.cli import main as cli_main
from zhrnn.training import cache as cache_files, encoded
from zhrnn.text.pipeline import CorpusConfig
from zhrnn.training.encoded import encode_corpus
from zhrnn.errors import ConfigError, CorpusError
from zhrnn.text.tokenizer import build_tokenizer

from .conftest import POEMS


def keep(built, info):
    return built


def prepare(path, cache, **options):
    return encode_corpus([path], CorpusConfig(**options), "char", 1, None, keep, cache=cache)


@pytest.fixture
def count_reads(monkeypatch):
    """How often the text itself is read (the cache spares exactly this)."""
    reads = []
    real = encoded.load_corpus

    def counting(*args, **kwargs):
        reads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(encoded, "load_corpus", counting)
    return reads


def test_second_run_maps_the_cached_ids_without_reading_the_text(poems, tmp_path, count_reads):
    first = prepare(poems, tmp_path / "cache")
    second = prepare(poems, tmp_path / "cache")
    assert len(count_reads) == 1 and not first.cached and second.cached
    assert isinstance(second.ids, np.memmap) and second.ids.dtype == np.uint16
    expected = build_tokenizer("".join("^" + line + "\n" for line in POEMS.splitlines()))
    assert second.tokenizer.vocab == expected.vocab
    assert np.array_equal(second.ids, expected.encode("".join("^" + line + "\n" for line in POEMS.splitlines())))
    assert second.info == first.info and second.digest == first.digest


def test_edited_text_or_other_options_prepare_again(poems, tmp_path, count_reads):
    cache = tmp_path / "cache"
    a = prepare(poems, cache)
    poems.write_text(POEMS.replace("春", "秋"), encoding="utf-8")  # same name, same length, other bytes
    b = prepare(poems, cache)
    c = prepare(poems, cache, paragraphs="off")
    assert len(count_reads) == 3
    assert "秋" in b.tokenizer.index and "春" not in b.tokenizer.index and a.digest != b.digest
    assert c.tokenizer.marker_id is None
    assert len(list((cache / "encoded").iterdir())) == 3


def test_the_vocabulary_chosen_decides_the_ids_file(poems, tmp_path, count_reads):
    """A resumed or fine-tuned model encodes the same text in its own vocabulary."""
    cache = tmp_path / "cache"
    plain = prepare(poems, cache)
    reversed_vocab = lambda built, info: type(built)([built.vocab[0], *reversed(built.vocab[1:])], built.marker)
    other = encode_corpus([poems], CorpusConfig(), "char", 1, None, reversed_vocab, cache=cache)
    assert not other.cached and len(count_reads) == 2
    assert other.tokenizer.decode(other.ids.tolist()) == plain.tokenizer.decode(plain.ids.tolist())
    assert encode_corpus([poems], CorpusConfig(), "char", 1, None, reversed_vocab, cache=cache).cached


def test_a_damaged_cache_is_prepared_again(poems, tmp_path, count_reads, caplog):
    cache = tmp_path / "cache"
    expected = np.array(prepare(poems, cache).ids)  # a copy: the damage below is to the mapped file
    (entry,) = (cache / "encoded").iterdir()
    (entry / "corpus.json").write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        again = prepare(poems, cache)
    assert "is damaged" in caplog.text and len(count_reads) == 2
    assert np.array_equal(again.ids, expected)
    for ids in entry.glob("ids-*.npy"):
        ids.write_bytes(b"\x93NUMPY garbage")
    assert np.array_equal(prepare(poems, cache).ids, expected)


def test_an_unwritable_cache_still_trains_from_memory(poems, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        data = prepare(poems, blocker)
    assert "cannot write the encoded text" in caplog.text
    assert not isinstance(data.ids, np.memmap) and len(data.ids) == len(POEMS) + 4


def test_a_missing_file_is_still_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        prepare(tmp_path / "missing.txt", tmp_path / "cache")


@pytest.mark.parametrize("damage", ["empty", "half", "header", "flipped", "no check"])
def test_a_cut_or_changed_ids_file_is_found_removed_and_prepared_again(damage, poems, tmp_path, count_reads, caplog):
    cache = tmp_path / "cache"
    expected = np.array(prepare(poems, cache).ids)
    (ids,) = (cache / "encoded").glob("*/ids-*.npy")
    data = ids.read_bytes()
    if damage == "no check":  # a write that never got as far as its check
        ids.with_name(ids.name + ".check").unlink()
    else:
        ids.unlink()  # a new file, not the mapped one changed under the first result
        ids.write_bytes({"empty": b"", "half": data[: len(data) // 2], "header": data[:60],
                         "flipped": data[:-3] + bytes(3)}[damage])
    with caplog.at_level(logging.WARNING):
        again = prepare(poems, cache)
    assert [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()] == \
        [f"the cached {ids} is damaged (cut short or changed); preparing the text again"]
    assert np.array_equal(again.ids, expected) and len(count_reads) == 2
    assert ids.read_bytes() == data and cache_files.intact(ids)
    caplog.clear()
    assert prepare(poems, cache).cached and "damaged" not in caplog.text  # whole again


def test_two_processes_preparing_one_text_read_it_once(poems, tmp_path, count_reads, monkeypatch, caplog):
    cache, results, errors = tmp_path / "cache", [], []
    counting = encoded.load_corpus

    def slow(*args, **kwargs):  # long enough that the second arrives while the first prepares
        time.sleep(0.5)
        return counting(*args, **kwargs)

    monkeypatch.setattr(encoded, "load_corpus", slow)

    def run():
        try:
            results.append(prepare(poems, cache))
        except Exception as e:  # noqa: BLE001  reported below
            errors.append(e)

    # one flock per open file: two threads lock each other out as two processes do
    threads = [threading.Thread(target=run) for _ in range(2)]
    with caplog.at_level(logging.INFO):
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join()
    assert "another process is preparing this text" in caplog.text
    assert not errors and len(results) == 2 and len(count_reads) == 1
    assert np.array_equal(results[0].ids, results[1].ids)
    (entry,) = (cache / "encoded").iterdir()
    assert sorted(p.name for p in entry.iterdir() if p.name != ".lock") == sorted(
        ["corpus.json", "corpus.json.check", *(p.name for p in entry.glob("ids-*")) ])
    assert len(list(entry.glob("ids-*.npy"))) == 1 and not list(entry.glob(".*.tmp"))


def test_zhrnn_cache_lists_and_clears(poems, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZHRNN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    prepare(poems, None)
    other = tmp_path / "其他.txt"
    other.write_text(POEMS * 3, encoding="utf-8")
    prepare(other, None)
    assert cli_main(["cache"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"{tmp_path / 'xdg' / 'zhrnn' / 'encoded'}  (2 entries")
    assert "诗.txt" in listed and "其他.txt" in listed and f"{3 * (len(POEMS) + 4):,} tokens" in listed
    assert cli_main(["cache", "clear", "--older-than", "1"]) == 0  # both used just now
    assert capsys.readouterr().out.startswith("removed 0 of 2 entries")
    assert cli_main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 2 of 2 entries")
    assert not list((tmp_path / "xdg" / "zhrnn" / "encoded").iterdir())


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ZHRNN_CACHE", str(tmp_path / "z"))
    assert cache_files.cache_root() == tmp_path / "z"
    monkeypatch.delenv("ZHRNN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_files.cache_root() == tmp_path / "xdg" / "zhrnn"
    assert cache_files.cache_root(tmp_path / "given") == tmp_path / "given"


def test_a_cache_shared_by_processes_must_be_writable(poems, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be", encoding="utf-8")
    with pytest.raises(ConfigError, match="choose a writable --cache-dir"):
        encode_corpus([poems], CorpusConfig(), "char", 1, None, keep, cache=blocker, shared=True)


def test_a_run_from_the_cache_repeats_the_warnings_of_reading_the_text(tmp_path, caplog):
    path = tmp_path / "诗.txt"
    path.write_text("床前明月光^疑是地上霜\n春眠不觉晓\n", encoding="utf-8")  # a '^' of the text's own
    for run in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            data = prepare(path, tmp_path / "cache")
        assert data.cached == (run == 1)
        assert "the text has 1 '^' characters of its own" in caplog.text
