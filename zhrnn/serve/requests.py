"""What a request may ask for: each JSON field's type and range, checked before anything runs.

A sampling option is read as SampleConfig declares it (its type, its range, the CLI's sentence);
the server's limits are tighter than the CLI's (a request is anyone's, a command is the user's),
and every refusal is one sentence for a 4xx answer. A model is named by its name in the list the
server was started with, never by a path.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import ZhrnnError
from ..generation.config import SampleConfig
from ..options import names, read_json


class BadRequest(ZhrnnError):
    """A request that cannot be served as asked (HTTP status, one sentence)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 64 * 1024  # a request body, JSON
    length: int = 2_000  # characters of one output
    num: int = 8  # outputs of one request
    candidates: int = 8  # drafts of each line
    rows: int = 64  # streams (outputs x drafts) of every request together: more waits its turn with 429
    text: int = 20_000  # characters to score
    so_far: int = 2_000  # characters of the interactive writer's text so far (read a step at a time)
    start: int = 200  # characters of a start, acrostic or label
    choices: int = 20  # next characters or lines offered
    paragraphs: int = 10  # num_paragraphs of one output


def _number(value, name: str, low: float, high: float, integer: bool):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise BadRequest(f"{name} must be {'an integer' if integer else 'a number'}, not {json.dumps(value)[:40]}")
    if not (math.isfinite(value) and low <= value <= high):
        raise BadRequest(f"{name} must be from {low:g} to {high:g}, not {value}")
    return value


def _text(value, name: str, most: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string, not {json.dumps(value)[:40]}")
    if len(value) > most:
        raise BadRequest(f"{name} is {len(value):,} characters; at most {most:,}", 413)
    if not _encodable(value):
        raise BadRequest(f"{name} holds a lone surrogate (\\ud800-\\udfff), which is no character")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_body(body: bytes, limits: Limits) -> dict:
    """A JSON object, or BadRequest."""
    if len(body) > limits.body_bytes:
        raise BadRequest(f"the request body is over {limits.body_bytes:,} bytes", 413)
    try:
        data = json.loads(body.decode("utf-8")) if body else {}
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deep, an integer of 5,000 digits
        raise BadRequest(f"the request body is not JSON that can be read ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def fields(data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        named = ", ".join(name if _encodable(name) else ascii(name) for name in unknown)
        raise BadRequest(f"unknown field(s) {named[:100]}; known: {', '.join(sorted(allowed))}")


# The options a request may give are SampleConfig's fields declared api=True (generation/config.py):
# their types and ranges are read by options.read_json, in the sentences the command line uses; the
# server adds only its Limits (SERVER_HIGH: a tighter top for some ranges; the length of strings).
API_OPTIONS = names(SampleConfig, lambda option: option.api)
STEP_OPTIONS = names(SampleConfig, lambda option: option.api and option.step)  # those that hold step by step
GENERATE = {"model", "start", "num", *API_OPTIONS}
NEXT = {"model", "text", "k", "lines", *STEP_OPTIONS}
SERVER_HIGH = {"length": "length", "candidates": "candidates", "num_paragraphs": "paragraphs"}  # field: Limits field


def sample_options(data: dict, limits: Limits, allowed: list[str]) -> dict:
    """The options of a body (those of `allowed` it gives, null or "" being not given), read as the
    declarations say, within the server's limits."""
    options: dict = {}
    for name in allowed:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value):
            continue
        high = getattr(limits, SERVER_HIGH[name]) if name in SERVER_HIGH else None
        value = read_json(SampleConfig, name, value, high)  # ConfigError: a 400 in the CLI's words
        options[name] = _text(value, name, limits.start) if isinstance(value, str) else value
    return options


def sample_request(data: dict, limits: Limits) -> tuple[str, int, SampleConfig]:
    """The start, the number of outputs and the SampleConfig of a /api/generate body."""
    fields(data, GENERATE)
    start = _text(data.get("start", ""), "start", limits.start)
    num = _number(data.get("num", 1), "num", 1, limits.num, True)
    options = sample_options(data, limits, API_OPTIONS)
    if "num_paragraphs" in options or "structure" in options:
        options.setdefault("length", limits.length)  # whole paragraphs (sections), up to the server's length
    cfg = SampleConfig(**options)  # its checks across fields (ConfigError: a 400 too)
    if num * cfg.candidates > limits.rows:
        raise BadRequest(f"num x candidates is {num * cfg.candidates}; at most {limits.rows}")
    return start, num, cfg


def score_request(data: dict, limits: Limits) -> str:
    """The text of a /api/score body."""
    fields(data, {"model", "text"})
    text = _text(data.get("text", ""), "text", limits.text)
    if not text.strip():
        raise BadRequest("text is empty")
    return text


def next_request(data: dict, limits: Limits) -> tuple[str, int, int, SampleConfig]:
    """The text so far, next characters, candidate lines and the SampleConfig (temperature, seed,
    the rules) of a /api/next body."""
    fields(data, NEXT)
    text = _text(data.get("text", ""), "text", limits.so_far)
    k = _number(data.get("k", 8), "k", 1, limits.choices, True)
    lines = _number(data.get("lines", 0), "lines", 0, limits.choices, True)
    return text, k, lines, SampleConfig(**sample_options(data, limits, STEP_OPTIONS))
