"""Run every guardrail of the policy pack offline, against a rendering.

Builds the same `ResourceValidationArgs` / `StackValidationArgs` the pulumi-policy analyzer builds
during `pulumi preview` (inputs as props, dependencies, options, the policy config from
`mlops.offline.policy_config`) and calls each policy's `validate`, the way pulumi-policy's own tests do.
Secrets arrive as the rendering's marker, and the marker is handed to the rules in their config,
so `secrets-are-pulumi-secrets` can tell a secret from plain text here (it cannot online).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError

from mlops.offline.policy_config import policy_pack_config
from mlops.offline.render import SECRET, Rendering, RenderedResource
from policies.rules import GUARDRAILS
from policies.rules.common.guardrail import Guardrail, exemption_reason
from stacks.config.schema import Limits

Level = Literal["mandatory", "advisory", "exempt"]


@dataclass(frozen=True)
class PolicyFinding:
    """One verdict: a violation (mandatory blocks, advisory warns) or a justified exemption."""

    policy: str
    level: Level
    resource: str
    message: str

    @property
    def blocking(self) -> bool:
        return self.level == "mandatory"

    def __str__(self) -> str:
        target = f" {self.resource}" if self.resource else ""
        return f"[{self.level}] {self.policy}{target}: {self.message}"


def run_policies(rendering: Rendering, environment: str, limits: Limits | None = None) -> list[PolicyFinding]:
    """Every guardrail's verdict on `rendering`, judged as `environment` (dev or prod).

    `limits` defaults to the rendering's own `mlops:limits`.
    """
    limits = limits if limits is not None else _rendered_limits(rendering)
    config = policy_pack_config(environment, limits, secret_marker=SECRET)
    resources = _policy_resources(rendering.resources)
    findings: list[PolicyFinding] = []
    for guardrail in GUARDRAILS:
        level = guardrail.level(environment)
        if level == EnforcementLevel.DISABLED:
            continue
        policy_config = {k: v for k, v in config[guardrail.name].items() if k != "enforcementLevel"}
        findings += _run(guardrail, level, policy_config, resources, rendering.resources)
        if guardrail.exemptible:
            findings += _exemptions(guardrail, rendering.resources)
    return findings


def _run(
    guardrail: Guardrail,
    level: EnforcementLevel,
    config: Mapping[str, Any],
    resources: list[PolicyResource],
    rendered: list[RenderedResource],
) -> list[PolicyFinding]:
    found: list[PolicyFinding] = []
    policy = guardrail.policy

    def report_for(default_urn: str):
        def report(message: str, urn: str | None = None) -> None:
            found.append(PolicyFinding(policy.name, level.value, urn or default_urn, message))  # type: ignore[arg-type]

        return report

    if isinstance(policy, ResourceValidationPolicy):
        for resource in resources:
            args = ResourceValidationArgs(
                resource.resource_type, resource.props, resource.urn, resource.name, resource.opts, None, dict(config), {}
            )
            _call(policy.validate, args, report_for(resource.urn))
    else:
        _call(policy.validate, StackValidationArgs(resources, dict(config), {}), report_for(""))
    return found


def _call(validate: Any, args: Any, report: Any) -> None:
    try:
        result = validate(args, report)
        if inspect.isawaitable(result):
            asyncio.run(result)
    except _NotApplicableError:
        # The rule declared itself not applicable to this input (as the analyzer records it).
        return


def _exemptions(guardrail: Guardrail, rendered: list[RenderedResource]) -> list[PolicyFinding]:
    return [
        PolicyFinding(guardrail.name, "exempt", r.urn, reason)
        for r in rendered
        if (reason := exemption_reason(r.inputs, guardrail.name)) is not None
    ]


def _policy_resources(rendered: list[RenderedResource]) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    for resource in rendered:
        options = resource.options
        opts = PolicyResourceOptions(
            protect=bool(options.get("protect")),
            ignore_changes=list(options.get("ignoreChanges") or []),
            delete_before_replace=options.get("deleteBeforeReplace"),
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
            parent=resource.parent,
        )
        by_urn[resource.urn] = PolicyResource(resource.type, resource.inputs, resource.urn, resource.name, opts, None, None, [], {})
    for resource in rendered:
        policy_resource = by_urn[resource.urn]
        policy_resource.parent = by_urn.get(resource.parent or "")
        policy_resource.dependencies = [by_urn[urn] for urn in resource.options.get("dependsOn") or [] if urn in by_urn]
    return list(by_urn.values())


def _rendered_limits(rendering: Rendering) -> Limits:
    raw = rendering.config.get("mlops:limits")
    return Limits.model_validate(json.loads(raw)) if raw else Limits()


def blocking(findings: list[PolicyFinding]) -> list[PolicyFinding]:
    return [f for f in findings if f.blocking]
