"""The progress curves of a run (cells, best score, rooms against frames) as SVG.

Plain SVG text with its style in attributes, so the same charts stand alone in progress.svg
and sit inline in the run's page (view.py), and the core install needs no plotting library.
"""

from __future__ import annotations

from html import escape

from .progress import human

WIDTH, HEIGHT = 330, 190
FONT = 'font-family="sans-serif" font-size="10" fill="#555"'


def tick(v: float) -> str:
    return human(v) if abs(v) >= 1000 else f"{v:.3g}"


def chart(xs: list[float], ys: list[float], title: str, x: int = 0) -> str:
    """One line chart, ``title`` against frames, as an <svg> placed ``x`` pixels right."""
    w, h = WIDTH, HEIGHT
    left, right, top, bottom = 46, 10, 22, 24
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    y0, y1 = (min(ys), max(ys)) if ys else (0, 1)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (w - left - right)

    def py(v: float) -> float:
        return h - bottom - (v - y0) / (y1 - y0) * (h - top - bottom)

    path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xs, ys, strict=True))
    grid = "".join(
        f'<line x1="{left}" x2="{w - right}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>'
        f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end" {FONT}>{tick(v)}</text>'
        for v in (y0, (y0 + y1) / 2, y1)
    )
    return (
        f'<svg x="{x}" width="{w}" height="{h}" role="img" aria-label="{escape(title)}">'
        f'<rect width="{w}" height="{h}" fill="#fff" stroke="#ddd"/>{grid}'
        f'<text x="{w / 2}" y="14" text-anchor="middle" font-family="sans-serif" '
        f'font-size="12">{escape(title)}</text>'
        f'<text x="{left}" y="{h - 6}" {FONT}>{human(x0)}</text>'
        f'<text x="{w - right}" y="{h - 6}" text-anchor="end" {FONT}>{human(x1)} frames</text>'
        f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="1.6"/></svg>'
    )


def curves(history: list[dict]) -> str:
    """Cells, best score and (where known) rooms against frames, side by side, as one SVG."""
    frames = [m["frames"] for m in history]
    panels = [("cells", "cells"), ("best_score", "best score")]
    if any(m.get("rooms") is not None for m in history):
        panels.append(("rooms", "rooms"))
    gap = 12
    body = "".join(
        chart(frames, [m.get(key) or 0 for m in history], title, i * (WIDTH + gap))
        for i, (key, title) in enumerate(panels)
    )
    width = len(panels) * (WIDTH + gap) - gap
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}">{body}</svg>'
    )
