from __future__ import annotations

import pytest

from mlops.offline.render import Rendering, render
from mlops.offline.validate import ReferenceData
from tests.conftest import PROJECT_DIR, REFERENCE_DIR


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    return ReferenceData(REFERENCE_DIR)


@pytest.fixture(scope="session")
def dev_rendering() -> Rendering:
    return render(PROJECT_DIR, "dev")


@pytest.fixture(scope="session")
def prod_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod")
