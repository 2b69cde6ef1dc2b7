"""container-read-only-root-filesystem: containers cannot write to their image.

Writable paths are mounted volumes (an emptyDir at /tmp). A server that must write inside its
image (PostgreSQL's socket and lock files) is exempted with a written reason on the object:
`policy.mlops.platform/exempt-container-read-only-root-filesystem: <why>`.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, exemption_reason, resource_guardrail, violation
from .common.kubernetes import containers, describe

TEXT = RuleText(
    name="container-read-only-root-filesystem",
    description="Containers run with readOnlyRootFilesystem: true where possible; exceptions carry a written reason.",
    remediation="Set readOnlyRootFilesystem: true and mount an emptyDir where the process writes, or annotate the object with "
    "policy.mlops.platform/exempt-container-read-only-root-filesystem: <reason>.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if exemption_reason(args.props, TEXT.name):
        return
    for ref in containers(args.resource_type, args.props):
        if ref.security.get("readOnlyRootFilesystem") is not True:
            where = f"{describe(args.resource_type, args.props, args.name)} container {ref.name}"
            report(violation(f"{where} has a writable root filesystem", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY, exemptible=True)
