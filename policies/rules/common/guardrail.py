"""A guardrail: one pulumi-policy `Policy` plus its enforcement level in each environment.

Environments. A rule reads the environment it judges from, in order: its policy config
(`environment`, written into the pack config by `mlops.offline.policy_config`), the stack tag
`mlops:environment`, else `prod`, so a pack run without config applies the strictest checks.

Enforcement. A `Policy` carries one static level, its prod level. Per environment, levels come
from the pack config file (`enforcementLevel` per policy), generated from `Guardrail.levels` for
`pulumi preview --policy-pack-config`, and read directly by the offline runner.

Exemptions. Where a rule is `exemptible`, a Kubernetes object may opt out with the annotation
`policy.mlops.platform/exempt-<rule name>: <reason>` set where the object is built; the reason
is shown in every report, so an exemption is always a written, reviewed decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

Environment = Literal["dev", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "prod")
ENVIRONMENT_TAG = "mlops:environment"
DEFAULT_ENVIRONMENT: Environment = "prod"
EXEMPTION_PREFIX = "policy.mlops.platform/exempt-"
# Set by the offline runner, whose renderings replace every Pulumi secret with this marker.
SECRET_MARKER_KEY = "secretMarker"

ADVISORY = EnforcementLevel.ADVISORY
MANDATORY = EnforcementLevel.MANDATORY
DISABLED = EnforcementLevel.DISABLED

_ENVIRONMENT_PROPERTY = {
    "environment": {
        "type": "string",
        "enum": list(ENVIRONMENTS),
        "description": "Environment class the stack belongs to (from mlops:environment).",
    },
    SECRET_MARKER_KEY: {
        "type": "string",
        "description": "Placeholder an offline rendering puts where a Pulumi secret was (offline runs only).",
    },
}

ValidationArgs = ResourceValidationArgs | StackValidationArgs
Report = Callable[..., None]


@dataclass(frozen=True)
class Guardrail:
    """A policy and the level it is enforced at in dev and in prod."""

    policy: Policy
    levels: Mapping[Environment, EnforcementLevel]
    exemptible: bool = False

    @property
    def name(self) -> str:
        return self.policy.name

    def level(self, environment: str) -> EnforcementLevel:
        if environment not in self.levels:
            raise ValueError(f"environment {environment!r} is not one of {', '.join(ENVIRONMENTS)}")
        return self.levels[environment]  # type: ignore[index]


@dataclass(frozen=True)
class RuleText:
    """What a rule says: its kebab-case name, what it requires, and how to fix a violation."""

    name: str
    description: str
    remediation: str
    extra_config: dict[str, dict[str, Any]] = field(default_factory=dict)


def resource_guardrail(
    text: RuleText,
    validate: Callable[[ResourceValidationArgs, Report], None],
    *,
    dev: EnforcementLevel,
    prod: EnforcementLevel,
    exemptible: bool = False,
) -> Guardrail:
    return _guardrail(ResourceValidationPolicy, text, validate, dev, prod, exemptible)


def stack_guardrail(
    text: RuleText,
    validate: Callable[[StackValidationArgs, Report], None],
    *,
    dev: EnforcementLevel,
    prod: EnforcementLevel,
    exemptible: bool = False,
) -> Guardrail:
    return _guardrail(StackValidationPolicy, text, validate, dev, prod, exemptible)


def _guardrail(
    policy_class: type[ResourceValidationPolicy] | type[StackValidationPolicy],
    text: RuleText,
    validate: Callable[..., None],
    dev: EnforcementLevel,
    prod: EnforcementLevel,
    exemptible: bool,
) -> Guardrail:
    # The pack's own level is prod's; `policy-config` sets the stack's environment's level.
    policy = policy_class(
        name=text.name,
        description=text.description,
        validate=validate,
        enforcement_level=prod,
        config_schema=PolicyConfigSchema(properties={**_ENVIRONMENT_PROPERTY, **text.extra_config}),
        remediation_steps=text.remediation,
    )
    return Guardrail(policy, {"dev": dev, "prod": prod}, exemptible)


def environment_of(args: ValidationArgs) -> Environment:
    configured = args.get_config().get("environment")
    if configured in ENVIRONMENTS:
        return configured
    tagged = args.stack_tags.get(ENVIRONMENT_TAG)
    if tagged in ENVIRONMENTS:
        return tagged  # type: ignore[return-value]
    return DEFAULT_ENVIRONMENT


def exemption_reason(props: Mapping[str, Any], rule_name: str) -> str | None:
    """The written reason a Kubernetes object gives for opting out of `rule_name`, if any."""
    annotations = (props.get("metadata") or {}).get("annotations") or {}
    reason = annotations.get(EXEMPTION_PREFIX + rule_name)
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


def violation(what: str, remedy: str) -> str:
    """Every message names the offending thing and ends with the fix."""
    return f"{what}. Fix: {remedy}"
