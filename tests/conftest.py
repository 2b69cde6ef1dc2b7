"""Paths shared by every test suite (importable from both virtualenvs: no Pulumi here)."""

from __future__ import annotations

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
REFERENCE_DIR = PROJECT_DIR / "reference"
