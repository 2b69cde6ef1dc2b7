"""container-resource-limits: every container declares CPU and memory requests and limits.

Without requests the scheduler packs blindly; without limits one model server can starve its
node (and the GPU next to it).
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, exemption_reason, resource_guardrail, violation
from .common.kubernetes import containers, describe

REQUIRED = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))

TEXT = RuleText(
    name="container-resource-limits",
    description="Containers set CPU and memory requests and limits.",
    remediation="Use components.workloads.resources(cpu, memory, cpu_limit=...) or the model's mlops:models[].resources.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if exemption_reason(args.props, TEXT.name):
        return
    for ref in containers(args.resource_type, args.props):
        resources = ref.container.get("resources") or {}
        missing = [f"{section}.{name}" for section, name in REQUIRED if (resources.get(section) or {}).get(name) in (None, "")]
        if missing:
            where = f"{describe(args.resource_type, args.props, args.name)} container {ref.name}"
            report(violation(f"{where} has no {', '.join(missing)}", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY, exemptible=True)
