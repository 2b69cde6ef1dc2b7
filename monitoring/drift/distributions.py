"""What the report draws for a column: reference and current shares over the same bins.

Numeric columns share equal-width bins spanning both samples; categorical columns show their
most common categories (by the two samples' shares together) and the rest as one "other" bar;
text columns show the distribution of text lengths. Computed from the arrays the engine already
prepared for the test (sorted numbers, category codes), so drawing costs a few searches per
column, not another pass over the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

HISTOGRAM_BINS = 20
TOP_CATEGORIES = 10
OTHER = "other"


@dataclass(frozen=True)
class Distribution:
    """Shares of the reference and current values per bin (``histogram``: ``edges`` has one more
    entry than the shares) or per category (``bars``: ``labels`` names each bar)."""

    kind: Literal["histogram", "bars"]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    axis: str = ""


def histogram(reference_sorted: np.ndarray, current_sorted: np.ndarray, axis: str = "") -> Distribution:
    """Shares over HISTOGRAM_BINS equal-width bins from the smallest to the largest value of both."""
    low = float(min(reference_sorted[0], current_sorted[0]))
    high = float(max(reference_sorted[-1], current_sorted[-1]))
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1) if high > low else np.array([low, low])
    shares = []
    for values in (reference_sorted, current_sorted):
        # np.histogram's bins: half-open, the last one closed.
        positions = np.searchsorted(values, edges, side="left")
        positions[-1] = values.size
        shares.append(np.diff(positions) / values.size)
    return Distribution("histogram", _rounded(shares[0]), _rounded(shares[1]), edges=tuple(float(e) for e in edges), axis=axis)


def category_bars(reference_codes: np.ndarray, current_codes: np.ndarray, categories: list[object]) -> Distribution:
    """Shares of the TOP_CATEGORIES most common categories of both samples, the rest as 'other'."""
    size = len(categories)
    reference = np.bincount(reference_codes, minlength=size) / reference_codes.size
    current = np.bincount(current_codes, minlength=size) / current_codes.size
    order = np.argsort(-(reference + current), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    labels = [str(categories[index]) for index in top]
    reference_shares, current_shares = list(reference[top]), list(current[top])
    if rest.size:
        labels.append(f"{OTHER} ({rest.size})")
        reference_shares.append(float(reference[rest].sum()))
        current_shares.append(float(current[rest].sum()))
    return Distribution("bars", _rounded(reference_shares), _rounded(current_shares), labels=tuple(labels))


def text_lengths(reference: np.ndarray, current: np.ndarray) -> Distribution:
    """Histogram of text lengths in characters."""
    lengths = [np.sort(np.fromiter(map(len, texts), dtype=np.int64, count=texts.size)) for texts in (reference, current)]
    return histogram(lengths[0], lengths[1], axis="length in characters")


def _rounded(shares: object) -> tuple[float, ...]:
    # Four significant digits are more than a picture can show, and keep the page small.
    return tuple(float(f"{share:.4g}") for share in shares)  # type: ignore[attr-defined]
