"""See what a render registered even when it stops with an error (IaC virtualenv only: imports Pulumi)."""

from __future__ import annotations

import pytest

from mlops.offline import render as render_module


def record_monitors(monkeypatch: pytest.MonkeyPatch) -> list[render_module.RecordingMonitor]:
    """Every RecordingMonitor the renders of this test create, in order, to read `recorded` afterwards."""
    monitors: list[render_module.RecordingMonitor] = []
    real = render_module.RecordingMonitor

    def recording(*args):
        monitors.append(real(*args))
        return monitors[-1]

    monkeypatch.setattr(render_module, "RecordingMonitor", recording)
    return monitors
