"""`zhrnn interactive`: write together with the model in the terminal. Part of the CLI layer
(it reads input and prints); the model side is generation/stepper.py."""
from __future__ import annotations

import sys

from .errors import ConfigError, VocabularyError
from .generation import Stepper

HELP = ("1-9 选候选字 choose | 直接输入文字 type text | = 候选整句 candidate lines | - 撤销上一步 undo the last step | "
        "回车 续写 10 字 continue | +N 续写 N 字 | q 退出 quit")


def shown(token: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(token, token)


def run(stepper: Stepper, candidates: int = 9, out=sys.stdout, inp=sys.stdin, lines: int = 5) -> str:
    """The terminal loop; the stepper's SampleConfig decides the temperature, the rules and the seed."""
    if candidates < 1 or lines < 1:
        raise ConfigError(f"--top and --lines must be at least 1, not {min(candidates, lines)}")
    print(HELP, file=out)
    drafts = []  # after '=': the candidate lines, which the numbers then choose among
    while True:
        print(f"\n{stepper.text}", file=out)
        if drafts:
            print("候选整句, 最通顺的在前 / candidate lines, the most probable first:", file=out)
            print("\n".join(f"  {i}: {''.join(map(shown, d.text))}" for i, d in enumerate(drafts, 1)), file=out)
        else:
            options = [(tok, p) for tok, p in stepper.top(candidates + 1) if tok != stepper.tokenizer.marker][:candidates]
            print("  ".join(f"{i}:{shown(tok)} {p:.0%}" for i, (tok, p) in enumerate(options, 1)), file=out)
        print("> ", end="", file=out, flush=True)
        line = inp.readline()
        if not line or line.strip() in ("q", "quit", "exit"):
            break
        line = line.rstrip("\n")
        choices, drafts = drafts, []
        try:
            if line == "=":
                drafts = stepper.lines(lines)
            elif choices and line.isascii() and line.isdigit():
                if 1 <= int(line) <= len(choices):
                    stepper.take(choices[int(line) - 1].ids)
                else:
                    print(f"(no line {line})", file=out)
                    drafts = choices
            elif line == "":
                stepper.continue_(10)
            elif line == "-":
                if not stepper.undo():
                    print("(nothing to undo)", file=out)
            elif line.startswith("+") and line[1:].isascii() and line[1:].isdigit():
                stepper.continue_(int(line[1:]))
            elif line.isascii() and line.isdigit() and 1 <= int(line) <= len(options):
                stepper.feed(options[int(line) - 1][0])
            else:
                stepper.feed(line)
        except VocabularyError as e:
            print(f"({e})", file=out)
    return stepper.text
