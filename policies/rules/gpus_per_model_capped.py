"""gpus-per-model-capped: one model replica asks for at most the environment's GPU cap.

The cap is `mlops:limits.maxGpusPerModel`, handed to the pack as this policy's `maxGpusPerModel`
config. Counted per replica across the predictor's containers (model server and sidecars).
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import INFERENCE_SERVICE, describe, gpu_request, pod_containers, pod_specs

LIMIT_KEY = "maxGpusPerModel"

TEXT = RuleText(
    name="gpus-per-model-capped",
    description="A model replica requests at most mlops:limits.maxGpusPerModel GPUs.",
    remediation="Lower mlops:models[].resources.gpus or, with the budget owner's approval, raise mlops:limits.maxGpusPerModel.",
    extra_config={LIMIT_KEY: {"type": "integer", "minimum": 0, "description": "Most GPUs one model replica may request."}},
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    limit = args.get_config().get(LIMIT_KEY)
    if limit is None:
        args.not_applicable(f"no {LIMIT_KEY} in the policy config; generate it with `mlops policy-config`")
        return
    for pod in pod_specs(args.resource_type, args.props):
        gpus = sum(gpu_request(ref.container) for ref in pod_containers(pod))
        if gpus > int(limit):
            report(violation(f"{describe(args.resource_type, args.props, args.name)} requests {gpus} GPU(s) per replica, above the cap of {int(limit)}", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
