"""S3 buckets for MLflow artifacts and inference payload logs.

Both are encrypted with SSE-KMS, versioned, closed to the public (all four public access blocks,
ACLs disabled) and refuse plain-HTTP requests. Payload logs expire after the configured
retention; artifacts are kept, and only their superseded versions age out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.foundation.aws.options import stateful

SseByDefault = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
# Uploads a client abandoned still cost storage until aborted.
ABORT_MULTIPART_AFTER_DAYS = 7
NONCURRENT_ARTIFACT_VERSION_DAYS = 90


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Bucket policy denying every request that does not arrive over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


@dataclass(frozen=True)
class BucketsArgs:
    # Deterministic names (not auto-named): model locations are checked against them before `pulumi up`.
    artifact_bucket_name: str
    payload_bucket_name: str
    payload_retention_days: int
    artifact_versioning: bool
    # A platform-managed KMS key instead of the account's AWS-managed S3 key.
    customer_managed_key: bool
    # Protect and retain buckets and key; refuse to empty non-empty buckets on delete (prod).
    keep_stateful: bool


class Buckets(pulumi.ComponentResource):
    artifact_bucket: pulumi.Output[str]
    artifact_bucket_arn: pulumi.Output[str]
    payload_bucket: pulumi.Output[str]
    payload_bucket_arn: pulumi.Output[str]
    # None when the AWS-managed key encrypts the buckets.
    kms_key_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: BucketsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:Buckets", name, None, opts)
        self._args = args
        key = None
        if args.customer_managed_key:
            key = aws.kms.Key(
                f"{name}-key",
                description="SSE-KMS key of the MLflow artifact and payload log buckets",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                opts=stateful(self, args.keep_stateful),
            )
        self.kms_key_arn = key.arn if key is not None else None
        artifacts = self._bucket(
            f"{name}-artifacts", args.artifact_bucket_name, key, versioned=args.artifact_versioning, rules=self._artifact_rules()
        )
        payloads = self._bucket(f"{name}-payloads", args.payload_bucket_name, key, versioned=True, rules=self._payload_rules())
        self.artifact_bucket, self.artifact_bucket_arn = artifacts.bucket, artifacts.arn
        self.payload_bucket, self.payload_bucket_arn = payloads.bucket, payloads.arn
        self.register_outputs({"artifact_bucket": self.artifact_bucket, "payload_bucket": self.payload_bucket})

    def _bucket(
        self,
        name: str,
        bucket_name: str,
        key: aws.kms.Key | None,
        *,
        versioned: bool,
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs],
    ) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            name,
            bucket=bucket_name,
            # Outside prod, `pulumi destroy` removes buckets in one pass even when they hold objects.
            force_destroy=not self._args.keep_stateful,
            opts=stateful(self, self._args.keep_stateful),
        )
        aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=SseByDefault(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn if key is not None else None
                    ),
                    # One data key per bucket instead of one KMS call per object.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            name,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled" if versioned else "Suspended"
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=rules, opts=child)
        aws.s3.BucketPolicy(
            name,
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(tls_only_policy(bucket.arn)),
            # S3 rejects a policy put while the public access block is being changed.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        return bucket

    def _artifact_rules(self) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        return [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-superseded-versions-abort-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_ARTIFACT_VERSION_DAYS
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
                ),
            )
        ]

    def _payload_rules(self) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        days = self._args.payload_retention_days
        return [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-payload-logs",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                # A deleted or overwritten payload log is not kept past the retention either.
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
                ),
            )
        ]
