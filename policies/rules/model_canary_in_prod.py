"""model-canary-in-prod: in prod, every model version reaches users behind a canary.

A prod InferenceService carries its model's declared rollout policy (the canary gates, annotation
`mlops.platform/canary-gates`), or is running a canary right now: a new version is introduced to a
share of traffic, judged by those gates, and can be sent back to 0 %. A promoted model keeps its
policy (`canaryTrafficPercent: 100`), so the next version goes the same way.
`canaryTrafficPercent` in RawDeployment mode is an error in every environment: KServe silently
ignores it (kserve #5335, #4074).
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, environment_of, resource_guardrail, violation
from .common.kubernetes import INFERENCE_SERVICE, describe
from .common.models import RAW_MODES, canary_in_progress, canary_percent, declares_canary_policy, deployment_mode

TEXT = RuleText(
    name="model-canary-in-prod",
    description="Prod InferenceServices declare a canary traffic split that their deployment mode honours.",
    remediation="Declare mlops:models[].canary (trafficPercent, gates) for the model; keep mlops:kserve.deploymentMode "
    "Serverless for canaryTrafficPercent.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    where = describe(args.resource_type, args.props, args.name)
    mode = deployment_mode(args.props)
    percent = canary_percent(args.props)
    if percent is not None and mode in RAW_MODES:
        report(violation(f"{where} sets canaryTrafficPercent={percent} in {mode} mode, where KServe ignores it", "use spec.canary or Serverless mode"))
        return
    if environment_of(args) == "prod" and not declares_canary_policy(args.props) and not canary_in_progress(args.props):
        report(violation(f"{where} declares no canary in prod", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
