"""Compressed corpora (.gz, .xz, .bz2, .zip) read as the text inside, with one-line errors."""
import bz2
import gzip
import lzma
import zipfile

import pytest

from zhrnn.errors import CorpusError
from zhrnn.text import decoding
from zhrnn.text.pipeline import CorpusConfig, load_corpus
from zhrnn.training.rundir import corpus_name

from .conftest import POEMS, REPO

WRITERS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zip"])
@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_compressed_file_gives_the_text_of_its_plain_twin(tmp_path, monkeypatch, suffix, encoding):
    plain = tmp_path / "诗.txt"
    plain.write_bytes((POEMS * 30).encode(encoding))
    packed = tmp_path / f"诗.txt{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("诗.txt", plain.read_bytes())
    else:
        packed.write_bytes(WRITERS[suffix](plain.read_bytes()))
    monkeypatch.setattr(decoding, "CHUNK_BYTES", 97)  # blocks that cut characters, past the head
    monkeypatch.setattr(decoding, "DETECT_BYTES", 200)
    assert load_corpus(packed, CorpusConfig()).text == load_corpus(plain, CorpusConfig()).text
    assert corpus_name(str(packed)) == "诗"


def test_the_files_of_a_zip_are_read_in_name_order_like_a_directory(tmp_path):
    lines = POEMS.splitlines()
    with zipfile.ZipFile(tmp_path / "诗.zip", "w") as archive:
        archive.writestr("b.txt", lines[1])
        archive.writestr("a.txt", lines[0])
        archive.writestr("__MACOSX/._a.txt", b"\x00\x05\x16\x07")  # what a Mac adds: not text
        archive.writestr("notes.json", b"{}")
    text = load_corpus(tmp_path / "诗.zip", CorpusConfig(paragraphs="off")).text
    assert text == lines[0] + "\n" + lines[1]


def test_a_directory_takes_compressed_text_files_too(tmp_path):
    (tmp_path / "a.txt").write_text(POEMS, encoding="utf-8")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(POEMS.encode()))
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(b"{}"))
    assert [p.name for p in decoding.text_files(tmp_path)] == ["a.txt", "b.txt.gz"]


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zip"])
def test_a_cut_or_corrupt_compressed_file_is_one_clear_error(tmp_path, suffix):
    data = (POEMS * 200).encode()
    path = tmp_path / f"诗.txt{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("诗.txt", data)
        whole = path.read_bytes()
    else:
        whole = WRITERS[suffix](data)
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CorpusError, match=r"cannot read|not a valid \.zip"):
        load_corpus(path, CorpusConfig())


def test_the_shipped_first_run_corpus_reads_as_its_readme_says():
    corpus = REPO / "corpora" / "唐诗律绝.txt.xz"
    prepared = load_corpus(corpus, CorpusConfig())
    prepared.text  # a complete pass: then info holds the counts
    assert prepared.info.paragraphs == 38_657 and prepared.info.script == "simplified"
    assert prepared.info.chars > 1_700_000
