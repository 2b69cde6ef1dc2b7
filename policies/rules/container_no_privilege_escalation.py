"""container-no-privilege-escalation: no privileged containers, no setuid escalation.

`allowPrivilegeEscalation` must be explicitly false (Kubernetes defaults it to true) and
`privileged` must not be true.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, exemption_reason, resource_guardrail, violation
from .common.kubernetes import containers, describe

TEXT = RuleText(
    name="container-no-privilege-escalation",
    description="Containers set allowPrivilegeEscalation: false and are not privileged.",
    remediation="Use components.workloads.restricted_container_security() (allowPrivilegeEscalation false, capabilities drop ALL).",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if exemption_reason(args.props, TEXT.name):
        return
    for ref in containers(args.resource_type, args.props):
        where = f"{describe(args.resource_type, args.props, args.name)} container {ref.name}"
        if ref.security.get("privileged") is True:
            report(violation(f"{where} is privileged", TEXT.remediation))
        if ref.security.get("allowPrivilegeEscalation") is not False:
            report(violation(f"{where} does not set allowPrivilegeEscalation: false", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY, exemptible=True)
