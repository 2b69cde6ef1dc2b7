"""Where platform images come from: as configured, or the stack's registry by the digest of a tag."""

from __future__ import annotations

import re

import pytest

from components.images import ImageReference, repository_names
from mlops.offline.render import Rendering, render
from policies.rules.common.kubernetes import containers
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops/"
ARTIFACT_REGISTRY = "us-central1-docker.pkg.dev/mlops-platform-prod/mlops-prod/"
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def pulled_images(rendering: Rendering) -> dict[str, str]:
    """`<object>/<container>` -> image, for every container that names one (an InferenceService's
    model takes its image from the serving runtime)."""
    return {
        f"{resource.name}/{ref.name}": ref.container["image"]
        for resource in rendering.resources
        for ref in containers(resource.type, resource.inputs)
        if "image" in ref.container
    }


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("docker.io/burakince/mlflow:3.15.1", ImageReference("mlflow", "3.15.1", None)),
        ("ghcr.io/mlops-platform/mlops-runtime:0.1.0", ImageReference("mlops-runtime", "0.1.0", None)),
        ("localhost:5000/team/model-server:v2", ImageReference("model-server", "v2", None)),
        ("docker.io/kserve/xgbserver:v0.20.0@sha256:" + "a" * 64, ImageReference("xgbserver", "v0.20.0", "sha256:" + "a" * 64)),
    ],
)
def test_a_reference_gives_its_short_name_tag_and_digest(reference, expected):
    assert ImageReference.parse(reference) == expected


def test_one_repository_per_distinct_name():
    assert repository_names(["a.io/x/mlflow:1", "b.io/mlflow:2", "c.io/runtime:1"]) == ["mlflow", "runtime"]


@pytest.fixture(scope="module")
def prod_on_aws() -> Rendering:
    return render(PROJECT_DIR, "prod")


def test_prod_pulls_every_platform_image_from_its_ecr_by_digest(prod_on_aws):
    images = pulled_images(prod_on_aws)
    assert images and all(image.startswith(ECR) and PINNED.search(image) for image in images.values()), images
    assert images["mlflow-server/mlflow"].startswith(ECR + "mlflow@")
    assert images["kserve-mlops-sklearnserver/kserve-container"].startswith(ECR + "sklearnserver@")


def test_prod_on_gcp_pulls_every_platform_image_from_artifact_registry_by_digest():
    images = pulled_images(render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"}))
    assert images and all(image.startswith(ARTIFACT_REGISTRY) and PINNED.search(image) for image in images.values()), images


def test_a_new_tag_is_a_new_digest_for_that_image_only(prod_on_aws):
    """What a reviewer sees in the diff when one image's tag changes."""
    before = pulled_images(prod_on_aws)
    after = pulled_images(render(PROJECT_DIR, "prod", {"mlops:mlflow.image": "docker.io/burakince/mlflow:3.16.0"}))
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"mlflow-server/mlflow", "mlflow-server/db-upgrade"}


def test_a_configured_digest_is_used_without_a_lookup():
    digest = "sha256:" + "b" * 64
    images = pulled_images(render(PROJECT_DIR, "prod", {"mlops:mlflow.image": f"docker.io/burakince/mlflow:3.15.1@{digest}"}))
    assert images["mlflow-server/mlflow"] == f"{ECR}mlflow@{digest}"


def test_images_as_configured_are_deployed_unchanged():
    images = pulled_images(render(PROJECT_DIR, "prod", {"mlops:images.source": "reference"}))
    assert images["mlflow-server/mlflow"] == "docker.io/burakince/mlflow:3.15.1"


def test_a_local_cluster_has_no_stack_registry():
    with pytest.raises(ConfigError) as error:
        render(PROJECT_DIR, "dev", {"mlops:images.source": "stackRegistry"})
    assert "mlops:images.source: a local cluster has no stack registry" in str(error.value)
