"""What a request may ask for: each JSON field's type and range, checked before anything runs.

The server's limits are tighter than the CLI's (a request is anyone's, a command is the user's),
and every refusal is one sentence for a 4xx answer. A model is named by its name in the list the
server was started with, never by a path.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import ZhrnnError
from ..generation.config import SampleConfig


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


GENERATE = {"model", "start", "length", "num", "temperature", "top_k", "top_p", "seed", "form", "acrostic", "label",
            "tones", "rhyme", "candidates", "num_paragraphs", "greedy", "no_repeat_scope"}


def sample_request(data: dict, limits: Limits) -> tuple[str, int, SampleConfig]:
    """The start, the number of outputs and the SampleConfig of a /api/generate body."""
    fields(data, GENERATE)
    start = _text(data.get("start", ""), "start", limits.start)
    num = _number(data.get("num", 1), "num", 1, limits.num, True)
    options: dict = {}
    if data.get("length") is not None:
        options["length"] = _number(data["length"], "length", 1, limits.length, True)
    if data.get("num_paragraphs") is not None:
        options["num_paragraphs"] = _number(data["num_paragraphs"], "num_paragraphs", 1, 10, True)
        options.setdefault("length", limits.length)  # whole paragraphs, up to the server's length
    if data.get("temperature") is not None:
        options["temperature"] = _number(data["temperature"], "temperature", 0.05, 5, False)
    if data.get("top_k") is not None:
        options["top_k"] = _number(data["top_k"], "top_k", 1, 1_000_000, True)
    if data.get("top_p") is not None:
        options["top_p"] = _number(data["top_p"], "top_p", 0.01, 1, False)
    if data.get("seed") is not None:
        options["seed"] = _number(data["seed"], "seed", 0, 2**63 - 1, True)
    if data.get("candidates") is not None:
        options["candidates"] = _number(data["candidates"], "candidates", 1, limits.candidates, True)
    for name in ("form", "acrostic", "label", "tones", "no_repeat_scope"):
        if data.get(name) not in (None, ""):
            options[name] = _text(data[name], name, limits.start)
    for name in ("rhyme", "greedy"):
        if data.get(name) is not None:
            if not isinstance(data[name], bool):
                raise BadRequest(f"{name} must be true or false, not {json.dumps(data[name])[:40]}")
            options[name] = data[name]
    cfg = SampleConfig(**options)  # its own checks (ConfigError: a 400 too)
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


def next_request(data: dict, limits: Limits) -> tuple[str, int, int, float, int | None]:
    """The text so far, next characters, candidate lines, temperature and seed of a /api/next body."""
    fields(data, {"model", "text", "k", "lines", "temperature", "seed"})
    return (_text(data.get("text", ""), "text", limits.so_far),
            _number(data.get("k", 8), "k", 1, limits.choices, True),
            _number(data.get("lines", 0), "lines", 0, limits.choices, True),
            _number(data.get("temperature", 0.8), "temperature", 0.05, 5, False),
            _number(data["seed"], "seed", 0, 2**63 - 1, True) if data.get("seed") is not None else None)
