"""Every seeded `zhrnn sample` command written in samples/ for a shipped model gives the text
below it, byte for byte: a change to decoding, rendering or loading that alters output shows here."""
import importlib.util
import shlex

import pytest

from zhrnn.cli import main

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("regenerate", REPO / "samples" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)  # samples/ is not a package: the file that writes the samples, loaded by path

SHIPPED_SAMPLES = ("唐诗-预训练.txt", "宋词-预训练.txt", "现代文-预训练.txt")  # the files of shipped models (the others train a model)


def seeded_commands():
    """(command, the text under it) for each '# zhrnn sample ... --seed N' of the files."""
    for name in SHIPPED_SAMPLES:
        for comment, lines in regenerate.blocks(REPO / "samples" / name):
            command = regenerate.command(comment)
            if command and "--seed" in command:
                yield pytest.param(command, "\n".join(lines).rstrip("\n"), id=f"{name}: {command[13:]}")


@pytest.mark.parametrize("command, expected", list(seeded_commands()))
def test_seeded_sample_commands_reproduce_their_text(command, expected, capsys, in_tmp):
    argv = shlex.split(command)[1:]  # without "zhrnn"
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip("\n") == expected
