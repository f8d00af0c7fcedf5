"""A model's card for the page: what it was trained on, its size, its validation figures, and its
training curve drawn from the run's log.jsonl as an SVG (no plotting library)."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from ..api import TextModel

LN2 = math.log(2)


def log_records(model: TextModel) -> list[dict]:
    """The evaluations in the log.jsonl of the model's run directory (none for a shipped model)."""
    if model.path is None:
        return []
    log = model.path.parent / "log.jsonl"
    records = []
    try:
        with open(log, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: the others still draw
                if isinstance(record, dict) and isinstance(record.get("step"), int):
                    records.append(record)
    except OSError:
        return []
    return records


def card(name: str, model: TextModel) -> dict:
    """What the page shows of a model. Paths are left out: the page names models, never files."""
    info, tok, cfg = model.info, model.tokenizer, model.model.config
    corpus = info.get("corpus") or {}
    best = info.get("best") or {}
    params = sum(p.numel() for p in model.model.parameters())
    base = (info.get("train_config") or {}).get("init_from")
    return {
        "name": name,
        "corpus": [Path(s).name for s in corpus.get("sources", [])],
        "tokens": corpus.get("tokens"),
        "step": info.get("step"),
        "cell": cfg.cell, "layers": cfg.num_layers, "hidden": cfg.hidden_size, "params": params,
        "vocab": len(tok), "level": (info.get("train_config") or {}).get("level", "char"),
        "labels": sorted(tok.labels)[:200], "blocks": model.layout.blocks,
        "best": {"step": best.get("step"), "val_bpc": best.get("val_bpc"), "val_text_bpc": best.get("val_text_bpc"),
                 "mix_val_text_bpc": best.get("mix_val_text_bpc")},
        "counts": None if not hasattr(model.model, "counts") else {  # the n-gram counts mixed in (counts.Mixed)
            "order": model.model.counts.order, "entries": model.model.counts.num_entries(),
            "weights": [round(w, 3) for w in model.model.weights.tolist()]},
        "curve": bool(log_records(model)),
        "credits": info.get("credits"),  # the training text's sources and licences (zhrnn export --credits)
        # the model it started from (--init-from): a shipped name, or the last part of a path (no paths on the page)
        "base": base and Path(base).name,
    }


def curve_svg(records: list[dict], width: int = 560, height: int = 260) -> str:
    """The training curve: training loss (bits per token) and validation bits per character by step."""
    series = {  # name -> (colour, [(step, bits)])
        "训练 train": ("#888", [(r["step"], r["train_loss"] / LN2) for r in records
                                if isinstance(r.get("train_loss"), (int, float))]),
        "验证 val_bpc": ("#c33", [(r["step"], r["val_bpc"]) for r in records if isinstance(r.get("val_bpc"), (int, float))]),
        "验证正文 val_text_bpc": ("#36c", [(r["step"], r["val_text_bpc"]) for r in records
                                          if isinstance(r.get("val_text_bpc"), (int, float))]),
        "混合计数 mix_val_text_bpc": ("#393", [(r["step"], r["mix_val_text_bpc"]) for r in records
                                             if isinstance(r.get("mix_val_text_bpc"), (int, float))]),
    }
    points = [p for _, ps in series.values() for p in ps if math.isfinite(p[1])]
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" ' \
           'font-family="sans-serif" font-size="11">'
    if not points:
        return head + '<text x="10" y="20">no evaluations in the log</text></svg>'
    left, right, top, bottom = 44, 10, 10, 34
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def at(step, bits):
        return (left + (step - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (bits - y0) / (y1 - y0) * (height - top - bottom))

    out = [head, f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
                 'fill="none" stroke="#ccc"/>']
    for i in range(5):  # grid and labels
        bits = y0 + (y1 - y0) * i / 4
        _, y = at(x0, bits)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{bits:.2f}</text>')
        step = x0 + (x1 - x0) * i / 4
        x, _ = at(step, y0)
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle">{step:,.0f}</text>')
    for n, (name, (colour, ps)) in enumerate(series.items()):
        ps = [p for p in ps if math.isfinite(p[1])]
        if ps:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(*p) for p in ps))
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        out.append(f'<text x="{left + 8 + 170 * n}" y="{height - 4}" fill="{colour}">{html.escape(name)}</text>')
    return "".join(out) + "</svg>"
