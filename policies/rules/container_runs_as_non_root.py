"""container-runs-as-non-root: every container runs as a non-root user.

`runAsNonRoot: true` on the container or its pod, and no `runAsUser: 0`. The kubelet then refuses
to start an image whose user is root, instead of trusting the image.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, exemption_reason, resource_guardrail, violation
from .common.kubernetes import containers, describe

TEXT = RuleText(
    name="container-runs-as-non-root",
    description="Containers run as non-root (runAsNonRoot: true, runAsUser != 0).",
    remediation="Use components.workloads.RESTRICTED_POD_SECURITY / restricted_container_security(run_as_user=<uid>).",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if exemption_reason(args.props, TEXT.name):
        return
    for ref in containers(args.resource_type, args.props):
        non_root = ref.security.get("runAsNonRoot", ref.pod_security.get("runAsNonRoot"))
        user = ref.security.get("runAsUser", ref.pod_security.get("runAsUser"))
        where = f"{describe(args.resource_type, args.props, args.name)} container {ref.name}"
        if user == 0:
            report(violation(f"{where} runs as runAsUser 0 (root)", TEXT.remediation))
        elif non_root is not True:
            report(violation(f"{where} does not set runAsNonRoot: true", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY, exemptible=True)
