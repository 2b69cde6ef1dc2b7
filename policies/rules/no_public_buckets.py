"""no-public-buckets: no bucket is readable by the internet, by ACL, policy or IAM binding.

S3: each bucket has a public access block with all four switches on, no public canned ACL, and
no bucket policy that allows `Principal: "*"` without a condition. GCS: public access prevention
is enforced, access is uniform (IAM only), and no IAM member or ACL grants allUsers /
allAuthenticatedUsers.
"""

from __future__ import annotations

import json
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, stack_guardrail, violation
from .common.stack import attached_to, of_type

S3_BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BLOCK_SWITCHES = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GROUP_URIS = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
GCS_IAM_TYPES = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding")
GCS_ACL_TYPES = (
    "gcp:storage/bucketAccessControl:BucketAccessControl",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
    "gcp:storage/objectAccessControl:ObjectAccessControl",
)

TEXT = RuleText(
    name="no-public-buckets",
    description="No bucket is public: public access is blocked and nothing grants access to everyone.",
    remediation="Add a BucketPublicAccessBlock with all four switches true (S3) or set publicAccessPrevention='enforced' and "
    "uniformBucketLevelAccess=true (GCS); remove public ACLs, `Principal: \"*\"` Allow statements and allUsers members.",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    resources = args.resources
    for bucket in of_type(resources, S3_BUCKET):
        _check_public_access_block(bucket, resources, report)
        if bucket.props.get("acl") in PUBLIC_ACLS:
            report(violation(f"S3 bucket {bucket.name} has canned ACL {bucket.props['acl']!r}", "remove the ACL (use BucketOwnerEnforced ownership)"), bucket.urn)
    for acl in of_type(resources, "aws:s3/bucketAcl:BucketAcl"):
        grants = (acl.props.get("accessControlPolicy") or {}).get("grants") or []
        public_grant = any((g.get("grantee") or {}).get("uri") in PUBLIC_GROUP_URIS for g in grants)
        if acl.props.get("acl") in PUBLIC_ACLS or public_grant:
            report(violation(f"BucketAcl {acl.name} grants access to everyone", "delete the BucketAcl; grant access through IAM roles"), acl.urn)
    for policy in of_type(resources, "aws:s3/bucketPolicy:BucketPolicy"):
        for statement in _statements(policy.props.get("policy")):
            if statement.get("Effect") == "Allow" and _everyone(statement.get("Principal")) and not statement.get("Condition"):
                report(
                    violation(f"bucket policy {policy.name} allows Principal '*' without a condition (Sid {statement.get('Sid')!r})", "name the IAM principals or add a condition"),
                    policy.urn,
                )
    for bucket in of_type(resources, "gcp:storage/bucket:Bucket"):
        if bucket.props.get("publicAccessPrevention") != "enforced":
            report(violation(f"GCS bucket {bucket.name} has publicAccessPrevention={bucket.props.get('publicAccessPrevention')!r}", "set publicAccessPrevention='enforced'"), bucket.urn)
        if bucket.props.get("uniformBucketLevelAccess") is not True:
            report(violation(f"GCS bucket {bucket.name} allows object ACLs", "set uniformBucketLevelAccess=True"), bucket.urn)
    for binding in of_type(resources, *GCS_IAM_TYPES):
        members = [binding.props.get("member"), *(binding.props.get("members") or [])]
        if any(m in PUBLIC_MEMBERS for m in members):
            report(violation(f"{binding.name} grants a bucket role to {', '.join(m for m in members if m in PUBLIC_MEMBERS)}", "grant roles to service accounts only"), binding.urn)
    for acl in of_type(resources, *GCS_ACL_TYPES):
        if acl.props.get("entity") in PUBLIC_MEMBERS:
            report(violation(f"{acl.name} grants access to {acl.props['entity']}", "remove the ACL entry"), acl.urn)


def _check_public_access_block(bucket: PolicyResource, resources: list[PolicyResource], report: Report) -> None:
    blocks = attached_to(bucket, resources, PUBLIC_ACCESS_BLOCK)
    if not blocks:
        report(violation(f"S3 bucket {bucket.name} has no public access block", "add a BucketPublicAccessBlock with all four switches true"), bucket.urn)
        return
    off = sorted({switch for block in blocks for switch in BLOCK_SWITCHES if block.props.get(switch) is not True})
    if off:
        report(violation(f"S3 bucket {bucket.name} public access block leaves {', '.join(off)} off", f"set {', '.join(off)} to True"), bucket.urn)


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    statements = (document or {}).get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


GUARDRAIL = stack_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
