"""public-model-requires-auth: no model is reachable from outside the cluster without authentication.

Every HTTPRoute serving a model (labelled with the model, or sending traffic to Kourier's cluster-local
Service or a KServe predictor Service) is the target of an Envoy Gateway SecurityPolicy that
authenticates callers: `jwt` (tokens of the stack's issuer) or `apiKeyAuth` (keys issued per consumer).
"""

from __future__ import annotations

from pulumi_policy import StackValidationArgs

from .common.guardrail import MANDATORY, Report, RuleText, stack_guardrail, violation
from .common.kubernetes import describe
from .common.routes import policies_guarding, routes, serves_model

AUTHENTICATIONS = ("jwt", "apiKeyAuth")

TEXT = RuleText(
    name="public-model-requires-auth",
    description="Every gateway route to a model is guarded by a SecurityPolicy with jwt or apiKeyAuth.",
    remediation="Declare mlops:models[].endpoint.auth (jwt or apiKey) with its consumers; the platform renders the "
    "SecurityPolicy (components/model/endpoint.py).",
)


def validate(args: StackValidationArgs, report: Report) -> None:
    for route in routes(args.resources):
        if not serves_model(route):
            continue
        guards = policies_guarding(route, args.resources)
        if not any(spec.get(kind) for spec in guards for kind in AUTHENTICATIONS):
            where = describe(route.resource.resource_type, route.props, route.resource.name)
            found = f"{len(guards)} SecurityPolicy without jwt or apiKeyAuth targets it" if guards else "no SecurityPolicy targets it"
            report(violation(f"{where} serves a model and {found}", TEXT.remediation), route.resource.urn)


GUARDRAIL = stack_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
