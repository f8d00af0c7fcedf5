"""Rewrite the text under each `# zhrnn sample ...` line of a samples file by running the command,
after a shipped model is replaced. Other comment lines stay as they are.

    python samples/regenerate.py samples/唐诗-预训练.txt [samples/宋词-预训练.txt ...]

tests/test_samples_reproduce.py reads the files the same way (blocks) and checks that every seeded
command still gives its text.
"""
from __future__ import annotations

import contextlib
import io
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def blocks(path: Path) -> list[tuple[str, list[str]]]:
    """(comment line, the lines under it) of the file; a `# zhrnn sample` line's are its output."""
    out: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def command(comment: str) -> str | None:
    """The zhrnn sample command of a comment line, or None."""
    return comment[2:] if comment.startswith("# zhrnn sample") else None


def run(cmd: str) -> str:
    from zhrnn.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        if main(shlex.split(cmd)[1:]) != 0:
            raise SystemExit(f"regenerate.py: failed: {cmd}")
    return buffer.getvalue().rstrip("\n")


def main() -> None:
    for name in sys.argv[1:]:
        path = Path(name)
        lines = []
        for comment, under in blocks(path):
            lines.append(comment)
            cmd = command(comment)
            lines += [run(cmd), ""] if cmd else under
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"rewrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
