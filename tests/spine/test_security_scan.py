"""checkov over rendered manifests, run from its own virtualenv."""

from __future__ import annotations

import pytest

from components.workloads import POLICY_EXEMPTION_PREFIX, TAG_PINNED_REASON, skip_annotations
from mlops.offline.security_scan import checkov_executable, parse_report, scan_manifests
from policies.rules.common.guardrail import EXEMPTION_PREFIX
from tests.conftest import PROJECT_DIR


def pod(annotations: dict | None = None) -> dict:
    container = {"name": "app", "image": "busybox:1.36", "securityContext": {"privileged": True}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "annotations": annotations or {}},
            "spec": {"containers": [container]}}


@pytest.fixture(scope="module")
def checkov():
    return checkov_executable(PROJECT_DIR)


def test_checkov_reports_a_privileged_pod(checkov):
    """A privileged container fails CKV_K8S_16."""
    result = scan_manifests([pod()], checkov)
    assert "CKV_K8S_16" in {c.check_id for c in result.failed} and result.passed > 0


def test_skip_annotation_records_the_reason(checkov):
    """The skip annotation built by components.workloads moves the check to skipped, with its reason."""
    result = scan_manifests([pod(skip_annotations({"CKV_K8S_16": "test needs it"}))], checkov)
    assert "CKV_K8S_16" not in {c.check_id for c in result.failed}
    assert any(c.check_id == "CKV_K8S_16" and c.reason == "test needs it" for c in result.skipped)


def test_exemption_prefix_matches_the_policy_pack():
    """components.workloads and the policy pack agree on the exemption annotation."""
    assert POLICY_EXEMPTION_PREFIX == EXEMPTION_PREFIX


def test_empty_report_parses_to_nothing():
    """checkov's report for a directory with no objects is an empty result."""
    assert parse_report({}).failed == [] and parse_report([]).passed == 0


def test_tag_pinned_images_skip_the_digest_checks_on_their_object_with_the_reason():
    """The image-pinned policy judges tags (dev) and digests (prod); checkov records why it defers."""
    tagged = skip_annotations({"CKV_K8S_35": "env secrets"}, images=["docker.io/library/postgres:16.10-bookworm"])
    assert sorted(tagged.values()) == sorted(
        [f"CKV_K8S_15={TAG_PINNED_REASON}", "CKV_K8S_35=env secrets", f"CKV_K8S_43={TAG_PINNED_REASON}"]
    )
    assert skip_annotations(images=["ghcr.io/x/y:1@sha256:" + "a" * 64]) == {}
