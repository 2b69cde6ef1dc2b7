"""no-static-cloud-credentials: workloads get cloud access through workload identity only.

No IAM user access keys or login profiles, no GCP service-account JSON keys or HMAC keys, and no
container with a literal cloud credential in its environment. Keys that never expire leak into
state, logs and laptops; IRSA and GKE Workload Identity issue short-lived tokens instead.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import containers, describe

CREDENTIAL_TYPES = {
    "aws:iam/accessKey:AccessKey": "an IAM access key",
    "aws:iam/userLoginProfile:UserLoginProfile": "an IAM user console password",
    "gcp:serviceaccount/key:Key": "a service-account JSON key",
    "gcp:storage/hmacKey:HmacKey": "a Cloud Storage HMAC key",
}
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON", "GOOGLE_CREDENTIALS")

TEXT = RuleText(
    name="no-static-cloud-credentials",
    description="No static cloud credentials (access keys, JSON keys, literal credential env vars) anywhere in the stack.",
    remediation="Remove the key and bind the workload's Kubernetes ServiceAccount to a cloud identity (IRSA role / GKE Workload Identity).",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    kind = CREDENTIAL_TYPES.get(args.resource_type)
    if kind is not None:
        report(violation(f"{args.name} creates {kind}", TEXT.remediation))
        return
    for ref in containers(args.resource_type, args.props):
        for env in ref.container.get("env") or []:
            if env.get("name") in CREDENTIAL_ENV and env.get("value") not in (None, ""):
                report(
                    violation(
                        f"{describe(args.resource_type, args.props, args.name)} container {ref.name} sets {env['name']} to a literal value",
                        "read it from a Secret (valueFrom.secretKeyRef) only for in-cluster stores; for cloud access use workload identity",
                    )
                )


GUARDRAIL = resource_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
