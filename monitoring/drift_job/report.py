"""The run's report, written next to the data: `<root>/<model>/<version>/reports/<timestamp>.{json,html}`."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

from monitoring.drift.html import Panel, render_page
from monitoring.drift.stattests import get_stattest
from monitoring.drift_job.results import ColumnVerdict, DriftResult
from monitoring.drift_job.storage import Location


@dataclass(frozen=True)
class WrittenReport:
    json_uri: str
    html_uri: str


def report_stem(model: str, version: str, now: datetime) -> str:
    return f"{model}/{version}/reports/{now:%Y%m%dT%H%M%SZ}"


def write_report(root: str, result: DriftResult, now: datetime) -> WrittenReport:
    location = Location.of(root)
    stem = report_stem(result.model, result.version, now)
    document = {"generatedAt": now.isoformat(), **result.to_dict()}
    location.write_bytes(f"{stem}.json", json.dumps(document, indent=2, sort_keys=False).encode())
    location.write_bytes(f"{stem}.html", render_html(result, now).encode())
    return WrittenReport(location.describe(f"{stem}.json"), location.describe(f"{stem}.html"))


def _panel(verdict: ColumnVerdict, name: str) -> Panel:
    test = f"{get_stattest(verdict.method).display_name} ({verdict.method})"
    return Panel(name, verdict.column_type, test, verdict.score, verdict.threshold, verdict.drifted, verdict.distribution)


def render_html(result: DriftResult, now: datetime) -> str:
    """A self-contained page (inline SVG, no scripts, no external assets) a reviewer can open from the bucket."""
    summary = [
        f"Window {result.window.start:%Y-%m-%d %H:%M} to {result.window.end:%Y-%m-%d %H:%M} UTC; "
        f"{result.current_rows} current rows vs {result.reference_rows} reference rows; generated {now:%Y-%m-%d %H:%M:%S} UTC.",
        f"Dataset {'drifted' if result.dataset_drifted else 'not drifted'}: "
        f"{len(result.drifted_features)} of {len(result.features)} features drifted (share {result.drift_share:.3f}).",
    ]
    panels = [_panel(feature, feature.name) for feature in result.features]
    if result.prediction is not None:
        panels.append(_panel(result.prediction, f"{result.prediction.name} (prediction)"))
    sections = []
    if result.performance is not None:
        performance_rows = "\n".join(
            f"<tr><td>{html.escape(metric)}</td><td>{value:.6g}</td><td>{result.performance.reference.get(metric, float('nan')):.6g}</td></tr>"
            for metric, value in result.performance.current.items()
        )
        sections.append(
            f"<h2>Performance ({html.escape(result.performance.task)}, {result.performance.labelled_rows} labelled rows)</h2>"
            f"<table><tr><th>metric</th><th>current</th><th>reference</th></tr>\n{performance_rows}</table>"
        )
    if result.notes:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    skipped = [(feature.name, feature.reason) for feature in result.skipped]
    return render_page(f"Drift report: {result.model} {result.version}", summary, panels, skipped, sections)
