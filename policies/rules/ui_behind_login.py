"""ui-behind-login: in prod, the platform's web UIs on the gateway sit behind the identity provider.

Every HTTPRoute that does not serve a model (MLflow, Grafana, anything else put on the gateway) is
the target of an Envoy Gateway SecurityPolicy with `oidc`: a browser is signed in at the stack's
provider before the server sees a request. Model routes answer machine callers and are judged by
public-model-requires-auth instead.
"""

from __future__ import annotations

from pulumi_policy import StackValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, environment_of, stack_guardrail, violation
from .common.kubernetes import describe
from .common.routes import policies_guarding, routes, serves_model, serves_nothing

TEXT = RuleText(
    name="ui-behind-login",
    description="In prod, every gateway route that sends traffic to a UI (not a model, not a bare redirect) is guarded by a SecurityPolicy with oidc.",
    remediation="Set mlops:gateway.oidc (issuer, clientId, clientSecret as a secret, allowedGroups); the platform renders "
    "the login for mlflow.hostname and monitoring.grafanaHostname (components/platform/ui_routes.py).",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    prod = environment_of(args) == "prod"
    for route in routes(args.resources):
        if serves_model(route) or serves_nothing(route):
            continue
        if not any(spec.get("oidc") for spec in policies_guarding(route, args.resources)):
            where = describe(route.resource.resource_type, route.props, route.resource.name)
            report(violation(f"{where} is on the gateway without an OIDC login{'' if prod else ' (required in prod)'}", TEXT.remediation), route.resource.urn)


GUARDRAIL = stack_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
