"""Artifact Registry: one Docker repository, immutable tags in prod, read access for nodes only."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.offline.render import Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


def test_docker_repository_in_the_stack_region_with_immutable_tags_in_prod(prod):
    (repository,) = prod.by_type("gcp:artifactregistry/repository:Repository")
    assert repository.inputs["format"] == "DOCKER"
    assert repository.inputs["location"] == "us-central1"
    assert repository.inputs["repositoryId"] == "mlops-prod"
    assert repository.inputs["dockerConfig"] == {"immutableTags": True}
    (policy,) = repository.inputs["cleanupPolicies"]
    assert policy["action"] == "DELETE" and policy["condition"]["tagState"] == "UNTAGGED"


def test_only_the_node_service_account_may_pull(prod):
    (grant,) = prod.by_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert grant.inputs["role"] == "roles/artifactregistry.reader"
    assert grant.inputs["member"] == "serviceAccount:mlops-prod-nodes@mock-project.iam.gserviceaccount.com"
    assert grant.inputs["repository"] == "mlops-prod"


def test_image_urls_are_exported_per_platform_image(prod):
    assert prod.outputs["imageRepositories"] == {
        name: f"us-central1-docker.pkg.dev/mlops-platform-prod/mlops-prod/{name}"
        # `envoy` and `gateway`: Envoy Gateway's proxy and controller, for prod's gateway.
        for name in ("envoy", "gateway", "mlflow", "mlops-runtime", "mlserver", "sklearnserver", "xgbserver")
    }


def test_dev_tags_are_mutable():
    rendering = render(PROJECT_DIR, "prod", {**ON_GCP, "mlops:environment": "dev"})
    (repository,) = rendering.by_type("gcp:artifactregistry/repository:Repository")
    assert repository.inputs["dockerConfig"] == {"immutableTags": False}
