"""zhrnn serve: a web page to write with the models (pip install "zhrnn[serve]").

    app.py       routes: the page, the JSON API, server-sent events
    batcher.py   the thread that owns a model: requests batched into one forward pass a step
    requests.py  what a request may ask for, checked before anything runs
    cards.py     a model's card and its training curve as SVG
    page.html    the page (plain HTML and JavaScript, no build step)
"""
from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from .. import checkpoint, shipped
from ..errors import ConfigError

log = logging.getLogger(__name__)


def default_models() -> list[str]:
    """The shipped models, and the newest run under ./runs if there is one."""
    chosen = list(shipped.names())
    newest = checkpoint.latest()
    if newest is not None:
        chosen.append(str(newest.parent))
    return chosen


def load_models(specs: list[str], device: str = "cpu") -> dict:
    """name -> TextModel for each --model (a shipped name, a run directory or a checkpoint); a
    run is named by its directory, a second of the same name gets a number."""
    from ..api import load

    models: dict = {}
    for spec in specs:
        model = load(spec, device=device)
        name = spec if shipped.find(spec) is not None and not Path(spec).exists() else (
            model.path.parent.name if model.path.name in (checkpoint.FILENAME, checkpoint.BEST) else model.path.stem)
        base, n = name, 2
        while name in models:
            name, n = f"{base} ({n})", n + 1
        models[name] = model
    if not models:
        raise ConfigError("no model to serve: name one with --model, or train one (zhrnn train FILE)")
    return models


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(specs: list[str] | None, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu",
          cors: list[str] | None = None) -> None:
    try:
        import uvicorn

        from .app import create_app
    except ImportError as e:
        raise ConfigError(f"zhrnn serve needs the serve extra ({e.name} is missing): "
                          'pip install "zhrnn[serve]"') from None
    models = load_models(specs or default_models(), device)
    public = not is_loopback(host)
    if public:
        log.warning("serving on %s: anyone who can reach this address can use the models", host)
    from .app import LOOPBACK_HOSTS

    app = create_app(models, allowed_hosts=["*"] if public else sorted({*LOOPBACK_HOSTS, host}), cors=cors)
    log.info("serving %s on http://%s:%d", ", ".join(models), host if ":" not in host else f"[{host}]", port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
