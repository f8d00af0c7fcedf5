"""zhrnn serve under load (issue 18, part 3): N clients at once against the same N requests served
one at a time, on localhost, in the same run.

    python benchmarks/serve_load.py --model 唐诗 --clients 1,8,32 --length 100

A server (`zhrnn serve`, its own process) is started once; for each N, N requests of --length
characters (each its own seed) are sent together (concurrent: they share the running batch), then
the same N one after another (sequential: what a server without batching gives the same N clients
arriving together). Reported per mode: total characters per second (all outputs' characters over
the wall time of the whole wave), time to the first streamed character and whole-request latency
(p50, p95), both counted from the moment the wave's clients arrive.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx


async def one(client: httpx.AsyncClient, body: dict, began: float) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds to the end, characters) of one request, from began."""
    first, chars = None, 0
    async with client.stream("POST", "/api/generate", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(event["error"])
            if "text" in event and first is None:
                first = time.perf_counter() - began
            if event.get("done"):
                chars = sum(map(len, event["texts"]))
    return first or 0.0, time.perf_counter() - began, chars


async def wave(url: str, bodies: list[dict], concurrent: bool) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        began = time.perf_counter()
        if concurrent:
            results = await asyncio.gather(*(one(client, b, began) for b in bodies))
        else:  # the clients came together, and wait their turn: their times count from the wave's start
            results = [await one(client, b, began) for b in bodies]
        wall = time.perf_counter() - began
    firsts, totals = sorted(r[0] for r in results), sorted(r[1] for r in results)

    def pct(xs, q):
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]

    return {"chars_per_s": sum(r[2] for r in results) / wall, "first_p50": statistics.median(firsts),
            "first_p95": pct(firsts, 0.95), "latency_p50": statistics.median(totals),
            "latency_p95": pct(totals, 0.95), "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="唐诗")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--length", type=int, default=100)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "zhrnn", "serve", "--model", args.model, "--port", str(port)],
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/api/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(wave(url, [{"start": "春", "length": 20, "seed": 0}], False))  # warm up
        print("| clients | mode | chars/s | first char p50 / p95 (s) | latency p50 / p95 (s) | wall (s) |")
        print("|---|---|---|---|---|---|")
        for n in map(int, args.clients.split(",")):
            bodies = [{"start": "春", "length": args.length, "seed": i} for i in range(n)]
            for concurrent in ((True, False) if n > 1 else (True,)):
                r = asyncio.run(wave(url, bodies, concurrent))
                mode = "together (batched)" if concurrent and n > 1 else "one at a time" if n > 1 else "alone"
                print(f"| {n} | {mode} | {r['chars_per_s']:,.0f} | {r['first_p50']:.3f} / {r['first_p95']:.3f} | "
                      f"{r['latency_p50']:.2f} / {r['latency_p95']:.2f} | {r['wall_s']:.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
