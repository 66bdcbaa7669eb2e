"""A static, self-contained HTML drift report (per-feature table + distribution plots as inline SVG).

Rendered from the drift report alone (``details.features[*].histogram`` holds decile / top-category
proportions), so it is produced off the hot path and needs no data access, no JavaScript and no
network. Written atomically.
"""

from __future__ import annotations

import html
import os
from typing import Any

_STATUS_COLOURS = {
    "drifted": "#c62828",
    "missing": "#c62828",
    "type_changed": "#c62828",
    "ok": "#2e7d32",
    "derived": "#1565c0",
    "skipped": "#757575",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _svg(hist: dict[str, Any]) -> str:
    ref, cur = hist.get("reference") or [], hist.get("current") or []
    if not ref:
        return ""
    labels = hist.get("categories") or [f"bin {i + 1}" for i in range(len(ref))]
    width, height, pad = 320, 90, 4
    top = max(max(ref), max(cur or [0]), 1e-12)
    bar = (width - 2 * pad) / len(ref)
    parts = [f'<svg width="{width}" height="{height + 14}" role="img" aria-label="distribution">']
    for i, (r, c) in enumerate(zip(ref, cur or [0] * len(ref), strict=True)):
        x = pad + i * bar
        rh, ch = height * r / top, height * c / top
        title = html.escape(f"{labels[i]}: reference {r:.3f}, current {c:.3f}")
        parts.append(
            f'<g><title>{title}</title><rect x="{x:.1f}" y="{height - rh:.1f}" width="{bar * 0.45:.1f}" '
            f'height="{rh:.1f}" fill="#90a4ae"/><rect x="{x + bar * 0.45:.1f}" y="{height - ch:.1f}" '
            f'width="{bar * 0.45:.1f}" height="{ch:.1f}" fill="#ef6c00"/></g>'
        )
    parts.append(f'<text x="{pad}" y="{height + 12}" font-size="10">grey: reference · orange: current</text></svg>')
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """Render a drift report dict as one HTML page."""
    details = report.get("details", {})
    dataset = details.get("dataset", {})
    rows = []
    for f in details.get("features", []):
        colour = _STATUS_COLOURS.get(f.get("status", ""), "#000")
        effects = f.get("effect_sizes") or {}
        eff = ", ".join(f"{k}={_fmt(v)}" for k, v in effects.items() if k in ("psi", "js", "wasserstein_norm", "ks"))
        rows.append(
            "<tr>"
            f"<td>{_fmt(f.get('name'))}</td><td>{_fmt(f.get('method'))}</td><td>{_fmt(f.get('statistic'))}</td>"
            f"<td>{_fmt(f.get('p_value'))}</td><td>{_fmt(f.get('p_corrected'))}</td><td>{_fmt(f.get('threshold'))}</td>"
            f"<td>{_fmt(f.get('n'))}</td><td>{_fmt(f.get('null_rate'))}</td>"
            f'<td style="color:{colour};font-weight:bold">{_fmt(f.get("status"))}</td>'
            f"<td>{eff}<br><small>{_fmt(f.get('reason') or '; '.join(f.get('drift_reasons') or []))}</small></td>"
            f"<td>{_svg(f.get('histogram') or {})}</td>"
            "</tr>"
        )
    title = f"Drift report: {html.escape(report.get('subject', ''))}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;"
        "font-size:13px}th{background:#eee}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p><b>Status:</b> {html.escape(report.get('status', '').upper())} — {html.escape(report.get('summary', ''))}</p>"
        f"<p><b>Dataset drift:</b> {_fmt(dataset.get('drift'))} · drift share {_fmt(dataset.get('drift_share'))}"
        f" (threshold {_fmt(dataset.get('drift_share_threshold'))}) · drifted: "
        f"{html.escape(', '.join(dataset.get('drifted_features', [])) or 'none')}</p>"
        f"<p><b>Profile:</b> {_fmt((details.get('profile') or {}).get('digest'))} · generated {_fmt(report.get('finished_at'))}</p>"
        "<table><tr><th>feature</th><th>method</th><th>statistic</th><th>p-value</th><th>p corrected</th>"
        "<th>threshold</th><th>n</th><th>null rate</th><th>status</th><th>effect sizes / reason</th>"
        "<th>distribution</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


def write_html_report(report: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Render ``report`` and write it atomically to ``path``; return the path."""
    from airflow_aisec.utils.fs import write_text_atomic

    write_text_atomic(path, render_html(report))
    return os.fspath(path)
