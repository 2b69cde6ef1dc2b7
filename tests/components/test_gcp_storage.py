"""GCS buckets: uniform access, public access prevention, versioning, payload lifecycle, CMEK, protection."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}
BUCKETS = ("buckets-artifacts", "buckets-payloads")


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(
        PROJECT_DIR,
        "prod",
        {**ON_GCP, "mlops:environment": "dev", "mlops:storage.customerManagedKey": "false", "mlops:storage.artifactVersioning": "false"},
    )


def bucket(rendering: Rendering, name: str) -> RenderedResource:
    (resource,) = [r for r in rendering.by_type("gcp:storage/bucket:Bucket") if r.name == name]
    return resource


def test_exactly_the_artifact_and_payload_buckets_exist(prod):
    assert sorted(b.name for b in prod.by_type("gcp:storage/bucket:Bucket")) == list(BUCKETS)
    # Deterministic names from mlops:storage.bucketPrefix, not auto-named.
    assert prod.outputs["artifactBucket"] == "example-mlops-prod-artifacts"
    assert prod.outputs["payloadBucket"] == "example-mlops-prod-payloads"


@pytest.mark.parametrize("name", BUCKETS)
def test_no_bucket_can_become_public(prod, name):
    """IAM-only access (no object ACLs) and public access prevention enforced, so allUsers grants never apply."""
    inputs = bucket(prod, name).inputs
    assert inputs["uniformBucketLevelAccess"] is True
    assert inputs["publicAccessPrevention"] == "enforced"
    members = [m.inputs["member"] for m in prod.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")]
    assert not [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]


@pytest.mark.parametrize("name", BUCKETS)
def test_bucket_lives_in_the_stack_region(prod, name):
    assert bucket(prod, name).inputs["location"] == "US-CENTRAL1"


@pytest.mark.parametrize("name", BUCKETS)
def test_bucket_is_versioned(prod, name):
    assert bucket(prod, name).inputs["versioning"] == {"enabled": True}


def test_artifact_versioning_follows_config_and_payload_logs_stay_versioned(dev):
    assert bucket(dev, "buckets-artifacts").inputs["versioning"] == {"enabled": False}
    assert bucket(dev, "buckets-payloads").inputs["versioning"] == {"enabled": True}


def test_payload_logs_expire_after_the_configured_retention(prod):
    rules = bucket(prod, "buckets-payloads").inputs["lifecycleRules"]
    assert {"action": {"type": "Delete"}, "condition": {"age": 90}} in rules
    assert {"action": {"type": "Delete"}, "condition": {"daysSinceNoncurrentTime": 1}} in rules
    assert {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 7}} in rules


def test_artifacts_never_expire_only_superseded_versions_do(prod):
    rules = bucket(prod, "buckets-artifacts").inputs["lifecycleRules"]
    deletions = [r["condition"] for r in rules if r["action"]["type"] == "Delete"]
    assert deletions == [{"daysSinceNoncurrentTime": 90}]


@pytest.mark.parametrize("name", BUCKETS)
def test_prod_buckets_use_the_platform_cmek_key_the_storage_agent_may_use(prod, name):
    (key,) = [k for k in prod.by_type("gcp:kms/cryptoKey:CryptoKey") if k.name == "buckets-key"]
    (ring,) = [k for k in prod.by_type("gcp:kms/keyRing:KeyRing") if k.name == "buckets-key"]
    (grant,) = [g for g in prod.by_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember") if g.name == "buckets-key-storage-agent"]
    assert bucket(prod, name).inputs["encryption"] == {"defaultKmsKeyName": "buckets-key-id"}
    assert ring.inputs["location"] == "us-central1"
    assert key.inputs["rotationPeriod"] == "7776000s"
    assert grant.inputs == {
        "cryptoKeyId": "buckets-key-id",
        "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        "member": "serviceAccount:service-000000000000@gs-project-accounts.iam.gserviceaccount.com",
    }
    # A bucket defaulting to a key the storage agent cannot use fails to create.
    assert grant.urn in bucket(prod, name).options["dependsOn"]


@pytest.mark.parametrize("name", BUCKETS)
def test_prod_buckets_and_their_key_are_protected_and_retained(prod, name):
    resource = bucket(prod, name)
    assert resource.options["protect"] is True and resource.options["retainOnDelete"] is True
    assert resource.inputs["forceDestroy"] is False
    for key in [k for k in prod.resources if k.type.startswith("gcp:kms/") and k.name == "buckets-key"]:
        assert key.options["protect"] is True and key.options["retainOnDelete"] is True


def test_dev_without_cmek_has_no_key_and_buckets_are_disposable(dev):
    assert [k for k in dev.by_type("gcp:kms/cryptoKey:CryptoKey") if k.name.startswith("buckets")] == []
    for name in BUCKETS:
        resource = bucket(dev, name)
        assert "encryption" not in resource.inputs
        assert resource.options["protect"] is False and resource.options["retainOnDelete"] is False
        assert resource.inputs["forceDestroy"] is True
