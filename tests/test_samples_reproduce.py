"""Every seeded `zhrnn sample` command written in samples/ for a shipped model gives the text
below it, byte for byte: a change to decoding, rendering or loading that alters output shows here."""
import shlex

import pytest

from zhrnn.cli import main

from .conftest import REPO

SHIPPED_SAMPLES = ("唐诗-预训练.txt", "宋词-预训练.txt")  # the files of shipped models (the others train a model)


def seeded_commands():
    """(file, command, the text under it) for each '# zhrnn sample ... --seed N' of the files."""
    for name in SHIPPED_SAMPLES:
        blocks, command, lines = [], None, []
        for line in (REPO / "samples" / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                if command:
                    blocks.append((command, lines))
                command, lines = (line[2:] if line.startswith("# zhrnn sample") else None), []
            elif command:
                lines.append(line)
        if command:
            blocks.append((command, lines))
        for command, lines in blocks:
            if "--seed" in command:
                yield pytest.param(command, "\n".join(lines).rstrip("\n"), id=f"{name}: {command[13:]}")


@pytest.mark.parametrize("command, expected", list(seeded_commands()))
def test_seeded_sample_commands_reproduce_their_text(command, expected, capsys, in_tmp):
    argv = shlex.split(command)[1:]  # without "zhrnn"
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip("\n") == expected
