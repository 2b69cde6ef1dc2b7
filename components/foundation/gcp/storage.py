"""GCS buckets for MLflow artifacts and inference payload logs.

Both use uniform bucket-level access (IAM only, no object ACLs), enforce public access
prevention (no grant to allUsers/allAuthenticatedUsers can take effect), are versioned, and may
be encrypted with a customer-managed Cloud KMS key. Payload logs expire after the configured
retention; artifacts are kept, and only their superseded versions age out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.foundation.gcp.options import stateful

KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
KEY_ROTATION_PERIOD = "7776000s"
# Uploads a client abandoned still cost storage until aborted.
ABORT_MULTIPART_AFTER_DAYS = 7
NONCURRENT_ARTIFACT_VERSION_DAYS = 90

Rule = gcp.storage.BucketLifecycleRuleArgs
Action = gcp.storage.BucketLifecycleRuleActionArgs
Condition = gcp.storage.BucketLifecycleRuleConditionArgs


def artifact_rules() -> list[gcp.storage.BucketLifecycleRuleArgs]:
    return [
        Rule(action=Action(type="Delete"), condition=Condition(days_since_noncurrent_time=NONCURRENT_ARTIFACT_VERSION_DAYS)),
        Rule(action=Action(type="AbortIncompleteMultipartUpload"), condition=Condition(age=ABORT_MULTIPART_AFTER_DAYS)),
    ]


def payload_rules(retention_days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    return [
        Rule(action=Action(type="Delete"), condition=Condition(age=retention_days)),
        # A deleted or overwritten payload log is not kept past the retention either.
        Rule(action=Action(type="Delete"), condition=Condition(days_since_noncurrent_time=1)),
        Rule(action=Action(type="AbortIncompleteMultipartUpload"), condition=Condition(age=ABORT_MULTIPART_AFTER_DAYS)),
    ]


@dataclass(frozen=True)
class BucketsArgs:
    project: str
    # Deterministic names (not auto-named): model locations are checked against them before `pulumi up`.
    artifact_bucket_name: str
    payload_bucket_name: str
    # Buckets (and their key) live in the cluster's region, next to the workloads using them.
    region: str
    payload_retention_days: int
    artifact_versioning: bool
    customer_managed_key: bool
    # Protect and retain buckets and key; refuse to delete non-empty buckets (prod).
    keep_stateful: bool


class Buckets(pulumi.ComponentResource):
    artifact_bucket: pulumi.Output[str]
    payload_bucket: pulumi.Output[str]
    # None when Google-managed keys encrypt the buckets.
    kms_key_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:Buckets", name, None, opts)
        self._args = args
        key, key_ready = self._key(name) if args.customer_managed_key else (None, [])
        self.kms_key_id = key.id if key is not None else None
        artifacts = self._bucket(
            f"{name}-artifacts", args.artifact_bucket_name, key, key_ready, args.artifact_versioning, artifact_rules()
        )
        payloads = self._bucket(
            f"{name}-payloads", args.payload_bucket_name, key, key_ready, True, payload_rules(args.payload_retention_days)
        )
        self.artifact_bucket = artifacts.name
        self.payload_bucket = payloads.name
        self.register_outputs({"artifact_bucket": self.artifact_bucket, "payload_bucket": self.payload_bucket})

    def _key(self, name: str) -> tuple[gcp.kms.CryptoKey, list[pulumi.Resource]]:
        keep = self._args.keep_stateful
        ring = gcp.kms.KeyRing(f"{name}-key", location=self._args.region, opts=stateful(self, keep))
        key = gcp.kms.CryptoKey(
            f"{name}-key",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KEY_ROTATION_PERIOD,
            opts=stateful(self, keep),
        )
        # Cloud Storage encrypts with the key as its project service agent, not as the caller.
        agent = gcp.storage.get_project_service_account_output(
            project=self._args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-key-storage-agent",
            crypto_key_id=key.id,
            role=KMS_ENCRYPTER_DECRYPTER,
            member=agent.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key, [grant]

    def _bucket(
        self,
        name: str,
        bucket_name: str,
        key: gcp.kms.CryptoKey | None,
        key_ready: list[pulumi.Resource],
        versioned: bool,
        rules: list[gcp.storage.BucketLifecycleRuleArgs],
    ) -> gcp.storage.Bucket:
        keep = self._args.keep_stateful
        return gcp.storage.Bucket(
            name,
            name=bucket_name,
            location=self._args.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=versioned),
            lifecycle_rules=rules,
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=key.id) if key is not None else None,
            # Outside prod, `pulumi destroy` removes buckets in one pass even when they hold objects.
            force_destroy=not keep,
            # The storage agent must hold the key before a bucket can default to it.
            opts=stateful(self, keep, depends_on=key_ready),
        )
