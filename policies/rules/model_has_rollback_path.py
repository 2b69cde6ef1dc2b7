"""model-has-rollback-path: every served model can be rolled back in one step.

Either the InferenceService is running a canary (below 100 %: the previous version still serves,
set the percent to 0 to roll back) or it serves an immutable, versioned artifact labelled with its
version, so restoring the previous stack config (`mlops rollback`) redeploys exactly the previous
model. A promoted model (100 %) needs the latter. A moving reference (`models:/name@alias`,
`.../latest`) has no "previous" to return to.
"""

from __future__ import annotations

import re

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import INFERENCE_SERVICE, MODEL_VERSION_LABEL, describe, dig
from .common.models import canary_in_progress, storage_uri

MOVING_REFERENCE = re.compile(r"(^models:/)|(/latest/?$)|(@[A-Za-z][\w-]*$)")

TEXT = RuleText(
    name="model-has-rollback-path",
    description="Every InferenceService has a rollback path: a canary, or a versioned immutable artifact.",
    remediation="Declare mlops:models[].canary, or resolve the model to an artifact URI with `mlops models resolve` so the "
    "predictor carries the mlops.platform/model-version label and an immutable storageUri.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    if canary_in_progress(args.props):
        return
    where = describe(args.resource_type, args.props, args.name)
    version = (dig(args.props, "spec", "predictor", "labels") or {}).get(MODEL_VERSION_LABEL)
    uri = storage_uri(args.props)
    if not version:
        report(violation(f"{where} has no canary and its predictor has no {MODEL_VERSION_LABEL} label", TEXT.remediation))
    if not uri or MOVING_REFERENCE.search(uri):
        report(violation(f"{where} has no canary and serves {uri!r}, which is not an immutable artifact", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
