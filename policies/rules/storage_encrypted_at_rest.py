"""storage-encrypted-at-rest: buckets, databases, volumes and cluster Secrets are encrypted.

Everywhere: every S3 bucket has a server-side encryption configuration, RDS storage and EBS
volumes are encrypted, EKS envelope-encrypts Secrets. In prod, buckets use a customer-managed KMS
key (S3 `aws:kms`, GCS `encryption.defaultKmsKeyName`), so access to data can be revoked by key
policy. Cloud SQL and GCS are always encrypted by Google, so only the prod CMEK check applies.
"""

from __future__ import annotations

from pulumi_policy import PolicyResource, StackValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, environment_of, stack_guardrail, violation
from .common.kubernetes import dig
from .common.stack import attached_to, of_type

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")

TEXT = RuleText(
    name="storage-encrypted-at-rest",
    description="Buckets, databases, volumes and Kubernetes Secrets are encrypted at rest (with a customer-managed key in prod).",
    remediation="Add a BucketServerSideEncryptionConfiguration (aws:kms with the stack's KMS key in prod), set storageEncrypted/encrypted, "
    "set the cluster's encryptionConfig for secrets, and set GCS encryption.defaultKmsKeyName in prod.",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    prod = environment_of(args) == "prod"
    for bucket in of_type(args.resources, S3_BUCKET):
        _check_s3_bucket(bucket, args, prod, report)
    for db in of_type(args.resources, "aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
        if db.props.get("storageEncrypted") is not True:
            report(violation(f"RDS {db.name} has storageEncrypted={db.props.get('storageEncrypted')!r}", "set storageEncrypted=True (and kmsKeyId)"), db.urn)
    for volume in of_type(args.resources, "aws:ebs/volume:Volume"):
        if volume.props.get("encrypted") is not True:
            report(violation(f"EBS volume {volume.name} is not encrypted", "set encrypted=True"), volume.urn)
    for cluster in of_type(args.resources, "aws:eks/cluster:Cluster"):
        if "secrets" not in (dig(cluster.props, "encryptionConfig", "resources") or []):
            report(
                violation(f"EKS cluster {cluster.name} does not envelope-encrypt Secrets", "set encryptionConfig={resources: ['secrets'], provider: {keyArn: <KMS key>}}"),
                cluster.urn,
            )
    if prod:
        for bucket in of_type(args.resources, "gcp:storage/bucket:Bucket"):
            if not dig(bucket.props, "encryption", "defaultKmsKeyName"):
                report(
                    violation(f"GCS bucket {bucket.name} has no customer-managed key in prod", "set encryption.defaultKmsKeyName to the stack's KMS CryptoKey"),
                    bucket.urn,
                )


def _check_s3_bucket(bucket: PolicyResource, args: StackValidationArgs, prod: bool, report: Report) -> None:
    configurations = attached_to(bucket, args.resources, S3_ENCRYPTION)
    rules = [rule for c in configurations for rule in c.props.get("rules") or []]
    if not rules:
        report(violation(f"S3 bucket {bucket.name} has no server-side encryption configuration", "add a BucketServerSideEncryptionConfiguration for it"), bucket.urn)
        return
    defaults = [rule.get("applyServerSideEncryptionByDefault") or {} for rule in rules]
    customer_managed = all(d.get("sseAlgorithm") in KMS_ALGORITHMS and d.get("kmsMasterKeyId") for d in defaults)
    if prod and not customer_managed:
        used = sorted(f"{d.get('sseAlgorithm') or 'unset'} key={d.get('kmsMasterKeyId') or 'AWS-managed'}" for d in defaults)
        report(
            violation(
                f"S3 bucket {bucket.name} is encrypted with {used} in prod, not a customer-managed KMS key",
                "use sseAlgorithm 'aws:kms' with kmsMasterKeyId (mlops:storage.customerManagedKey: true)",
            ),
            bucket.urn,
        )


GUARDRAIL = stack_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
