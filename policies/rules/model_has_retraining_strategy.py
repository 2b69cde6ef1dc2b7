"""model-has-retraining-strategy: drift leads somewhere.

A model's retraining strategy is declared on its InferenceService with the annotation
`mlops.platform/retraining-policy` (on_drift | on_dataset_drift | scheduled) and its trigger:
`mlops.platform/retraining-webhook` (called by the drift job) or `mlops.platform/retraining-job`
(the training Job template the drift job creates) for the drift policies, and
`mlops.platform/retraining-schedule` (cron) for `scheduled`.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import INFERENCE_SERVICE, describe

POLICY_ANNOTATION = "mlops.platform/retraining-policy"
WEBHOOK_ANNOTATION = "mlops.platform/retraining-webhook"
SCHEDULE_ANNOTATION = "mlops.platform/retraining-schedule"
JOB_ANNOTATION = "mlops.platform/retraining-job"
POLICIES = ("on_drift", "on_dataset_drift", "scheduled")

TEXT = RuleText(
    name="model-has-retraining-strategy",
    description="Every InferenceService declares its retraining policy and trigger (webhook, training Job or schedule).",
    remediation=f"Set mlops:models[].retraining; the ModelDeployment component writes {POLICY_ANNOTATION} and "
    f"{WEBHOOK_ANNOTATION} / {JOB_ANNOTATION} / {SCHEDULE_ANNOTATION} on the InferenceService.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    annotations = (args.props.get("metadata") or {}).get("annotations") or {}
    where = describe(args.resource_type, args.props, args.name)
    policy = annotations.get(POLICY_ANNOTATION)
    if policy not in POLICIES:
        report(violation(f"{where} has {POLICY_ANNOTATION}={policy!r}; expected one of {', '.join(POLICIES)}", TEXT.remediation))
        return
    triggers = (SCHEDULE_ANNOTATION,) if policy == "scheduled" else (WEBHOOK_ANNOTATION, JOB_ANNOTATION)
    if not any(annotations.get(trigger) for trigger in triggers):
        report(violation(f"{where} has retraining policy {policy!r} but no {' or '.join(triggers)}", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
