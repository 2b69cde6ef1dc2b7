"""gpu-workload-on-gpu-pool: GPU pods go to tainted GPU pools, and only GPU pods do.

A pod (or InferenceService predictor) requesting nvidia.com/gpu must tolerate the GPU taint and
select its nodes (nodeSelector) with labels that a tainted GPU pool of this stack carries. When
the stack declares no pools (local clusters), a nodeSelector is still required. A pod that
tolerates the GPU taint without requesting a GPU would hold a GPU node: also a violation
(DaemonSets excepted: node agents such as the device plugin run on every GPU node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, exemption_reason, stack_guardrail, violation
from .common.kubernetes import GPU_RESOURCE, describe, gpu_request, pod_containers, pod_specs, tolerates
from .common.pools import Pool, has_gpu_taint, pool_of

DAEMON_SET = "kubernetes:apps/v1:DaemonSet"

TEXT = RuleText(
    name="gpu-workload-on-gpu-pool",
    description="Pods requesting GPUs tolerate the GPU taint and select a tainted GPU pool; other pods do not tolerate it.",
    remediation="Take nodeSelector and tolerations from Foundation.gpu_placements[<pool>] (mlops:models[].resources.gpuPool).",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    pools = [p for r in args.resources if (p := pool_of(r.resource_type, r.name, r.props)) is not None]
    gpu_pools = [p for p in pools if p.gpu and has_gpu_taint(p)]
    for resource in args.resources:
        if exemption_reason(resource.props, TEXT.name):
            continue
        for pod in pod_specs(resource.resource_type, resource.props):
            _check_pod(resource, pod, pools, gpu_pools, report)


def _check_pod(resource: PolicyResource, pod: Mapping[str, Any], pools: list[Pool], gpu_pools: list[Pool], report: Report) -> None:
    where = describe(resource.resource_type, resource.props, resource.name)
    gpus = sum(gpu_request(ref.container) for ref in pod_containers(pod))
    tolerated = tolerates(pod, GPU_RESOURCE)
    if gpus == 0:
        if tolerated and resource.resource_type != DAEMON_SET:
            report(violation(f"{where} tolerates the {GPU_RESOURCE} taint but requests no GPU", "drop the toleration so it stays off GPU nodes"), resource.urn)
        return
    selector = pod.get("nodeSelector") or {}
    if not tolerated:
        report(violation(f"{where} requests {gpus} GPU(s) without tolerating the {GPU_RESOURCE} taint", TEXT.remediation), resource.urn)
    if not selector:
        report(violation(f"{where} requests {gpus} GPU(s) without a nodeSelector for a GPU pool", TEXT.remediation), resource.urn)
    elif pools and not any(all(p.labels.get(k) == v for k, v in selector.items()) for p in gpu_pools):
        report(
            violation(f"{where} selects nodes {selector}, which match no tainted GPU pool ({', '.join(p.name for p in gpu_pools) or 'none declared'})", TEXT.remediation),
            resource.urn,
        )


GUARDRAIL = stack_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
