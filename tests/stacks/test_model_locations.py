"""Every model location the platform renders is readable by the identity that reads it, on AWS and GCP.

`Pulumi.prod.yaml` is rendered as committed (AWS) and with `mlops:cloud=gcp`. For each
InferenceService `storageUri` (read by KServe's storage initializer in the predictor pod) and each
drift job's `--reference` / `--labels` (read by the job's pod), the test follows the pod's service
account to its cloud identity *in the same render* and checks that identity may read the object:

- AWS: the ServiceAccount's IRSA role ARN -> the role's trust policy names exactly that
  `system:serviceaccount:<ns>:<sa>` -> an inline policy statement allows `s3:GetObject` on a resource
  pattern matching `arn:aws:s3:::<bucket>/<key>` (and `kms:Decrypt` when the buckets use a CMK);
- GCP: the ServiceAccount's Google service account -> a Workload Identity binding for `<ns>/<sa>` ->
  a `roles/storage.objectViewer` (or objectAdmin) member on that bucket.

The old prod stack pointed models at `s3://mlops-prod-artifacts/...` while the stack auto-named its
buckets: both clouds failed here.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from mlops.offline.render import Rendering, render
from stacks.config import ConfigError
from stacks.locations import StackStores, resolve_model_locations

PROJECT_DIR = Path(__file__).resolve().parents[2]
READ_ROLES = {"roles/storage.objectViewer", "roles/storage.objectAdmin"}


@pytest.fixture(scope="module")
def renderings() -> dict[str, Rendering]:
    return {"aws": render(PROJECT_DIR, "prod"), "gcp": render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})}


def _values_of(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == key] + [x for v in value.values() for x in _values_of(v, key)]
    if isinstance(value, list):
        return [x for item in value for x in _values_of(item, key)]
    return []


def model_reads(rendering: Rendering) -> list[tuple[str, str, str, str]]:
    """(what, namespace, service account, URI) of every model location a pod reads."""
    reads = []
    for resource, manifest in rendering.manifests():
        namespace = manifest["metadata"].get("namespace")
        if manifest["kind"] == "InferenceService":
            account = manifest["spec"]["predictor"]["serviceAccountName"]
            reads += [(f"{resource.name} storageUri", namespace, account, uri) for uri in _values_of(manifest["spec"], "storageUri")]
        if manifest["kind"] == "CronJob" and resource.name.endswith("-drift"):
            pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            for container in pod["containers"]:
                args = container.get("args", [])
                for flag in ("--reference", "--labels"):
                    if flag in args:
                        reads.append((f"{resource.name} {flag}", namespace, pod["serviceAccountName"], args[args.index(flag) + 1]))
    return reads


def identity_annotations(rendering: Rendering, namespace: str, account: str) -> dict[str, str]:
    accounts = [
        m for _, m in rendering.manifests()
        if m["kind"] == "ServiceAccount" and m["metadata"].get("namespace") == namespace and m["metadata"]["name"] == account
    ]
    assert len(accounts) == 1, f"service account {namespace}/{account} is not rendered exactly once"
    return accounts[0]["metadata"].get("annotations", {})


def aws_can_read(rendering: Rendering, namespace: str, account: str, uri: str) -> bool:
    role_arn = identity_annotations(rendering, namespace, account)["eks.amazonaws.com/role-arn"]
    # The mocks give a role the ARN `role/<logical name>` and the id `<logical name>-id`.
    role_name = role_arn.rsplit("/", 1)[1]
    role = next(r for r in rendering.by_type("aws:iam/role:Role") if r.name == role_name)
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = [v for s in trust["Statement"] for k, v in s["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    if subjects != [f"system:serviceaccount:{namespace}:{account}"]:
        return False
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    statements = [
        s
        for p in rendering.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == f"{role_name}-id"
        for s in json.loads(p.inputs["policy"])["Statement"]
        if s["Effect"] == "Allow"
    ]
    objects = [s for s in statements if "s3:GetObject" in s["Action"]]
    readable = any(fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{key}", s["Resource"]) for s in objects)
    own_bucket = bucket in (rendering.outputs["artifactBucket"], rendering.outputs["payloadBucket"])
    encrypted = rendering.config.get("mlops:storage", "").find('"customerManagedKey": false') < 0
    if readable and own_bucket and encrypted:
        return any("kms:Decrypt" in s["Action"] for s in statements)
    return readable


def gcp_can_read(rendering: Rendering, namespace: str, account: str, uri: str) -> bool:
    email = identity_annotations(rendering, namespace, account)["iam.gke.io/gcp-service-account"]
    bound = [
        b for b in rendering.by_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["serviceAccountId"].endswith(f"/{email}") and b.inputs["member"].endswith(f"[{namespace}/{account}]")
    ]
    if not bound:
        return False
    bucket = uri.removeprefix("gs://").partition("/")[0]
    return any(
        g.inputs["bucket"] == bucket and g.inputs["role"] in READ_ROLES and g.inputs["member"] == f"serviceAccount:{email}"
        for g in rendering.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    )


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_every_model_location_is_readable_by_its_reader(renderings: dict[str, Rendering], cloud: str) -> None:
    rendering = renderings[cloud]
    reads = model_reads(rendering)
    # Two models, each with a storageUri and a reference sample.
    assert len(reads) >= 4
    can_read = aws_can_read if cloud == "aws" else gcp_can_read
    scheme = {"aws": "s3://", "gcp": "gs://"}[cloud]
    unreadable = [(what, uri) for what, namespace, account, uri in reads if not uri.startswith(scheme) or not can_read(rendering, namespace, account, uri)]
    assert unreadable == []


def test_bucket_names_are_deterministic_and_exported(renderings: dict[str, Rendering]) -> None:
    """The names models resolve against are the names the buckets get, on both clouds."""
    for rendering in renderings.values():
        assert rendering.outputs["artifactBucket"] == "example-mlops-prod-artifacts"
        assert rendering.outputs["payloadBucket"] == "example-mlops-prod-payloads"
    assert {b.inputs["bucket"] for b in renderings["aws"].by_type("aws:s3/bucket:Bucket")} == {
        "example-mlops-prod-artifacts",
        "example-mlops-prod-payloads",
    }
    assert {b.inputs["name"] for b in renderings["gcp"].by_type("gcp:storage/bucket:Bucket")} == {
        "example-mlops-prod-artifacts",
        "example-mlops-prod-payloads",
    }


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_declared_external_location_renders_its_read_grant(cloud: str) -> None:
    """An external location is readable only because the render grants it, on each cloud."""
    scheme = {"aws": "s3", "gcp": "gs"}[cloud]
    storage = {"bucketPrefix": "example-mlops-prod", "externalReadLocations": [f"{scheme}://shared-models/team-a/"]}
    models = json.dumps(
        [
            {
                "name": "shared",
                "model": {"registeredModel": "shared", "version": "1", "artifactUri": f"{scheme}://shared-models/team-a/1/model"},
                "monitoring": {"referenceDataUri": f"{scheme}://shared-models/team-a/reference.parquet"},
                "canary": {"trafficPercent": 100},
                "retraining": {"schedule": "0 3 * * 0", "policy": "scheduled"},
            }
        ]
    )
    overrides = {"mlops:cloud": cloud, "mlops:storage": json.dumps(storage), "mlops:models": models}
    rendering = render(PROJECT_DIR, "prod", overrides)
    reads = model_reads(rendering)
    assert sorted(uri for *_, uri in reads) == [f"{scheme}://shared-models/team-a/1/model", f"{scheme}://shared-models/team-a/reference.parquet"]
    can_read = aws_can_read if cloud == "aws" else gcp_can_read
    assert all(can_read(rendering, ns, sa, uri) for _, ns, sa, uri in reads)
    # Without the declaration the same locations are refused before any resource exists.
    with pytest.raises(ConfigError):
        render(PROJECT_DIR, "prod", {**overrides, "mlops:storage": json.dumps({"bucketPrefix": "example-mlops-prod"})})
    if cloud == "aws":
        # Exactly the declared prefix: a sibling prefix in the same bucket stays unreadable (GCS grants whole buckets).
        assert not aws_can_read(rendering, reads[0][1], reads[0][2], "s3://shared-models/team-b/1/model")


STORES = StackStores("gs", "p-artifacts", "p-payloads", external=("gs://shared/team-a/",))


def _model(**locations: str) -> Any:
    from components.declarations import ModelDeployment

    return ModelDeployment.model_validate(
        {
            "name": "m",
            "model": {"registeredModel": "m", "version": "1", "artifactUri": locations.get("artifact", "1/model")},
            "monitoring": {"referenceDataUri": locations.get("reference", "reference/m.parquet")},
            "retraining": {"schedule": "0 3 * * 0", "policy": "scheduled"},
        }
    )


def test_store_relative_locations_resolve_against_the_stack_buckets() -> None:
    (model,) = resolve_model_locations([_model()], STORES)
    assert model.model.artifact_uri == "gs://p-artifacts/1/model"
    assert model.monitoring is not None and model.monitoring.reference_data_uri == "gs://p-artifacts/reference/m.parquet"


@pytest.mark.parametrize("reference", ["runs:/3f2a9c/reference/m.parquet", "models:/m/1"])
def test_mlflow_references_are_read_through_the_tracking_server(reference: str) -> None:
    """The drift job resolves runs:/ and models:/ through MLflow, from the stack's own artifact store."""
    (model,) = resolve_model_locations([_model(reference=reference)], STORES)
    assert model.monitoring is not None and model.monitoring.reference_data_uri == reference


@pytest.mark.parametrize(
    ("locations", "key"),
    [
        ({"artifact": "s3://p-artifacts/1/model"}, "mlops:models[0].model.artifactUri"),  # wrong cloud
        ({"artifact": "gs://someone-else/1/model"}, "mlops:models[0].model.artifactUri"),
        ({"artifact": "gs://p-payloads/1/model"}, "mlops:models[0].model.artifactUri"),  # storage initializer cannot read payloads
        ({"artifact": "gs://shared/team-b/model"}, "mlops:models[0].model.artifactUri"),  # outside the declared prefix
        ({"reference": "gs://someone-else/reference/m.parquet"}, "mlops:models[0].monitoring.referenceDataUri"),
    ],
)
def test_locations_outside_readable_stores_are_refused_with_the_key(locations: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_model_locations([_model(**locations)], STORES)
    assert [p.path for p in raised.value.problems] == [key]
