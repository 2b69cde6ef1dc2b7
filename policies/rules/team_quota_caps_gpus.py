"""team-quota-caps-gpus: every team namespace caps the GPUs its pods may request.

A team namespace (a Namespace labelled `mlops-platform/team`) needs a ResourceQuota whose `hard`
holds `requests.nvidia.com/gpu`, 0 for a team without GPUs. Without it the team's pods could take
every GPU of the cluster's pools, whatever the team was given: a ResourceQuota caps only the
resources it names.
"""

from __future__ import annotations

from pulumi_policy import StackValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, stack_guardrail, violation
from .common.kubernetes import GPU_RESOURCE, dig
from .common.stack import of_type

NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
TEAM_LABEL = "mlops-platform/team"
GPU_QUOTA = f"requests.{GPU_RESOURCE}"

TEXT = RuleText(
    name="team-quota-caps-gpus",
    description=f"Every team namespace has a ResourceQuota with {GPU_QUOTA} (0 when the team has no GPUs).",
    remediation="Declare the team under mlops:teams with quota.gpus; the TeamNamespaces component renders the quota.",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    capped = {
        dig(quota.props, "metadata", "namespace")
        for quota in of_type(args.resources, RESOURCE_QUOTA)
        if GPU_QUOTA in (dig(quota.props, "spec", "hard") or {})
    }
    for namespace in of_type(args.resources, NAMESPACE):
        labels = dig(namespace.props, "metadata", "labels") or {}
        name = dig(namespace.props, "metadata", "name")
        if TEAM_LABEL in labels and name not in capped:
            report(
                violation(f"team namespace {name} (team {labels[TEAM_LABEL]}) has no ResourceQuota capping {GPU_QUOTA}", TEXT.remediation),
                namespace.urn,
            )


GUARDRAIL = stack_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
