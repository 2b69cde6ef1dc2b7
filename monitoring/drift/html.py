"""A drift report as one self-contained HTML page: per column, the reference and current
distributions drawn side by side in inline SVG, beside the test, score, threshold and verdict.

Drifted columns come first. No scripts, no external assets, no web fonts: the file opens from a
bucket or a mail attachment as it is. Bars and axes use exact colours with crisp edges, so a
screenshot shows them as drawn (the browser test counts them).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitoring.drift.distributions import Distribution

REFERENCE_COLOUR = "#4c72b0"
CURRENT_COLOUR = "#dd8452"
FRAME_COLOUR = "#2f4f4f"
WIDTH, HEIGHT = 420, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 46
LABEL_CHARACTERS = 12
STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}table{border-collapse:collapse}"
    ".drifted{background:#fdd}.column{display:grid;grid-template-columns:440px 1fr;gap:1em;margin:0 0 24px 0}"
    ".column h3{margin:0 0 .5em 0}.swatch{display:inline-block;width:1em;height:.8em;margin:0 .3em 0 1em}"
    "figure{margin:0}svg text{font-size:10px;fill:#222}"
)


@dataclass(frozen=True)
class Panel:
    """One column of the report: its verdict and, when computed, its distribution."""

    name: str
    column_type: str
    test: str
    score: float
    threshold: float
    drifted: bool
    distribution: Distribution | None


def render_page(
    title: str,
    summary: Sequence[str],
    panels: Sequence[Panel],
    skipped: Sequence[tuple[str, str]] = (),
    sections: Sequence[str] = (),
) -> str:
    """The page: ``summary`` lines (plain text), one panel per column (drifted first), the skipped
    columns with their reasons, then ``sections`` (HTML already escaped by the caller)."""
    ordered = sorted(panels, key=lambda panel: not panel.drifted)
    legend = (
        f'<p><span class="swatch" style="background:{REFERENCE_COLOUR}"></span>reference'
        f'<span class="swatch" style="background:{CURRENT_COLOUR}"></span>current</p>'
    )
    parts = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(line)}</p>" for line in summary), legend]
    parts += [_panel(panel) for panel in ordered]
    if skipped:
        items = "".join(f"<li><strong>{html.escape(name)}</strong>: {html.escape(reason)}</li>" for name, reason in skipped)
        parts.append(f"<h2>Columns not compared</h2><ul>{items}</ul>")
    parts += list(sections)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _panel(panel: Panel) -> str:
    verdict = "DRIFT" if panel.drifted else "no drift"
    figure = _svg(panel) if panel.distribution is not None else "<p>(no distribution)</p>"
    rows = "".join(
        f"<tr><th>{label}</th><td>{html.escape(value)}</td></tr>"
        for label, value in (
            ("type", panel.column_type),
            ("test", panel.test),
            ("score", _number(panel.score)),
            ("threshold", _number(panel.threshold)),
            ("verdict", verdict),
        )
    )
    css = "column drifted" if panel.drifted else "column"
    return (
        f'<section class="{css}"><figure>{figure}</figure>'
        f"<div><h3>{html.escape(panel.name)}</h3><table>{rows}</table></div></section>"
    )


def _svg(panel: Panel) -> str:
    distribution = panel.distribution
    assert distribution is not None
    bins = len(distribution.reference)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_share = max(max(distribution.reference), max(distribution.current)) or 1.0
    slot = plot_width / bins
    bar = max(slot * 0.4, 1.0)
    shapes = []
    for index, (reference, current) in enumerate(zip(distribution.reference, distribution.current)):
        x = LEFT + index * slot + (slot - 2 * bar) / 2
        for offset, share, colour in ((0.0, reference, REFERENCE_COLOUR), (bar, current, CURRENT_COLOUR)):
            height = round(plot_height * share / top_share)
            if height:
                shapes.append(
                    f'<rect x="{x + offset:.1f}" y="{TOP + plot_height - height}" width="{bar:.1f}" height="{height}" fill="{colour}"/>'
                )
    baseline = TOP + plot_height
    shapes.append(
        f'<rect x="{LEFT - 0.5}" y="{TOP - 0.5}" width="{plot_width + 1}" height="{plot_height + 1}" '
        f'fill="none" stroke="{FRAME_COLOUR}" stroke-width="1"/>'
    )
    shapes.append(f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{top_share:.0%}</text>')
    shapes.append(f'<text x="{LEFT - 4}" y="{baseline}" text-anchor="end">0</text>')
    shapes += _x_labels(distribution, slot, baseline)
    description = f"{panel.name}: reference and current {'histograms' if distribution.kind == 'histogram' else 'category shares'}"
    return (
        f'<svg class="distribution" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" shape-rendering="crispEdges" role="img">'
        f"<title>{html.escape(description)}</title>" + "".join(shapes) + "</svg>"
    )


def _x_labels(distribution: Distribution, slot: float, baseline: int) -> list[str]:
    if distribution.kind == "histogram":
        edges = distribution.edges
        labels = [
            f'<text x="{LEFT}" y="{baseline + 14}">{_number(edges[0])}</text>',
            f'<text x="{WIDTH - RIGHT}" y="{baseline + 14}" text-anchor="end">{_number(edges[-1])}</text>',
        ]
        if distribution.axis:
            labels.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{baseline + 28}" text-anchor="middle">{html.escape(distribution.axis)}</text>')
        return labels
    labels = []
    for index, label in enumerate(distribution.labels):
        short = label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
        x, y = LEFT + (index + 0.5) * slot, baseline + 10
        labels.append(
            f'<text x="{x:.1f}" y="{y}" text-anchor="end" transform="rotate(-35 {x:.1f} {y})">{html.escape(short)}</text>'
        )
    return labels


def _number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "n/a"
