"""The web server: a page (page.html) and a JSON API over the loaded models.

    GET  /                          the page
    GET  /api/models                every model's card
    GET  /api/models/{name}/curve.svg   its training curve
    GET  /api/health                {"ok": true, "models": {name: {"rows": streams being written or waiting,
                                    "steps": forward passes so far}}}
    POST /api/generate              start, num and SampleConfig's options (those declared api=True):
                                    server-sent events {"i": output, "text": piece} ..., then
                                    {"done": true, "texts": [...], "rhymes": [[group, ...], ...]} (or {"error": ...})
    POST /api/score                 {"bpc", "chars", "unknown", "pieces": [[text, bits], ...]}
    POST /api/next                  text, k, lines and the options that hold step by step (temperature,
                                    seed, top_k, form, ...): {"top": [[token, p], ...], "lines": [[text, score], ...]}

A POST body is a JSON object (Content-Type application/json, which a page of another site cannot
send here without CORS). Models are named by the names the server lists, so a request never names
a file. Sampling runs in the model's Batcher; so does every other use of the model.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..api import TextModel
from ..errors import ZhrnnError
from ..generation.sampling import Sampling
from ..generation.score import score_text, shown
from ..generation.stepper import Stepper
from .batcher import Batcher, Job
from .cards import card, curve_svg, log_records
from .requests import BadRequest, Limits, next_request, parse_body, sample_request, score_request

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


@dataclass
class Served:
    """A model as the server holds it."""
    model: TextModel
    batcher: Batcher
    card: dict


def _error(status: int, message: str) -> Response:
    # ensure_ascii: a message that quotes a request's text stays valid whatever that text holds
    return Response(json.dumps({"error": message}), status_code=status, media_type="application/json")


def create_app(models: dict[str, TextModel], limits: Limits = Limits(), allowed_hosts: list[str] | None = None,
               cors: list[str] | None = None) -> Starlette:
    """The app for these models (name -> model). allowed_hosts: Host headers answered (the
    loopback names by default, against DNS rebinding; ["*"] for any); cors: origins allowed to
    call the API from their pages (none by default)."""
    served = {name: Served(m, Batcher(m.model, limits.rows), card(name, m)) for name, m in models.items()}
    page = PAGE.read_text(encoding="utf-8")

    def pick(data: dict) -> Served:
        name = data.get("model", next(iter(served)))
        if not isinstance(name, str) or name not in served:
            raise BadRequest(f"no model {str(name)[:40]!r} here; the models are {', '.join(served)}", 404)
        return served[name]

    async def body(request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("send the request as JSON (Content-Type: application/json)", 415)
        declared = request.headers.get("content-length", "")
        if re.fullmatch(r"[0-9]{1,18}", declared) and int(declared) > limits.body_bytes:
            raise BadRequest(f"the request body is over {limits.body_bytes:,} bytes", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.body_bytes:
                raise BadRequest(f"the request body is over {limits.body_bytes:,} bytes", 413)
            chunks.append(chunk)
        return parse_body(b"".join(chunks), limits)

    async def on_model(entry: Served, fn):
        future = entry.batcher.call(fn)
        if future is None:
            raise BadRequest("the model has too much waiting already; try again in a moment", 429)
        return await asyncio.wrap_future(future)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": [s.card for s in served.values()], "limits": limits.__dict__})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "models": {name: {"rows": s.batcher.rows, "steps": s.batcher.steps}
                                                    for name, s in served.items()}})

    async def curve(request: Request) -> Response:
        entry = served.get(request.path_params["name"])
        if entry is None:
            return _error(404, "no such model")
        return Response(curve_svg(log_records(entry.model)), media_type="image/svg+xml")

    async def generate(request: Request) -> Response:
        data = await body(request)
        entry = pick(data)
        start, num, cfg = sample_request(data, limits)
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()

        def emit(event: tuple) -> None:  # on the batcher's thread; raises once the loop has closed
            loop.call_soon_threadsafe(queue.put_nowait, event)

        tok = entry.model.tokenizer
        job = Job(Sampling(tok, start, cfg, num, entry.model.device, on_piece=lambda i, piece: emit(("piece", i, piece)),
                           layout=entry.model.layout), emit)
        if not entry.batcher.submit(job):
            raise BadRequest(f"the server is writing {limits.rows} streams already; try again in a moment", 429)

        async def events():
            try:
                while True:
                    waiting = [await queue.get()]
                    while not queue.empty():  # what arrived while the last write went out: one write
                        waiting.append(queue.get_nowait())
                    pieces, last = {}, None  # pieces: output -> text, merged in order
                    for kind, *rest in waiting:
                        if kind == "piece":
                            pieces[rest[0]] = pieces.get(rest[0], "") + rest[1]
                        else:
                            last = {"done": True, "texts": rest[0], "rhymes": rest[1]} if kind == "done" \
                                else {"error": rest[0]}
                    out = [{"i": i, "text": text} for i, text in pieces.items()] + ([last] if last else [])
                    yield "".join(f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in out)
                    if last is not None:
                        return
            finally:  # finished, or the client went away: its rows leave the batch
                job.cancel()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def score(request: Request) -> Response:
        data = await body(request)
        text = score_request(data, limits)
        entry = pick(data)
        m = entry.model
        result = await on_model(entry, lambda: score_text(m.model, m.tokenizer, text, m.info.get("corpus_config"),
                                                          m.device))
        return JSONResponse({"bpc": result.bpc, "chars": result.chars, "unknown": result.unknown,
                             "pieces": [[piece, round(bits, 3)] for piece, bits in
                                        shown(result, m.layout)]})

    async def next_(request: Request) -> Response:
        data = await body(request)
        text, k, lines, cfg = next_request(data, limits)
        entry = pick(data)
        m, marker = entry.model, entry.model.tokenizer.marker

        def offer():
            stepper = Stepper(m.model, m.tokenizer, cfg=cfg, device=m.device, layout=m.layout)
            stepper.read(text)  # one forward pass, one state: the page never undoes inside it
            drafted = stepper.lines(lines) if lines else []
            # a paragraph marker cannot be typed back as text: what is offered is text
            top = [[token, round(p, 4)] for token, p in stepper.top(k + 1) if token != marker][:k]
            return {"text": stepper.text, "top": top,
                    "lines": [[line.text, round(line.score, 3)] for line in drafted]}

        return JSONResponse(await on_model(entry, offer))

    async def refused(request: Request, e: Exception) -> Response:
        if isinstance(e, BadRequest):
            return _error(e.status, str(e))
        if isinstance(e, ZhrnnError):  # the text or options cannot work (an unknown character, a bad form)
            return _error(400, str(e))
        if isinstance(e, HTTPException):
            return _error(e.status_code, e.detail)
        log.exception("request failed")
        return _error(500, f"internal error ({type(e).__name__})")

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS)]
    if cors:
        middleware.append(Middleware(CORSMiddleware, allow_origins=cors, allow_methods=["GET", "POST"],
                                     allow_headers=["Content-Type"]))
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for entry in served.values():  # what is still being written is told the server stops
            entry.batcher.stop()

    app = Starlette(lifespan=lifespan, routes=[Route("/", index), Route("/api/models", list_models),
                            Route("/api/models/{name}/curve.svg", curve), Route("/api/health", health),
                            Route("/api/generate", generate, methods=["POST"]),
                            Route("/api/score", score, methods=["POST"]),
                            Route("/api/next", next_, methods=["POST"])],
                    middleware=middleware,
                    exception_handlers={Exception: refused, HTTPException: refused, ZhrnnError: refused,
                                        BadRequest: refused})
    app.state.served = served
    return app
