"""Workload Identity: one Google service account per workload, bound to its exact KSA, least-privilege bucket roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.foundation.gcp.identity import service_account_id
from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}
POOL = "mlops-platform-prod.svc.id.goog"
KUBERNETES_ACCOUNTS = {
    "mlflow": "mlops-platform/mlflow",
    "payload-collector": "mlops-platform/payload-collector",
    "storage-initializer": "mlops-serving/model-server",
    "drift-job": "mlops-serving/drift-job",
}
ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


def account(rendering: Rendering, workload: str) -> RenderedResource:
    (resource,) = [a for a in rendering.by_type("gcp:serviceaccount/account:Account") if a.name == f"workload-identity-{workload}"]
    return resource


def email(workload: str) -> str:
    return f"mlops-prod-{workload}@mock-project.iam.gserviceaccount.com"


def bucket_grants(rendering: Rendering) -> dict[str, set[tuple[str, str]]]:
    """Google service account email -> {(bucket, role)}."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for member in rendering.by_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
        principal = member.inputs["member"].removeprefix("serviceAccount:")
        grants.setdefault(principal, set()).add((member.inputs["bucket"], member.inputs["role"]))
    return grants


def test_one_google_service_account_per_workload(prod):
    for workload in KUBERNETES_ACCOUNTS:
        inputs = account(prod, workload).inputs
        assert inputs["accountId"] == f"mlops-prod-{workload}"
        assert ACCOUNT_ID.match(inputs["accountId"])
    assert prod.outputs["workloadServiceAccounts"] == {w: email(w) for w in KUBERNETES_ACCOUNTS}


@pytest.mark.parametrize("workload", sorted(KUBERNETES_ACCOUNTS))
def test_only_the_workloads_kubernetes_service_account_may_impersonate_it(prod, workload):
    bindings = [
        b for b in prod.by_type("gcp:serviceaccount/iAMMember:IAMMember") if b.inputs["serviceAccountId"].endswith(email(workload))
    ]
    (binding,) = bindings
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["member"] == f"serviceAccount:{POOL}[{KUBERNETES_ACCOUNTS[workload]}]"
    assert binding.inputs["serviceAccountId"] == f"projects/mock-project/serviceAccounts/{email(workload)}"


def test_bindings_wait_for_the_cluster_that_creates_the_identity_pool(prod):
    (cluster,) = prod.by_type("gcp:container/cluster:Cluster")
    for binding in prod.by_type("gcp:serviceaccount/iAMMember:IAMMember"):
        assert cluster.urn in binding.options["dependsOn"]


def test_bucket_roles_are_least_privilege_per_workload_on_the_specific_bucket(prod):
    artifacts, payloads = prod.outputs["artifactBucket"], prod.outputs["payloadBucket"]
    assert bucket_grants(prod) == {
        email("mlflow"): {(artifacts, "roles/storage.objectAdmin")},
        email("storage-initializer"): {(artifacts, "roles/storage.objectViewer")},
        email("payload-collector"): {(payloads, "roles/storage.objectCreator")},
        email("drift-job"): {
            (artifacts, "roles/storage.objectViewer"),
            (payloads, "roles/storage.objectViewer"),
            (payloads, "roles/storage.objectCreator"),
        },
    }


def test_no_project_wide_role_for_any_workload(prod):
    workload_members = {f"serviceAccount:{email(w)}" for w in KUBERNETES_ACCOUNTS}
    project_members = {m.inputs["member"] for m in prod.by_type("gcp:projects/iAMMember:IAMMember")}
    assert not workload_members & project_members


def test_no_keys_anywhere(prod):
    """Workloads authenticate through the metadata server: no service-account key or HMAC key is created."""
    assert prod.by_type("gcp:serviceaccount/key:Key") == []
    assert prod.by_type("gcp:storage/hmacKey:HmacKey") == []


def test_mlflow_service_account_carries_its_google_identity_annotation(prod):
    (account_manifest,) = [s for s in prod.by_type("kubernetes:core/v1:ServiceAccount") if s.inputs["metadata"]["name"] == "mlflow"]
    assert account_manifest.inputs["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email("mlflow")}


def test_long_account_ids_are_shortened_stably_within_the_iam_limit():
    short = service_account_id("mlops-prod", "drift-job")
    assert short == "mlops-prod-drift-job"
    long = service_account_id("mlops-platform-production-eu", "storage-initializer")
    assert len(long) <= 30 and ACCOUNT_ID.match(long) and long.endswith("-storage-initializer")
    assert long == service_account_id("mlops-platform-production-eu", "storage-initializer")
    assert long != service_account_id("mlops-platform-production-us", "storage-initializer")
