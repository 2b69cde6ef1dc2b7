"""gpu-pool-tainted: a GPU node pool always carries the nvidia.com/gpu NoSchedule taint.

Without it, any pod lands on a GPU node and keeps an expensive node (and the autoscaler) busy.
EKS node groups must declare the taint; GKE adds it to every GPU pool, so a GKE pool only fails
if it declares a contradicting one.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import GPU_RESOURCE
from .common.pools import has_gpu_taint, pool_of

TEXT = RuleText(
    name="gpu-pool-tainted",
    description="GPU node pools carry the nvidia.com/gpu NoSchedule taint.",
    remediation="Add taint {key: nvidia.com/gpu, value: 'true', effect: NO_SCHEDULE} to the node group.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    pool = pool_of(args.resource_type, args.name, args.props)
    if pool is None or not pool.gpu:
        return
    contradicting = [t for t in pool.taints if t.get("key") == GPU_RESOURCE and t.get("effect") not in ("NO_SCHEDULE", "NoSchedule")]
    if not has_gpu_taint(pool) or contradicting:
        report(violation(f"GPU pool {args.name} has no {GPU_RESOURCE} NoSchedule taint (taints: {list(pool.taints)})", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
