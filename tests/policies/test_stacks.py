"""`mlops validate`-level guarantees on the real stacks.

Prod has no unjustified failure; flipping one guarded property through a config override makes
the rule guarding it fail, with its message. Properties the config loader already refuses to
take (a public API endpoint in prod, a GPU pool above its cap) are flipped where the loader
allows them and judged as prod, or judged against a tighter cap.
"""

from __future__ import annotations

import pytest

from components.foundation.aws.cluster_autoscaler import cluster_autoscaler_image
from components.foundation.aws.load_balancer_controller import IMAGE as LOAD_BALANCER_CONTROLLER_IMAGE
from mlops.offline.policy_runner import blocking, run_policies
from mlops.offline.render import render
from stacks.config import load_stack_config
from stacks.config.schema import Limits
from tests.conftest import PROJECT_DIR


def test_prod_has_no_unjustified_failures(prod_rendering):
    """Every mandatory guardrail passes on prod as declared."""
    assert [str(f) for f in blocking(run_policies(prod_rendering, "prod"))] == []


def test_prod_on_gcp_has_no_unjustified_failures():
    """The same holds for prod rendered on GCP."""
    rendering = render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})
    assert [str(f) for f in blocking(run_policies(rendering, "prod"))] == []


def test_prod_pulling_images_as_configured_blocks_on_each_tag_pinned_image():
    """Without the stack registry, prod refuses every platform image that has no digest (the
    cluster autoscaler's too), wherever the image is named: the gateway's controller in its chart's
    values, its proxy in the EnvoyProxy, the AWS Load Balancer Controller in its release's values."""
    rendering = render(PROJECT_DIR, "prod", {"mlops:images.source": "reference"})
    findings = blocking(run_policies(rendering, "prod"))
    assert {f.policy for f in findings} == {"image-pinned"}
    refused = {f.message.split(" image '", 1)[1].split("'", 1)[0] for f in findings}
    config = load_stack_config(rendering.config)
    assert refused == {*config.platform_images, cluster_autoscaler_image(config.cluster.kubernetes_version), LOAD_BALANCER_CONTROLLER_IMAGE}
    assert {config.gateway.controller_image, config.gateway.proxy_image} <= refused


def test_dev_has_no_mandatory_failures(dev_rendering):
    """Dev passes every rule that is mandatory in dev."""
    assert [str(f) for f in blocking(run_policies(dev_rendering, "dev"))] == []


@pytest.mark.parametrize(
    ("stack", "overrides", "judged_as", "rule", "message"),
    [
        ("prod", {"mlops:storage.customerManagedKey": "false"}, "prod", "storage-encrypted-at-rest", "not a customer-managed KMS key"),
        ("prod", {"mlops:database.deletionProtection": "false"}, "prod", "database-deletion-protection", "deletionProtection=False"),
        (
            "prod",
            {"mlops:images.source": "reference", "mlops:mlflow.image": "ghcr.io/mlflow/mlflow:latest"},
            "prod",
            "image-pinned",
            "moving tag 'latest'",
        ),
        (
            "prod",
            {"mlops:environment": "dev", "mlops:cluster.privateEndpoint": "false", "mlops:cluster.publicAccessCidrs": '["0.0.0.0/0"]'},
            "prod",
            "cluster-api-not-public",
            "open to ['0.0.0.0/0']",
        ),
    ],
)
def test_flipping_a_guarded_property_fails_its_rule(stack, overrides, judged_as, rule, message):
    """One config override turns the guarding rule into a mandatory failure with its message."""
    findings = [f for f in blocking(run_policies(render(PROJECT_DIR, stack, overrides), judged_as)) if f.policy == rule]
    assert findings and any(message in f.message for f in findings), [str(f) for f in findings]


def test_tighter_gpu_caps_fail_the_cost_rules(prod_rendering):
    """The prod GPU pool (max 4) fails a cap of 3."""
    findings = blocking(run_policies(prod_rendering, "prod", Limits(max_gpu_pool_size=3, max_gpus_per_model=1)))
    assert any(f.policy == "gpu-pool-size-capped" and "above the cap of 3" in f.message for f in findings)
