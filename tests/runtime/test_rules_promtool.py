"""The platform's alert rules (monitoring/rules/*.yaml) against the real promtool.

Each rule file passes `promtool check rules`; each alert has a `promtool test rules` unit test in
monitoring/rules/tests/ that makes it fire, resolve and stay silent for healthy series; and those
unit tests really pin the alerts (an alert whose expression never fires makes them fail).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_DIR
from tests.runtime.servers import promtool

RULES_DIR = PROJECT_DIR / "monitoring" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*_test.yaml"))
SEVERITIES = {"critical", "warning", "info"}
REQUIRED_ANNOTATIONS = {"summary", "description", "runbook"}


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


ALL_ALERTS = {rule["alert"]: (path, rule) for path in RULE_FILES for rule in _alerts(path)}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _alert_cases(test_file: Path) -> dict[str, list[dict[str, Any]]]:
    """alertname -> its alert_rule_test entries in `test_file`, ordered by evaluation time."""
    document = yaml.safe_load(test_file.read_text())
    cases: dict[str, list[dict[str, Any]]] = {}
    for group in document["tests"]:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case)
    return {name: sorted(entries, key=lambda c: _seconds(c["eval_time"])) for name, entries in cases.items()}


def _seconds(duration: str) -> int:
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in duration:
        if char.isdigit():
            number += char
        else:
            total += int(number) * units[char]
            number = ""
    return total


def test_rule_files_and_their_unit_tests_exist():
    """Every rule file has a unit test file named after it, and the platform's concerns are all covered."""
    assert [p.stem for p in RULE_FILES] == [p.name.removesuffix("_test.yaml") for p in TEST_FILES]
    assert {"MlopsFeatureDrift", "MlopsPredictionDrift", "MlopsPerformanceDrop", "MlopsDriftJobNotRun",
            "MlopsDriftJobFailing", "MlopsCollectorDroppingEvents", "MlopsModelHighErrorRate",
            "MlopsModelHighLatencyP99", "MlopsModelNoTraffic"} <= set(ALL_ALERTS)


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_accepts_the_file(rule_file: Path):
    """`promtool check rules` parses every expression and template of the file."""
    result = _promtool("check", "rules", rule_file.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file: Path):
    """The file's alerts fire, resolve and stay silent exactly as its promtool unit test expects."""
    result = _promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alertname", sorted(ALL_ALERTS))
def test_alert_has_severity_and_actionable_annotations(alertname: str):
    """Alertmanager routes on `severity`; responders need a summary, details and what to do."""
    _, rule = ALL_ALERTS[alertname]
    assert rule["labels"]["severity"] in SEVERITIES
    assert REQUIRED_ANNOTATIONS <= set(rule["annotations"]), rule["annotations"].keys()
    assert all(rule["annotations"][key].strip() for key in REQUIRED_ANNOTATIONS)


@pytest.mark.parametrize("alertname", sorted(ALL_ALERTS))
def test_alert_unit_test_fires_resolves_and_has_a_silent_case(alertname: str):
    """The alert's unit test checks it silent before it fires, firing, then resolved afterwards."""
    rule_file, _ = ALL_ALERTS[alertname]
    cases = _alert_cases(RULES_DIR / "tests" / f"{rule_file.stem}_test.yaml").get(alertname)
    assert cases, f"{alertname} has no alert_rule_test in {rule_file.stem}_test.yaml"
    firing = [index for index, case in enumerate(cases) if case.get("exp_alerts")]
    assert firing, f"{alertname} is never expected to fire"
    assert any(not c.get("exp_alerts") for c in cases[: firing[0]]), f"{alertname}: no silent evaluation before it fires"
    assert any(not c.get("exp_alerts") for c in cases[firing[-1] + 1 :]), f"{alertname}: never checked resolved"


@pytest.mark.parametrize("alertname", sorted(ALL_ALERTS))
def test_unit_tests_fail_when_the_alert_never_fires(alertname: str, tmp_path: Path):
    """Replacing the alert's expression with one that is never true makes its unit test fail, so the
    test really exercises the alert (a test that passes either way proves nothing)."""
    rule_file, _ = ALL_ALERTS[alertname]
    document = yaml.safe_load(rule_file.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alertname:
                rule["expr"] = "vector(1) == 0"
    (tmp_path / "tests").mkdir()
    (tmp_path / rule_file.name).write_text(yaml.safe_dump(document, sort_keys=False))
    test_file = RULES_DIR / "tests" / f"{rule_file.stem}_test.yaml"
    shutil.copy(test_file, tmp_path / "tests" / test_file.name)
    result = _promtool("test", "rules", test_file.name, cwd=tmp_path / "tests")
    assert result.returncode != 0
    assert alertname in result.stdout + result.stderr
