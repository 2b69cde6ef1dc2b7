"""model-has-monitoring: no model is served unwatched.

Each InferenceService needs (1) a PodMonitor or ServiceMonitor, in its namespace or selecting it,
whose selector matches its predictor pods, so request rate, errors and latency reach Prometheus;
and (2) a drift CronJob labelled `mlops.platform/model: <model>`, so input drift is measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, stack_guardrail, violation
from .common.kubernetes import CRON_JOB, INFERENCE_SERVICE, MODEL_LABEL, POD_MONITOR, SERVICE_MONITOR, describe, dig, selector_matches
from .common.models import model_name, namespace, predictor_labels
from .common.stack import of_type

TEXT = RuleText(
    name="model-has-monitoring",
    description="Every InferenceService has a PodMonitor/ServiceMonitor selecting its pods and a drift CronJob.",
    remediation="Deploy models through the ModelDeployment component with mlops:models[].monitoring set; it renders both.",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    monitors = of_type(args.resources, POD_MONITOR, SERVICE_MONITOR)
    cron_jobs = of_type(args.resources, CRON_JOB)
    for service in of_type(args.resources, INFERENCE_SERVICE):
        model = model_name(service.props, service.name)
        where = describe(service.resource_type, service.props, service.name)
        if not any(_scrapes(monitor, service) for monitor in monitors):
            report(violation(f"{where} (model {model}) has no PodMonitor/ServiceMonitor selecting its pods", TEXT.remediation), service.urn)
        if not any(_model_label(job.props) == model for job in cron_jobs):
            report(violation(f"{where} (model {model}) has no drift CronJob labelled {MODEL_LABEL}: {model}", TEXT.remediation), service.urn)


def _scrapes(monitor: PolicyResource, service: PolicyResource) -> bool:
    spec = monitor.props.get("spec") or {}
    target_namespace = namespace(service.props)
    namespaces = spec.get("namespaceSelector") or {}
    in_scope = (
        namespaces.get("any") is True
        or target_namespace in (namespaces.get("matchNames") or [])
        or (not namespaces and namespace(monitor.props) == target_namespace)
    )
    return in_scope and selector_matches(spec.get("selector"), predictor_labels(service.props)) and bool(spec.get("selector"))


def _model_label(props: Mapping[str, Any]) -> str | None:
    for path in (("metadata", "labels"), ("spec", "jobTemplate", "metadata", "labels"), ("spec", "jobTemplate", "spec", "template", "metadata", "labels")):
        labels = dig(props, *path) or {}
        if labels.get(MODEL_LABEL):
            return str(labels[MODEL_LABEL])
    return None


GUARDRAIL = stack_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
