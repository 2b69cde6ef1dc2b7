"""scripts/local/smoke.sh, which the e2e workflow runs after `make local-up`: a smoke suite that
skipped itself (no cluster answering) must fail the workflow, not pass it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_DIR

SMOKE = PROJECT_DIR / "scripts" / "local" / "smoke.sh"


def test_smoke_script_fails_when_the_smoke_tests_skip_for_want_of_a_cluster(tmp_path):
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), "RUNTIME_PYTHON": sys.executable}
    completed = subprocess.run([str(SMOKE)], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1
    assert "skipped" in completed.stdout and "which do not exist" in completed.stdout
    assert completed.stderr.strip().splitlines()[-1] == "smoke tests were skipped: the local cluster does not answer (see the reasons above)"
