"""`mlops validate`-level guarantees on the real stacks.

Prod has no unjustified failure once its images carry digests; flipping one guarded property through a config override makes
the rule guarding it fail, with its message. Properties the config loader already refuses to
take (a public API endpoint in prod, a GPU pool above its cap) are flipped where the loader
allows them and judged as prod, or judged against a tighter cap.
"""

from __future__ import annotations

import pytest

from mlops.policy_runner import blocking, run_policies
from mlops.render import render
from stacks.config.schema import Limits
from tests.conftest import PROJECT_DIR


# Digests stand in for the ones a release records: any sha256 satisfies the rule.
DIGEST_PINNED_IMAGES = {
    "mlops:mlflow.image": "docker.io/burakince/mlflow:3.15.1@sha256:" + "1" * 64,
    "mlops:images.runtime": "ghcr.io/mlops-platform/mlops-runtime:0.1.0@sha256:" + "2" * 64,
}


def test_prod_as_committed_blocks_only_on_its_tag_pinned_images(prod_rendering):
    """The committed prod names the MLflow and runtime images by tag; only image-pinned refuses them."""
    findings = blocking(run_policies(prod_rendering, "prod"))
    assert {f.policy for f in findings} == {"image-pinned"}
    assert {f.message.split("image ", 1)[1].split(" is pinned")[0] for f in findings} == {
        "'docker.io/burakince/mlflow:3.15.1'",
        "'ghcr.io/mlops-platform/mlops-runtime:0.1.0'",
    }


def test_prod_with_digest_pinned_images_has_no_unjustified_failures():
    """Every mandatory guardrail passes on prod once its images carry digests."""
    rendering = render(PROJECT_DIR, "prod", DIGEST_PINNED_IMAGES)
    assert [str(f) for f in blocking(run_policies(rendering, "prod"))] == []


def test_prod_on_gcp_has_no_unjustified_failures():
    """The same holds for prod rendered on GCP."""
    rendering = render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp", **DIGEST_PINNED_IMAGES})
    assert [str(f) for f in blocking(run_policies(rendering, "prod"))] == []


def test_dev_has_no_mandatory_failures(dev_rendering):
    """Dev passes every rule that is mandatory in dev."""
    assert [str(f) for f in blocking(run_policies(dev_rendering, "dev"))] == []


@pytest.mark.parametrize(
    ("stack", "overrides", "judged_as", "rule", "message"),
    [
        ("prod", {"mlops:storage.customerManagedKey": "false"}, "prod", "storage-encrypted-at-rest", "not a customer-managed KMS key"),
        ("prod", {"mlops:database.deletionProtection": "false"}, "prod", "database-deletion-protection", "deletionProtection=False"),
        ("prod", {"mlops:mlflow.image": "ghcr.io/mlflow/mlflow:latest"}, "prod", "image-pinned", "moving tag 'latest'"),
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
