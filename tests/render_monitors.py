"""See what a render registered even when it stops with an error, and what the program handed the
platform (IaC virtualenv only: imports Pulumi)."""

from __future__ import annotations

import pytest

from components.interfaces import Foundation
from mlops.offline import render as render_module
from stacks import program
from tests.conftest import PROJECT_DIR


def record_monitors(monkeypatch: pytest.MonkeyPatch) -> list[render_module.RecordingMonitor]:
    """Every RecordingMonitor the renders of this test create, in order, to read `recorded` afterwards."""
    monitors: list[render_module.RecordingMonitor] = []
    real = render_module.RecordingMonitor

    def recording(*args):
        monitors.append(real(*args))
        return monitors[-1]

    monkeypatch.setattr(render_module, "RecordingMonitor", recording)
    return monitors


def render_with_foundation(stack: str, overrides: dict[str, str]) -> tuple[render_module.Rendering, Foundation]:
    """`stack` of the project rendered in one process, and the Foundation the program handed the platform."""
    seen: list[Foundation] = []
    real = program.build_platform

    def spy(config, foundation, namespaces):
        seen.append(foundation)
        return real(config, foundation, namespaces)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "build_platform", spy)
        rendering = render_module.render(PROJECT_DIR, stack, overrides, processes=1)
    return rendering, seen[-1]
