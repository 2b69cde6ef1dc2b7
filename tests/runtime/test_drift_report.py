"""The drift report people look at: `mlops drift --format html` (and the drift job, which renders
the same page) opened in a real browser, headless Chromium from Debian.

The DOM Chromium builds holds one figure per compared column, drifted columns first, and a
screenshot shows each figure drawn: its plot frame with reference and current bars inside.
Without Chromium the browser test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monitoring.drift import cli, compute_drift
from monitoring.drift.html import CURRENT_COLOUR, FRAME_COLOUR, REFERENCE_COLOUR

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip
DRIFTED = ["amount", "plan", "review"]
STABLE = ["age", "country", "score"]


def windows(rows: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six features: a numeric, a categorical and a text one shifted in current, three unchanged;
    and an unsigned column Evidently (and so the report) leaves out."""
    frames = []
    for dataset in ("reference", "current"):
        rng = np.random.default_rng([11, dataset == "current"])
        shifted = dataset == "current"
        words = "late refund broken missing" if shifted else "fast cheap sturdy bright"
        frames.append(
            pd.DataFrame(
                {
                    "age": rng.normal(40, 10, rows),
                    "amount": rng.lognormal(3 + 0.8 * shifted, 0.5, rows),
                    "country": rng.choice(["de", "fr", "it", "es"], rows),
                    "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.2, 0.3, 0.5] if shifted else [0.6, 0.3, 0.1]),
                    "review": [" ".join(rng.choice(words.split(), 3)) + f" note {i}" for i in range(rows)],
                    "score": rng.uniform(0, 1, rows),
                    "visits": rng.integers(0, 50, rows).astype(np.uint16),
                }
            )
        )
    return frames[0], frames[1]


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page `mlops drift --format html` prints for the two windows."""
    folder = tmp_path_factory.mktemp("report")
    reference, current = windows()
    reference.to_parquet(folder / "reference.parquet")
    current.to_parquet(folder / "current.parquet")
    page = folder / "report.html"
    argv = ["--reference", str(folder / "reference.parquet"), "--current", str(folder / "current.parquet"), "--format", "html"]
    with open(page, "w") as out, contextlib.redirect_stdout(out):
        assert cli.main(argv) == cli.EXIT_OK
    return page


def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: `make servers` installs it (Debian package chromium)")
        pytest.skip("chromium is not installed (Debian package chromium; `make servers`)")
    return binary


def run_chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path,
    )  # fmt: skip


class _Figures(HTMLParser):
    """Column names (section headings) and the SVG figures of each section, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict[str, object]] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section" and "column" in classes:
            self.sections.append({"name": "", "drifted": "drifted" in classes, "figures": 0})
        elif tag == "svg" and "distribution" in classes:
            self.sections[-1]["figures"] += 1  # type: ignore[operator]
        self._in_heading = tag == "h3"

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.sections[-1]["name"] += data  # type: ignore[operator]

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False


def test_page_is_self_contained(report_page: Path) -> None:
    """No scripts, no links to anything: the file is the whole report."""
    text = report_page.read_text()
    for forbidden in ("<script", "src=", "href=", "url(", "http:", "https:", "@import"):
        assert forbidden not in text


def test_browser_dom_has_one_figure_per_column_drifted_first(report_page: Path, tmp_path: Path) -> None:
    """Chromium's DOM: six sections, one SVG figure each, the three drifted columns first; the
    uint16 column is listed as not compared."""
    dom = run_chromium(report_page, tmp_path, "--dump-dom").stdout
    parser = _Figures()
    parser.feed(dom)
    assert [section["figures"] for section in parser.sections] == [1] * 6
    names = [section["name"] for section in parser.sections]
    assert sorted(names[:3]) == DRIFTED and sorted(names[3:]) == STABLE
    assert [section["drifted"] for section in parser.sections] == [True] * 3 + [False] * 3
    assert "visits" in dom and "unsigned integers (uint16)" in dom


def test_screenshot_shows_each_figure_with_both_distributions(report_page: Path, tmp_path: Path) -> None:
    """In the rendered pixels: six plot frames stacked down the page, each holding bars in the
    reference colour and in the current colour."""
    run_chromium(report_page, tmp_path, "--window-size=1000,2200", f"--screenshot={tmp_path / 'page.png'}")
    pixels = np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).astype(np.int16)
    frames = _colour(pixels, FRAME_COLOUR)
    rows = np.flatnonzero(frames.any(axis=1))
    # Each frame's sides make its rows one unbroken run; runs apart are different figures.
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 6
    for band in bands:
        columns = np.flatnonzero(frames[band[0] : band[-1] + 1].any(axis=0))
        inside = pixels[band[0] : band[-1] + 1, columns[0] : columns[-1] + 1]
        assert band[-1] - band[0] > 100 and columns[-1] - columns[0] > 300, "a plot frame of the drawn size"
        assert _colour(inside, REFERENCE_COLOUR).sum() > 50 and _colour(inside, CURRENT_COLOUR).sum() > 50


def _colour(pixels: np.ndarray, colour: str) -> np.ndarray:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return (np.abs(pixels - rgb) <= 2).all(axis=-1)


def test_distributions_do_not_change_the_verdicts() -> None:
    """Asking for pictures computes the same tests and scores."""
    reference, current = windows()
    plain, drawn = compute_drift(reference, current), compute_drift(reference, current, distributions=True)
    assert [(c.column, c.method, c.score, c.drifted) for c in plain.columns] == [
        (c.column, c.method, c.score, c.drifted) for c in drawn.columns
    ]
    assert sorted(plain.drifted_columns) == DRIFTED
    shares = drawn.column("amount").distribution
    assert shares is not None and sum(shares.reference) == pytest.approx(1, abs=1e-3)
    assert drawn.column("plan").distribution.labels == ("basic", "pro", "plus")  # type: ignore[union-attr]
