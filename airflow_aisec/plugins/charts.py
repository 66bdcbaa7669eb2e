"""Inline SVG charts rendered on the server: no JavaScript library, no CDN (the UI works offline)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#7b1fa2", "#1976d2", "#388e3c", "#f57c00", "#c2185b", "#0097a7", "#5d4037", "#455a64")
SEVERITY_COLORS = {
    "critical": "#b71c1c",
    "high": "#e65100",
    "medium": "#f9a825",
    "low": "#1565c0",
    "info": "#757575",
}


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def line_chart(
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    width: int = 560,
    height: int = 200,
    y_max: float = 1.0,
    percent: bool = True,
) -> str:
    """Lines over run index (oldest → newest), one per series; ``None`` points are gaps."""
    left, right, top, bottom = 40, 150, 20, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max((len(values) for _, values in series), default=0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        label = f"{frac * y_max:.0%}" if percent else _fmt(frac * y_max)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{label}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" class="axis">older runs → newer</text>')
    step = plot_w / max(n - 1, 1)
    for i, (name, values) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = []
        for j, value in enumerate(values):
            if value is None:
                continue
            x = left + step * (j + (n - len(values)))
            y = top + plot_h * (1 - min(max(value / y_max if y_max else 0, 0), 1))
            points.append((x, y, value))
        if len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, value in points:
            shown = f"{value:.0%}" if percent else _fmt(value)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(name)}: {shown}</title></circle>'
            )
        ly = top + 14 * i + 8
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{left + plot_w + 24}" y="{ly + 1}" class="legend">{escape(name[:22])}</text>')
    if not series:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}" class="axis">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[tuple[str, float, bool]], *, title: str, width: int = 560, bar_height: int = 18) -> str:
    """Horizontal bars (label, value, highlighted); highlighted bars (e.g. drifted features) in red."""
    left, right = 140, 60
    height = bar_height * len(bars) + 10
    top = max((abs(v) for _, v, _ in bars), default=0.0) or 1.0
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, hot) in enumerate(bars):
        y = 5 + i * bar_height
        w = (width - left - right) * abs(value) / top
        color = "#c62828" if hot else "#7b1fa2"
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" class="axis">'
            f"{escape(label[:24])}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar_height - 4}" fill="{color}">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}" class="axis">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def severity_bar(counts: dict[str, int], *, width: int = 320, height: int = 14) -> str:
    """One stacked bar of finding counts by severity."""
    total = sum(counts.values())
    parts = [
        f'<svg class="sevbar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="findings by severity">'
    ]
    x = 0.0
    if total == 0:
        parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#2e7d32" opacity="0.35"/>')
    for sev, color in SEVERITY_COLORS.items():
        n = counts.get(sev, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{color}"><title>{sev}: {n}</title></rect>'
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)
