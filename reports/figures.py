"""Pictures for the report: a Figure-6-style visual comparison (PNG) and two plots (SVG).

* :func:`comparison_strip` - one validation scene: input, depth (colour-mapped), each experiment's
  prediction and the ground truth side by side, with a second row of absolute-error maps.
* :func:`scatter_svg` - PSNR against time per image, one point per experiment.
* :func:`curves_svg` - training loss per step, one line per experiment (optionally a band per line: the
  lowest to the highest seed).
* :func:`strip_svg` - one dot per seed for each row, with a tick at the mean.

Only numpy and Pillow: no plotting library, no fonts beyond Pillow's built-in one.
"""

from __future__ import annotations

import html
import io
import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

# A perceptually ordered dark-blue -> green -> yellow ramp (key colours of the viridis map).
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32)
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def colormap(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map ``(H, W)`` floats to ``(H, W, 3) uint8`` colours (low: dark blue, high: yellow)."""
    lo = float(np.min(values)) if lo is None else lo
    hi = float(np.max(values)) if hi is None else hi
    t = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    frac = (t - i)[..., None]
    return (_RAMP[i] * (1 - frac) + _RAMP[i + 1] * frac).round().astype(np.uint8)


def comparison_strip(inputs: np.ndarray, depth: np.ndarray, target: np.ndarray | None,
                     predictions: Sequence[tuple[str, np.ndarray]], *, error_max: float = 0.5) -> bytes:
    """A labelled two-row PNG for one scene.

    Args:
        inputs, target, predictions: ``(H, W, 3) uint8`` images of one size.
        depth: ``(H, W)`` float depth map.
        error_max: absolute error (on [0,1] images, mean over RGB) shown as the top of the colour map.
    Row 1: input, depth, each prediction, ground truth. Row 2 under each prediction: |prediction - target|.
    """
    h, w = inputs.shape[:2]
    label_h, gap = 14, 4
    tiles = [("input", inputs), ("depth", colormap(depth))] + list(predictions)
    if target is not None:
        tiles.append(("ground truth", target))
    rows = 2 if target is not None else 1
    canvas = Image.new("RGB", (len(tiles) * (w + gap) - gap, rows * (h + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (name, tile) in enumerate(tiles):
        x = k * (w + gap)
        canvas.paste(Image.fromarray(tile), (x, label_h))
        draw.text((x + 2, 1), name[: max(4, w // 6)], fill=(0, 0, 0))
        if target is not None and 2 <= k < 2 + len(predictions):
            err = np.abs(tile.astype(np.float32) - target.astype(np.float32)).mean(axis=2) / 255.0
            canvas.paste(Image.fromarray(colormap(err, 0.0, error_max)), (x, 2 * label_h + h))
            draw.text((x + 2, h + label_h + 1), f"|err| mean {err.mean():.3f}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


# --------------------------------------------------------------------------- SVG plots

_W, _H, _M = 560, 320, 56  # plot size and margin


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _svg_frame(title: str, xlabel: str, ylabel: str, xr: tuple[float, float], yr: tuple[float, float],
               xlog: bool = False, xticks: bool = True) -> tuple[list[str], callable, callable]:
    x0, x1 = xr
    y0, y1 = yr

    def fx(v: float) -> float:
        a, b, c = (math.log10(v), math.log10(x0), math.log10(x1)) if xlog else (v, x0, x1)
        return _M + (a - b) / ((c - b) or 1) * (_W - 1.5 * _M)

    def fy(v: float) -> float:
        return _H - _M + -(v - y0) / ((y1 - y0) or 1) * (_H - 1.7 * _M)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
             f'role="img" aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{_W / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{_M}" y1="{_H - _M}" x2="{_W - _M / 2}" y2="{_H - _M}" stroke="black"/>',
             f'<line x1="{_M}" y1="{_H - _M}" x2="{_M}" y2="{0.7 * _M}" stroke="black"/>',
             f'<text x="{_W / 2}" y="{_H - 14}" text-anchor="middle">{html.escape(xlabel)}</text>',
             f'<text x="14" y="{_H / 2}" text-anchor="middle" transform="rotate(-90 14 {_H / 2})">{html.escape(ylabel)}</text>']
    ticks = [10 ** e for e in range(math.floor(math.log10(x0)), math.ceil(math.log10(x1)) + 1)] if xlog else _ticks(x0, x1)
    for t in ticks if xticks else []:
        if x0 <= t <= x1:
            parts.append(f'<text x="{fx(t):.1f}" y="{_H - _M + 14}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        parts.append(f'<text x="{_M - 4}" y="{fy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
        parts.append(f'<line x1="{_M}" y1="{fy(t):.1f}" x2="{_W - _M / 2}" y2="{fy(t):.1f}" stroke="#ddd"/>')
    return parts, fx, fy


def scatter_svg(points: Sequence[tuple[str, float, float]], title: str, xlabel: str, ylabel: str) -> str:
    """An SVG scatter of ``(label, x, y)`` points (x on a log scale); points with NaN are left out."""
    pts = [(n, x, y) for n, x, y in points if math.isfinite(x) and math.isfinite(y) and x > 0]
    if not pts:
        return _empty_svg(title, "no points to plot")
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    pad = (max(ys) - min(ys)) * 0.1 or 0.5
    parts, fx, fy = _svg_frame(title, xlabel, ylabel, (min(xs) / 1.5, max(xs) * 1.5), (min(ys) - pad, max(ys) + pad), xlog=True)
    for k, (name, x, y) in enumerate(pts):
        colour = PALETTE[k % len(PALETTE)]
        parts.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="5" fill="{colour}"><title>{html.escape(name)}: '
                     f'{y:.4f} at {x:.4g} s</title></circle>')
        parts.append(f'<text x="{fx(x) + 7:.1f}" y="{fy(y) - 6:.1f}" fill="{colour}">{html.escape(name)}</text>')
    return "\n".join(parts + ["</svg>"])


Band = tuple[Sequence[float], Sequence[float]]  # lowest and highest value at each x of a curve


def curves_svg(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, xlabel: str, ylabel: str,
               bands: Sequence[Band | None] | None = None, empty: str = "no training logged (no trainable "
               "parameters or zero steps)") -> str:
    """An SVG line plot of ``(label, xs, ys)`` curves with a legend; ``bands[k]`` (or None) shades curve k."""
    bands = list(bands) if bands is not None else [None] * len(curves)
    kept = [(c, b) for c, b in zip(curves, bands) if len(c[1])]
    curves, bands = [(n, list(x), list(y)) for (n, x, y), _ in kept], [b for _, b in kept]
    if not curves:
        return _empty_svg(title, empty)
    xs = [v for _, x, _ in curves for v in x]
    ys = [v for _, _, y in curves for v in y if math.isfinite(v)]
    ys += [v for b in bands if b is not None for v in (*b[0], *b[1]) if math.isfinite(v)]
    if not ys:
        return _empty_svg(title, "no finite values")
    pad = (max(ys) - min(ys)) * 0.05 or 0.5
    parts, fx, fy = _svg_frame(title, xlabel, ylabel, (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1),
                               (min(ys) - pad, max(ys) + pad))
    for k, (name, x, y) in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        if bands[k] is not None:
            low, high = bands[k]
            outline = [(a, b) for a, b in zip(x, high)] + [(a, b) for a, b in zip(reversed(x), reversed(list(low)))]
            points = " ".join(f"{fx(a):.1f},{fy(b):.1f}" for a, b in outline if math.isfinite(b))
            parts.append(f'<polygon points="{points}" fill="{colour}" fill-opacity="0.15" stroke="none"/>')
        path = " ".join(f"{fx(a):.1f},{fy(b):.1f}" for a, b in zip(x, y) if math.isfinite(b))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"><title>{html.escape(name)}</title></polyline>')
        parts.append(f'<text x="{_W - _M / 2 - 4}" y="{34 + 14 * k}" text-anchor="end" fill="{colour}">{html.escape(name)}</text>')
    return "\n".join(parts + ["</svg>"])


def strip_svg(groups: Sequence[tuple[str, Sequence[float]]], title: str, ylabel: str) -> str:
    """An SVG strip plot: for each ``(label, values)`` one dot per value (spread sideways so equal values stay
    visible) and a short line at their mean; non-finite values are left out."""
    groups = [(n, [v for v in vals if math.isfinite(v)]) for n, vals in groups]
    groups = [(n, vals) for n, vals in groups if vals]
    if not groups:
        return _empty_svg(title, "no values to plot")
    ys = [v for _, vals in groups for v in vals]
    pad = (max(ys) - min(ys)) * 0.1 or 0.5
    parts, _, fy = _svg_frame(title, "", ylabel, (0.0, 1.0), (min(ys) - pad, max(ys) + pad), xticks=False)
    slot = (_W - 1.5 * _M) / len(groups)
    for k, (name, vals) in enumerate(groups):
        colour, centre = PALETTE[k % len(PALETTE)], _M + slot * (k + 0.5)
        for i, v in enumerate(vals):
            x = centre + (i - (len(vals) - 1) / 2) * min(8.0, slot / (len(vals) + 1))
            parts.append(f'<circle cx="{x:.1f}" cy="{fy(v):.1f}" r="3.5" fill="{colour}" fill-opacity="0.8">'
                         f'<title>{html.escape(name)}: {v:.4g}</title></circle>')
        mean = sum(vals) / len(vals)
        parts.append(f'<line x1="{centre - slot * 0.3:.1f}" y1="{fy(mean):.1f}" x2="{centre + slot * 0.3:.1f}" '
                     f'y2="{fy(mean):.1f}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{centre:.1f}" y="{_H - _M + 14}" text-anchor="middle" fill="{colour}">'
                     f'{html.escape(name[:14])}</text>')
    return "\n".join(parts + ["</svg>"])


def _empty_svg(title: str, message: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="60" role="img" aria-label="{html.escape(title)}" '
            f'font-family="sans-serif" font-size="12"><text x="8" y="20">{html.escape(title)}</text>'
            f'<text x="8" y="42" fill="#666">{html.escape(message)}</text></svg>')
