"""The committed stacks rendered once per session: the component tests only read them."""

from __future__ import annotations

import pytest

from mlops.offline.render import Rendering, render
from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="session")
def dev() -> Rendering:
    return render(PROJECT_DIR, "dev")


@pytest.fixture(scope="session")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod")
