"""The run's report, written next to the data: `<root>/<model>/<version>/reports/<timestamp>.{json,html}`."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

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


def _rows(verdicts: list[ColumnVerdict]) -> str:
    return "\n".join(
        "<tr{cls}><td>{name}</td><td>{kind}</td><td>{method}</td><td>{score:.6g}</td><td>{threshold:.6g}</td><td>{verdict}</td></tr>".format(
            cls=' class="drifted"' if v.drifted else "",
            name=html.escape(v.name),
            kind=html.escape(v.column_type),
            method=html.escape(v.method),
            score=v.score,
            threshold=v.threshold,
            verdict="drifted" if v.drifted else "stable",
        )
        for v in verdicts
    )


def render_html(result: DriftResult, now: datetime) -> str:
    """A self-contained page (no scripts, no external assets) a reviewer can open from the bucket."""
    title = html.escape(f"Drift report: {result.model} {result.version}")
    header = "<tr><th>column</th><th>type</th><th>method</th><th>score</th><th>threshold</th><th>verdict</th></tr>"
    sections = [
        f"<h1>{title}</h1>",
        f"<p>Window {result.window.start:%Y-%m-%d %H:%M} to {result.window.end:%Y-%m-%d %H:%M} UTC; "
        f"{result.current_rows} current rows vs {result.reference_rows} reference rows; generated {now:%Y-%m-%d %H:%M:%S} UTC.</p>",
        f"<p><strong>Dataset {'drifted' if result.dataset_drifted else 'not drifted'}</strong>: "
        f"{len(result.drifted_features)} of {len(result.features)} features drifted (share {result.drift_share:.3f}).</p>",
        f"<h2>Features</h2><table>{header}\n{_rows(list(result.features))}</table>",
    ]
    if result.prediction is not None:
        sections.append(f"<h2>Prediction</h2><table>{header}\n{_rows([result.prediction])}</table>")
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
    style = "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}table{border-collapse:collapse}.drifted{background:#fdd}"
    return f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{style}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
