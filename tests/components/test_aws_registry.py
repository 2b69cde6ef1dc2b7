"""ECR repositories for the platform's images: scanned on push, immutable tags in prod."""

from __future__ import annotations

import json

from mlops.offline.render import render
from tests.conftest import PROJECT_DIR


def test_one_repository_per_platform_image_scanned_on_push(prod):
    repositories = {r.inputs["name"]: r for r in prod.by_type("aws:ecr/repository:Repository")}
    # Prod's gateway adds Envoy Gateway's controller (`gateway`), its proxy (`envoy`) and the AWS Load
    # Balancer Controller that binds the NLB to the proxy's pods.
    assert sorted(repositories) == [
        "mlops/aws-load-balancer-controller",
        "mlops/cluster-autoscaler",
        "mlops/envoy",
        "mlops/gateway",
        "mlops/mlflow",
        "mlops/mlops-runtime",
        "mlops/mlserver",
        "mlops/sklearnserver",
        "mlops/xgbserver",
    ]
    for repository in repositories.values():
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS"}]


def test_prod_tags_are_immutable(prod):
    assert {r.inputs["imageTagMutability"] for r in prod.by_type("aws:ecr/repository:Repository")} == {"IMMUTABLE"}


def test_dev_tags_may_be_overwritten():
    dev = render(PROJECT_DIR, "prod", {"mlops:environment": "dev"})
    assert {r.inputs["imageTagMutability"] for r in dev.by_type("aws:ecr/repository:Repository")} == {"MUTABLE"}


def test_untagged_images_expire(prod):
    for lifecycle in prod.by_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        (rule,) = json.loads(lifecycle.inputs["policy"])["rules"]
        assert rule["selection"]["tagStatus"] == "untagged"
        assert rule["action"] == {"type": "expire"}


def test_repository_urls_are_stack_outputs(prod):
    urls = prod.outputs["imageRepositories"]
    assert urls["mlops-runtime"].endswith(".dkr.ecr.us-east-1.amazonaws.com/mlops/mlops-runtime")
    assert urls["mlflow"].endswith("/mlops/mlflow")
