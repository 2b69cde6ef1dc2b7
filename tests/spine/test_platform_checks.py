"""`mlops validate`'s dated checks: a Kubernetes minor the cloud still offers, on a frozen date.

The calendar is components/foundation/kubernetes_support.py; the day is passed in, so each test
says which day it is. 2026-12-01 is the day the committed stacks moved to 1.35.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from components.foundation.aws.addons import ADDON_VERSIONS
from components.foundation.aws.cluster_autoscaler import VERSIONS as AUTOSCALER_VERSIONS
from components.foundation.kubernetes_support import CHECKED_ON, SUPPORT_CALENDAR, support_verdict
from mlops.offline.platform_checks import platform_checks
from mlops.offline.render import Rendering, render
from mlops.offline.validate import kubernetes_version
from tests.conftest import PROJECT_DIR

TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module", params=["aws", "gcp"])
def prod(request) -> Rendering:
    return render(PROJECT_DIR, "prod", {"mlops:cloud": request.param})


def test_committed_prod_is_in_standard_support_today_on_both_clouds(prod: Rendering) -> None:
    assert platform_checks(prod, kubernetes_version(prod), TODAY) == []


def test_the_old_minor_fails_prod_on_both_clouds(prod: Rendering) -> None:
    """1.33 left EKS standard support on 2026-07-29 and GKE's on 2026-08-03."""
    (check,) = platform_checks(prod, "1.33", TODAY)
    assert check.severity == "failure" and check.key == "mlops:cluster.kubernetesVersion"
    assert "1.35 (standard support until" in check.message


def test_warns_within_sixty_days_of_the_end_of_standard_support() -> None:
    assert support_verdict("aws", "1.35", date(2027, 1, 25), prod=True) is None  # 61 days before 2027-03-27
    warning = support_verdict("aws", "1.35", date(2027, 1, 26), prod=True)
    assert warning is not None and warning.severity == "warning" and "60 days" in warning.message


def test_past_standard_support_eks_dev_warns_but_gke_fails_everywhere() -> None:
    """EKS keeps running dev clusters on paid extended support; GKE's REGULAR channel stops offering the minor."""
    last_day = support_verdict("aws", "1.34", TODAY, prod=False)
    assert last_day is not None and last_day.severity == "warning" and "(1 days)" in last_day.message
    after = date(2026, 12, 3)
    dev_aws = support_verdict("aws", "1.34", after, prod=False)
    assert dev_aws is not None and dev_aws.severity == "warning"
    dev_gcp = support_verdict("gcp", "1.34", after, prod=False)
    assert dev_gcp is not None and dev_gcp.severity == "failure"
    ended = support_verdict("aws", "1.33", date(2027, 7, 30), prod=False)
    assert ended is not None and ended.severity == "failure" and "extended support" in ended.message


def test_a_minor_outside_the_calendar_fails() -> None:
    verdict = support_verdict("gcp", "1.29", TODAY, prod=False)
    assert verdict is not None and verdict.severity == "failure" and "not in the gcp support calendar" in verdict.message


def test_every_minor_the_platform_deploys_on_eks_is_dated_and_pinned_together() -> None:
    """A minor gets add-on and autoscaler pins only with its dates, and the calendar was checked recently."""
    assert set(ADDON_VERSIONS) == set(AUTOSCALER_VERSIONS) <= set(SUPPORT_CALENDAR["aws"])
    assert CHECKED_ON <= TODAY


def _with_inputs(rendering: Rendering, type_token: str, change) -> Rendering:
    resources = [dataclasses.replace(r, inputs=change(dict(r.inputs))) if r.type == type_token else r for r in rendering.resources]
    return dataclasses.replace(rendering, resources=resources)


def test_the_rendered_cni_enforces_network_policies(prod: Rendering) -> None:
    """EKS: the VPC CNI add-on turns on its policy agent; GKE: Dataplane V2."""
    if prod.outputs["cloud"] == "aws":
        (cni,) = [r for r in prod.by_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "vpc-cni"]
        assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    else:
        (cluster,) = prod.by_type("gcp:container/cluster:Cluster")
        assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"


def test_a_cni_that_would_not_enforce_fails_validate(prod: Rendering) -> None:
    if prod.outputs["cloud"] == "aws":
        broken = _with_inputs(prod, "aws:eks/addon:Addon", lambda inputs: {k: v for k, v in inputs.items() if k != "configurationValues"})
    else:
        broken = _with_inputs(prod, "gcp:container/cluster:Cluster", lambda inputs: {**inputs, "datapathProvider": "LEGACY_DATAPATH"})
    (check,) = platform_checks(broken, kubernetes_version(broken), TODAY)
    assert check.severity == "failure" and check.check == "network-policy-enforcement"


RAW_PROD = {
    "mlops:kserve.deploymentMode": "RawDeployment",
    "mlops:models[0].canary.previousVersion": "6",
    "mlops:models[0].autoscaling.metric": "cpu",
    "mlops:models[1].autoscaling.metric": "cpu",
}


def test_models_without_a_queue_proxy_fail_prod_for_lack_of_request_metrics(prod: Rendering) -> None:
    """RawDeployment serves, but nothing emits the request metrics the SLO alerts and canary gates read."""
    assert [c for c in platform_checks(prod, kubernetes_version(prod), CHECKED_ON) if c.check == "request-metrics"] == []
    raw = render(PROJECT_DIR, "prod", RAW_PROD)
    (check,) = [c for c in platform_checks(raw, kubernetes_version(raw), CHECKED_ON) if c.check == "request-metrics"]
    assert check.severity == "failure" and check.key == "mlops:kserve.deploymentMode"
    assert "fraud-detector" in check.message and "queue-proxy" in check.message
    dev = dataclasses.replace(raw, outputs={**raw.outputs, "environment": "dev"})
    assert [c.severity for c in platform_checks(dev, kubernetes_version(dev), CHECKED_ON) if c.check == "request-metrics"] == ["warning"]
