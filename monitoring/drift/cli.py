"""``mlops drift``: the drift engine on two files, the way a data scientist checks a window by hand.

Exit status: 0 when drift was computed (whatever the verdict), 1 when ``--fail-on-drift`` is given
and the dataset drifted, 2 when the input cannot be compared (missing file, schema mismatch, empty
window, bad option) with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from monitoring.drift.columns import COLUMN_TYPES
from monitoring.drift.engine import compute_drift
from monitoring.drift.errors import DriftInputError
from monitoring.drift.html import Panel, render_page
from monitoring.drift.io import read_dataset
from monitoring.drift.report import DriftReport
from monitoring.drift.stattests import get_stattest

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_BAD_INPUT = 2
HELP = "Compare a current window with a reference sample, column by column (Evidently's tests)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mlops drift``."""
    parser.add_argument("--reference", required=True, help="reference data: .parquet, .csv or a directory of Parquet")
    parser.add_argument("--current", required=True, help="current window: .parquet, .csv or a directory of Parquet")
    parser.add_argument(
        "--format",
        choices=("text", "json", "html"),
        default="text",
        help="output format (default: text); html is one self-contained page with a picture per column",
    )
    parser.add_argument(
        "--columns", type=_column_list, default=None, help="comma-separated columns to compare (default: all)"
    )
    parser.add_argument(
        "--drift-share-threshold",
        type=_share,
        default=0.5,
        help="the dataset drifts when at least this share of columns drift (default: 0.5)",
    )
    parser.add_argument(
        "--column-type",
        type=_column_type,
        action="append",
        default=[],
        metavar="COLUMN=TYPE",
        help=f"compare COLUMN as TYPE ({', '.join(COLUMN_TYPES)}), e.g. for a column Evidently's inference leaves out",
    )
    parser.add_argument(
        "--fail-on-drift", action="store_true", help="exit with status 1 when the dataset drifts"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``drift`` to the ``mlops`` command's subcommands."""
    parser = subparsers.add_parser("drift", help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mlops drift`` with ``argv`` (default: the process arguments)."""
    parser = argparse.ArgumentParser(prog="mlops drift", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Compute and print the drift of ``args.current`` against ``args.reference``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        reference = read_dataset(args.reference)
        current = read_dataset(args.current)
        report = compute_drift(
            reference,
            current,
            columns=args.columns,
            column_types=dict(args.column_type) or None,
            drift_share_threshold=args.drift_share_threshold,
            distributions=args.format == "html",
        )
    except (FileNotFoundError, DriftInputError) as error:
        print(f"mlops drift: error: {error}", file=err)
        return EXIT_BAD_INPUT
    if args.format == "json":
        document = {"reference": str(args.reference), "current": str(args.current), **report.to_dict()}
        print(json.dumps(document, indent=2, allow_nan=False), file=out)
    elif args.format == "html":
        print(format_html(report, args.reference, args.current), file=out, end="")
    else:
        print(format_text(report, args.reference, args.current), file=out)
    return EXIT_DRIFT if args.fail_on_drift and report.dataset_drifted else EXIT_OK


def format_text(report: DriftReport, reference: str, current: str) -> str:
    """A table with one row per column, then the skipped columns and the dataset verdict."""
    header = ("column", "type", "method", "score", "threshold", "verdict")
    rows = [
        (
            column.column,
            column.column_type,
            f"{get_stattest(column.method).display_name} ({column.method})",
            f"{column.score:.6g}",
            f"{column.threshold:g}",
            "DRIFT" if column.drifted else "ok",
        )
        for column in report.columns
    ]
    widths = [max(len(row[index]) for row in (header, *rows)) for index in range(len(header))]
    lines = [f"reference: {reference}", f"current:   {current}", ""]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]
    for skipped in report.skipped:
        lines.append(f"skipped {skipped.column}: {skipped.reason}")
    verdict = "DRIFT DETECTED" if report.dataset_drifted else "no drift"
    comparison = ">=" if report.dataset_drifted else "<"
    lines += [
        "",
        f"dataset: {verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"(share {report.drift_share:.3g} {comparison} threshold {report.drift_share_threshold:g})",
    ]
    return "\n".join(lines)


def format_html(report: DriftReport, reference: str, current: str) -> str:
    """One self-contained page: a picture per column beside its test, score and threshold."""
    verdict = "DRIFT DETECTED" if report.dataset_drifted else "no drift"
    summary = [
        f"reference: {reference}",
        f"current: {current}",
        f"dataset: {verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"(share {report.drift_share:.3g}, threshold {report.drift_share_threshold:g})",
    ]
    panels = [
        Panel(
            column.column,
            column.column_type,
            f"{get_stattest(column.method).display_name} ({column.method})",
            column.score,
            column.threshold,
            column.drifted,
            column.distribution,
        )
        for column in report.columns
    ]
    skipped = [(column.column, column.reason) for column in report.skipped]
    return render_page("Drift report", summary, panels, skipped)


def _column_list(text: str) -> list[str]:
    columns = [column.strip() for column in text.split(",") if column.strip()]
    if not columns:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return columns


def _column_type(text: str) -> tuple[str, str]:
    column, separator, column_type = (part.strip() for part in text.partition("="))
    if not separator or not column or column_type not in COLUMN_TYPES:
        raise argparse.ArgumentTypeError(f"expected COLUMN=TYPE with TYPE one of {', '.join(COLUMN_TYPES)}, got {text!r}")
    return column, column_type


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
