"""Options declared once: a dataclass field says its flag, its help (zh and en), its range and
where it may be given, and everything else is built from that.

    top_k: int | None = option(None, type=int, flags="--top-k", low=1, group=DECODING, api=True, step=True,
                               zh="只从最可能的 k 个字中选", en="sample from the k most likely")

- `check_options(obj)`, in the dataclass's `__post_init__`, refuses a value out of its range or
  choices with one sentence (`--top-k must be at least 1, not 0`);
- `add_options(parser, cls)` gives argparse its arguments (default SUPPRESS: a flag not given
  leaves the dataclass's default);
- `read_json(cls, name, value)` takes a JSON value (the server's requests): its type, then the same
  range and the same sentence; a server may only narrow the range (`high=`);
- `describe(cls)` lists the options for a docstring; `names(cls, ...)` picks fields by where they go.

The bottom layer with errors.py: no torch, nothing of zhrnn but its errors.
"""
from __future__ import annotations

import argparse
import json
import math
import numbers
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable

from .errors import ConfigError

KEY = "zhrnn"  # the key of a field's metadata that holds its Option


@dataclass(frozen=True)
class Option:
    """What a field declares besides its default (see option())."""
    flags: tuple[str, ...] = ()
    zh: str = ""
    en: str = ""
    type: type | None = None
    low: float | None = None
    above: float | None = None
    high: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    many: bool = False
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    const: Any = None
    negatable: bool = False
    hint: str = ""
    group: str | None = None
    api: bool = False
    step: bool = False
    resumable: bool = False

    @property
    def help(self) -> str:
        return " / ".join(text for text in (self.zh, self.en) if text)

    @property
    def span(self) -> str:
        """The range in words: 'at least 1', 'in (0, 1]', 'in [0, 1)', ... ('' when there is none)."""
        low = self.above if self.above is not None else self.low
        if self.below is not None:  # an open top
            if low is None:
                return f"below {_show(self.below)}"
            return f"in {'(' if self.above is not None else '['}{_show(low)}, {_show(self.below)})"
        if low is None:
            return "" if self.high is None else f"at most {_show(self.high)}"
        if self.high is None:
            return f"above {_show(low)}" if self.above is not None else f"at least {_show(low)}"
        return f"in ({_show(low)}, {_show(self.high)}]" if self.above is not None \
            else f"from {_show(low)} to {_show(self.high)}"


def option(default: Any = MISSING, *, default_factory: Any = MISSING, flags: tuple[str, ...] | str = (),
           zh: str = "", en: str = "", type: type | None = None, low: float | None = None,
           above: float | None = None, high: float | None = None, below: float | None = None,
           choices: tuple[str, ...] = (), many: bool = False, parse: Callable[[str], Any] | None = None,
           metavar: str | None = None, const: Any = None, negatable: bool = False, hint: str = "", group: str | None = None,
           api: bool = False, step: bool = False, resumable: bool = False):
    """A dataclass field with its option declared:

    flags       the command line's spellings, the first one the name ("--top-k", or ("--iter",) for a
                field named iters; aliases after it: ("--hidden-size", "--hidden_size")); () for none
    zh, en      help, joined as "zh / en" (either may be left out)
    type        int, float, str or bool (default: the type of the default)
    low, above, high, below   the range: at least low (or above `above`), at most high (or below
                `below`); None values and the default are never refused (None means "decide for me")
    choices     the strings taken (the default is taken too, as None is)
    many        a number or a list of them (the command line: a comma-separated list)
    parse       how the command line reads it (default: type); it may refuse with ConfigError, which
                the CLI says as it says any other (parse_duration: --time 1x); metavar as argparse's
    const       the value of the flag given without one (argparse nargs="?")
    negatable   a bool with --no-... too (argparse BooleanOptionalAction); else store_true
    hint        added to a refusal of its range (" (use --greedy for the most likely text)")
    group       the title of its argument group in --help (None: the command's own)
    api         the server's requests may give it; step: the interactive writer (and /api/next) takes it
    resumable   --resume may change it (training)
    """
    if isinstance(flags, str):
        flags = (flags,)
    if type is None:
        type = str if choices else (None if default in (MISSING, None) else default.__class__)
    if type not in (int, float, str, bool):
        raise TypeError(f"option(): say type= (int, float, str or bool) for a default of {default!r}")
    if low is not None and above is not None:
        raise TypeError("option(): low or above, not both")
    if high is not None and below is not None:
        raise TypeError("option(): high or below, not both")
    meta = Option(tuple(flags), zh, en, type, low, above, high, below, tuple(choices), many, parse, metavar, const,
                  negatable, hint, group, api, step, resumable)
    return field(default=default, default_factory=default_factory, metadata={KEY: meta})


def declared(cls) -> list[tuple[str, Option]]:
    """(field name, Option) of each declared field of a dataclass (or of an instance's), in order."""
    return [(f.name, f.metadata[KEY]) for f in fields(cls) if KEY in f.metadata]


def names(cls, where: Callable[[Option], bool] = lambda opt: True) -> list[str]:
    """The declared fields for which where(option) holds: names(SampleConfig, lambda o: o.api)."""
    return [name for name, opt in declared(cls) if where(opt)]


def subject(name: str, opt: Option) -> str:
    """How a refusal names the option: its flag, with the field's name where that is not the flag's
    own spelling (--len (length)), so that one sentence serves the command line and a JSON body."""
    if not opt.flags:
        return name
    flag = opt.flags[0]
    return flag if flag.lstrip("-").replace("-", "_") == name else f"{flag} ({name})"


def _show(x) -> str:
    """A bound: 1, 0.5, 1,000,000."""
    if isinstance(x, float):
        return f"{x:g}"
    return f"{x:,}" if abs(x) >= 10_000 else str(x)


def _value(value) -> str:
    """A value refused, the same whichever way it came: 0.0 from the command line and 0 in JSON
    are both 0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_value, value)) + ")"
    return str(value)


def _in_range(x, opt: Option) -> bool:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):  # numpy's numbers too
        return False
    if isinstance(x, float) and not math.isfinite(x):
        return False
    return ((opt.low is None or x >= opt.low) and (opt.above is None or x > opt.above)
            and (opt.high is None or x <= opt.high) and (opt.below is None or x < opt.below))


def check(name: str, opt: Option, value, high: float | None = None) -> None:
    """Refuse a value out of the option's range or choices (ConfigError, one sentence). high: a
    tighter upper bound of the caller's own (a server's limits)."""
    if high is not None and (opt.high is None or high < opt.high) and (opt.below is None or high < opt.below):
        opt = replace(opt, high=high, below=None)
    if opt.choices:
        if value not in opt.choices:
            taken = ", ".join(opt.choices[:-1]) + f" or {opt.choices[-1]}" if len(opt.choices) > 1 else opt.choices[0]
            raise ConfigError(f"{subject(name, opt)} takes {taken}, not {value!r}")
    elif opt.span:
        values = value if opt.many and isinstance(value, (list, tuple)) else (value,)
        if not values or not all(_in_range(v, opt) for v in values):
            raise ConfigError(f"{subject(name, opt)} must be {opt.span}, not {_value(value)}{opt.hint}")


def check_options(obj, skip: tuple[str, ...] = ()) -> None:
    """Every declared field of a dataclass instance in its range (its default and None always are),
    but those skipped (a field that other fields make idle)."""
    defaults = {f.name: f.default if f.default_factory is MISSING else f.default_factory() for f in fields(obj)}
    for name, opt in declared(obj):
        if name in skip:
            continue
        value = getattr(obj, name)
        if value is not None and not value == defaults[name]:
            check(name, opt, value)


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def read_json(cls, name: str, value, high: float | None = None):
    """A field's value as a JSON body gives it: its type (an integer, a number, a string, true or
    false), then its range as check() has it, in the same sentence. Returns the value (a list of
    numbers as a tuple). An option whose flag may be given bare (const) also takes true for that,
    and false for not given ("rhyme": true is --rhyme)."""
    opt = dict(declared(cls))[name]
    kind = opt.type
    if opt.const is not None and isinstance(value, bool):  # a flag that may be given bare: true is that, false none
        return opt.const if value else None
    if opt.many and isinstance(value, list):
        ok = bool(value) and all(_is(v, kind) for v in value)
        value = tuple(value)
    else:
        ok = _is(value, kind)
    if not ok:
        try:
            shown = json.dumps(value, ensure_ascii=False)[:40]
        except (TypeError, ValueError):
            shown = type(value).__name__
        what = _KINDS[kind] + (" or a list of them" if opt.many else "")
        raise ConfigError(f"{name} must be {what}, not {shown}")
    check(name, opt, value, high)
    return value


def _is(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _numbers(kind):
    def parse(text: str):
        """'0.8', or a comma-separated list: '0.5,1.0,0.8'."""
        try:
            values = tuple(kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number or a comma-separated list: {text!r}") from None
        return values[0] if len(values) == 1 else values
    return parse


def add_options(parser, cls, where: Callable[[Option], bool] = lambda opt: True) -> None:
    """Add the declared options of cls (those for which where(option) holds and that have flags)
    to an argparse parser. A flag not given stays out of the namespace (the dataclass's default
    applies); one given lands under the field's name. Options of several dataclasses with the same
    group share it (see group())."""
    for name, opt in declared(cls):
        if not opt.flags or not where(opt):
            continue
        target = group(parser, opt.group)
        kwargs: dict[str, Any] = dict(dest=name, default=argparse.SUPPRESS, help=opt.help.replace("%", "%%"))
        if opt.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if opt.negatable else "store_true"
        else:
            kwargs["type"] = opt.parse or (_numbers(opt.type) if opt.many else opt.type)
            if opt.const is not None:
                kwargs.update(nargs="?", const=opt.const)
            metavar = opt.metavar or ("{" + ",".join(opt.choices) + "}" if opt.choices else None)
            if metavar:
                kwargs["metavar"] = metavar
        target.add_argument(*opt.flags, **kwargs)


def group(parser, title: str | None):
    """The argument group of parser with that title, made on first use (None: the parser itself):
    `zhrnn train` puts options of three dataclasses, and --resume, in its 训练 and 文本 groups."""
    if title is None:
        return parser
    for found in parser._action_groups:  # argparse keeps its groups here and has no public way to them
        if found.title == title:
            return found
    return parser.add_argument_group(title)


def given(args, cls, where: Callable[[Option], bool] = lambda opt: True) -> dict:
    """The options of cls that an argparse namespace holds (those given on the command line)."""
    return {name: getattr(args, name) for name in names(cls, where) if hasattr(args, name)}


def describe(cls, where: Callable[[Option], bool] = lambda opt: True, indent: str = "    ") -> str:
    """One line per option, for a docstring: name (flag): help in English, range."""
    lines = []
    for name, opt in declared(cls):
        if where(opt):
            flag = f" ({opt.flags[0]})" if opt.flags else ""
            taken = " | ".join(opt.choices) or opt.span
            taken = f"; {taken}" if taken and taken not in opt.en else ""
            lines.append(f"{indent}{name}{flag}: {opt.en or opt.zh}{taken}")
    return "\n".join(lines)
