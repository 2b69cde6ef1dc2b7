"""S3 buckets: SSE-KMS, versioning, no public access, TLS only, payload lifecycle, protected in prod."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
BUCKETS = ("buckets-artifacts", "buckets-payloads")


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "prod", {"mlops:environment": "dev", "mlops:storage.customerManagedKey": "false"})


SSE = "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def one(rendering: Rendering, type_token: str, name: str) -> RenderedResource:
    (resource,) = [r for r in rendering.by_type(f"aws:s3/{type_token}") if r.name == name]
    return resource


def bucket_id(name: str) -> str:
    return f"{name}-id"


@pytest.mark.parametrize("name", BUCKETS)
def test_bucket_is_encrypted_with_the_platform_kms_key(prod, name):
    (rule,) = one(prod, SSE, name).inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    key = next(k for k in prod.by_type("aws:kms/key:Key") if k.name == "buckets-key")
    assert default["kmsMasterKeyId"].startswith("arn:aws:kms:") and key.inputs["enableKeyRotation"] is True
    assert rule["bucketKeyEnabled"] is True


@pytest.mark.parametrize("name", BUCKETS)
def test_bucket_is_versioned(prod, name):
    versioning = one(prod, "bucketVersioning:BucketVersioning", name)
    assert versioning.inputs["bucket"] == bucket_id(name)
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


@pytest.mark.parametrize("name", BUCKETS)
def test_no_bucket_can_become_public(prod, name):
    """All four public access blocks on, and ACLs disabled so no object ACL can grant access."""
    block = one(prod, "bucketPublicAccessBlock:BucketPublicAccessBlock", name).inputs
    assert block["bucket"] == bucket_id(name)
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag
    ownership = one(prod, "bucketOwnershipControls:BucketOwnershipControls", name).inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("name", BUCKETS)
def test_bucket_policy_denies_every_request_without_tls(prod, name):
    policy_resource = one(prod, "bucketPolicy:BucketPolicy", name)
    policy = json.loads(policy_resource.inputs["policy"])
    (statement,) = policy["Statement"]
    bucket_arn = f"arn:aws:s3:::{prod.outputs['artifactBucket' if 'artifacts' in name else 'payloadBucket']}"
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not [s for s in policy["Statement"] if s["Effect"] == "Allow"]


def test_payload_logs_expire_after_the_configured_retention(prod):
    (rule,) = one(prod, "bucketLifecycleConfiguration:BucketLifecycleConfiguration", "buckets-payloads").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"] == {"days": 90}
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 1
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7


def test_artifacts_are_kept_and_only_superseded_versions_age_out(prod):
    (rule,) = one(prod, "bucketLifecycleConfiguration:BucketLifecycleConfiguration", "buckets-artifacts").inputs["rules"]
    assert "expiration" not in rule
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] >= 30


def test_prod_buckets_and_their_key_are_protected_and_retained(prod):
    for resource in [*prod.by_type("aws:s3/bucket:Bucket"), next(k for k in prod.by_type("aws:kms/key:Key") if k.name == "buckets-key")]:
        assert resource.options["protect"] is True, resource.name
        assert resource.options["retainOnDelete"] is True, resource.name
    for bucket in prod.by_type("aws:s3/bucket:Bucket"):
        assert bucket.inputs["forceDestroy"] is False


def test_dev_buckets_tear_down_in_one_pass(dev):
    for bucket in dev.by_type("aws:s3/bucket:Bucket"):
        assert bucket.options["protect"] is False and bucket.options["retainOnDelete"] is False
        assert bucket.inputs["forceDestroy"] is True


def test_without_a_customer_managed_key_buckets_use_the_aws_managed_kms_key(dev):
    assert not [k for k in dev.by_type("aws:kms/key:Key") if k.name == "buckets-key"]
    (rule,) = one(dev, SSE, "buckets-payloads").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms"}
