"""zhrnn serve for a while (issue 33): waves of clients that stream, cancel half-way, send hostile
bodies, ask for long texts, score and ask for the next character, against one `zhrnn serve`
process on localhost. It says whether the page runs for hours: resident memory after warm-up,
the batcher back to zero rows after every wave, no 5xx answer, every hostile body a 4xx, and the
first-character latency (p95) early and late.

    python benchmarks/serve_soak.py --model 唐诗 --minutes 10 --clients 32
    python benchmarks/serve_soak.py --model runs/诗 --seconds 20 --clients 16 --json   # the test's version

Resident memory is the server process's VmRSS (/proc, Linux), read after each wave once its rows
are back to zero; warm-up is the first two waves.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

# Bodies no server should run: each must get a 4xx, never a 5xx or a dropped connection.
HOSTILE = [
    b"{not json", b"[1, 2, 3]", b'"a string"', b'{"length": 1e999}', b'{"start": 5}', b'{"num": 1000}',
    b'{"temperature": -1}', b'{"top_p": 2}', b'{"seed": "x"}', b'{"model": "../../etc/passwd"}',
    b'{"length": 100000}', b'{"unknown": 1}', b'{"start": "\\ud800"}', b"[" * 5000 + b"]" * 5000,
    json.dumps({"start": "春" * 5000}).encode(), b'{"form": "no such form"}', b'{"top_k": 0}',
]
# Bodies at the edges of what is allowed: each must be served (200).
EDGES = [{"temperature": 1e-300}, {"temperature": 1e300}, {"top_p": 1e-300, "temperature": 0.5},
         {"repetition_penalty": 1e300}, {"start": "", "length": 1}]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] if xs else float("nan")


async def generate(client: httpx.AsyncClient, body: dict, cancel_after: int | None = None) -> dict:
    began, first = time.perf_counter(), None
    async with client.stream("POST", "/api/generate", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return {"status": r.status_code}
        pieces = 0
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return {"status": 500, "error": event["error"]}
            if "text" in event:
                pieces += 1
                first = first if first is not None else time.perf_counter() - began
                if cancel_after is not None and pieces >= cancel_after:
                    return {"status": 200, "first": first, "cancelled": True}  # leaving the block closes it
    return {"status": 200, "first": first}


async def one(client: httpx.AsyncClient, rng: random.Random) -> dict:
    kind = rng.choices(["generate", "cancel", "long", "hostile", "edge", "score", "next"],
                       weights=[40, 20, 5, 15, 5, 10, 5])[0]
    seed = rng.randrange(1 << 30)
    try:
        if kind == "generate":
            out = await generate(client, {"start": "", "length": rng.randint(30, 300), "seed": seed})
        elif kind == "cancel":
            out = await generate(client, {"start": "", "length": 500, "seed": seed}, cancel_after=rng.randint(1, 40))
        elif kind == "long":
            out = await generate(client, {"start": "", "length": 2000, "seed": seed})
        elif kind == "edge":
            out = await generate(client, {**rng.choice(EDGES), "seed": seed, "length": 40})
        elif kind == "hostile":
            r = await client.post("/api/generate", content=rng.choice(HOSTILE), headers={"Content-Type": "application/json"})
            out = {"status": r.status_code}
        elif kind == "score":
            r = await client.post("/api/score", json={"text": "床前明月光，疑是地上霜。" * rng.randint(1, 50)})
            out = {"status": r.status_code}
        else:
            r = await client.post("/api/next", json={"text": "春眠不觉", "k": 5, "seed": seed})
            out = {"status": r.status_code}
    except httpx.HTTPError as e:  # a dropped connection counts as a failure of the server
        out = {"status": 599, "error": type(e).__name__}
    return {"kind": kind, **out}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def settle(client: httpx.AsyncClient, wait: float = 30.0) -> float | None:
    """Seconds until every model's batcher has no row left (None: not within wait)."""
    began = time.perf_counter()
    while time.perf_counter() - began < wait:
        models = (await client.get("/api/health")).json()["models"]
        if all(m["rows"] == 0 for m in models.values()):
            return time.perf_counter() - began
        await asyncio.sleep(0.05)
    return None


async def soak(url: str, pid: int, seconds: float, clients: int, seed: int) -> dict:
    rng = random.Random(seed)
    waves = []
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        began = time.perf_counter()
        while time.perf_counter() - began < seconds or len(waves) < 3:
            wave_began = time.perf_counter()
            results = await asyncio.gather(*(one(client, rng) for _ in range(clients)))
            settled = await settle(client)
            firsts = [r["first"] for r in results if r.get("first") is not None and r["kind"] in ("generate", "long")]
            waves.append({
                "seconds": round(time.perf_counter() - wave_began, 2),
                "requests": len(results),
                "server_errors": [r for r in results if r["status"] >= 500],
                "hostile_not_4xx": [r for r in results if r["kind"] == "hostile" and not 400 <= r["status"] < 500],
                "not_served": [r for r in results if r["kind"] in ("generate", "long", "edge", "cancel", "score", "next")
                               and r["status"] != 200],
                "settled_s": settled,
                "rss_mb": rss_mb(pid),
                "first_p95": pct(firsts, 0.95),
            })
    return summary(waves)


def summary(waves: list[dict]) -> dict:
    rss = [w["rss_mb"] for w in waves if w["rss_mb"] is not None]
    warm = rss[2:] or rss  # after two waves of warm-up
    early, late = [w["first_p95"] for w in waves[1:4]], [w["first_p95"] for w in waves[-3:]]
    return {
        "waves": len(waves), "requests": sum(w["requests"] for w in waves),
        "server_errors": sum(len(w["server_errors"]) for w in waves),
        "errors_seen": [e for w in waves for e in w["server_errors"]][:5],
        "hostile_not_4xx": sum(len(w["hostile_not_4xx"]) for w in waves),
        "not_served": sum(len(w["not_served"]) for w in waves),
        "rows_back_to_zero": all(w["settled_s"] is not None for w in waves),
        "settle_max_s": max((w["settled_s"] or float("inf")) for w in waves),
        "rss_after_warmup_mb": warm[0] if warm else None, "rss_max_mb": max(warm) if warm else None,
        "rss_last_mb": warm[-1] if warm else None,
        "rss_growth": (max(warm) / warm[0] - 1) if warm else None,
        "first_p95_early_s": statistics.median(early), "first_p95_late_s": statistics.median(late),
        "wave_seconds_median": statistics.median(w["seconds"] for w in waves),
    }


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "zhrnn", "serve", "--model", model, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if server.poll() is not None:
            raise SystemExit(f"zhrnn serve exited with {server.returncode}")
        try:
            httpx.get(url + "/api/health", timeout=1).raise_for_status()
            return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("zhrnn serve did not answer within two minutes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="唐诗")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--seconds", type=float, help="instead of --minutes")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args()
    server, url = start_server(args.model)
    try:
        result = asyncio.run(soak(url, server.pid, args.seconds or args.minutes * 60, args.clients, args.seed))
    finally:
        server.terminate()
        server.wait(10)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    for key, value in result.items():
        print(f"{key:22s} {value:.3f}" if isinstance(value, float) else f"{key:22s} {value}")


if __name__ == "__main__":
    main()
