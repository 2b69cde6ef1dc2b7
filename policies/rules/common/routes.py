"""Routes on the platform gateway and the Envoy Gateway SecurityPolicies that guard them.

A SecurityPolicy applies to the HTTPRoutes its `targetRefs` (or older single `targetRef`) name in
its own namespace (Envoy Gateway api/v1alpha1 securitypolicy_types.go, v1.9.0). A route serves a
model when it carries the model label or sends traffic to a model's server: Kourier's cluster-local
Service (Serverless) or a KServe predictor Service (`<isvc>-...-predictor`, RawDeployment), so an
unlabelled model route is still recognised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource

from .kubernetes import MODEL_LABEL

HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
KOURIER_INTERNAL = ("kourier-system", "kourier-internal")
PREDICTOR_SUFFIX = "-predictor"


@dataclass(frozen=True)
class Route:
    resource: PolicyResource
    namespace: str
    name: str

    @property
    def props(self) -> Mapping[str, Any]:
        return self.resource.props


def routes(resources: list[PolicyResource]) -> Iterator[Route]:
    for resource in resources:
        if resource.resource_type == HTTP_ROUTE:
            metadata = resource.props.get("metadata") or {}
            yield Route(resource, str(metadata.get("namespace") or "default"), str(metadata.get("name") or resource.name))


def _backends(route: Route) -> Iterator[tuple[str, str]]:
    for rule in (route.props.get("spec") or {}).get("rules") or []:
        for backend in rule.get("backendRefs") or []:
            if backend.get("kind", "Service") == "Service" and backend.get("group", "") in ("", "core"):
                yield str(backend.get("namespace") or route.namespace), str(backend.get("name"))


def serves_nothing(route: Route) -> bool:
    """A route without backends only answers from the gateway itself (the HTTP-to-HTTPS redirect):
    nothing behind it needs a login."""
    return not any(rule.get("backendRefs") for rule in (route.props.get("spec") or {}).get("rules") or [])


def serves_model(route: Route) -> bool:
    labels = (route.props.get("metadata") or {}).get("labels") or {}
    return MODEL_LABEL in labels or any(
        backend == KOURIER_INTERNAL or backend[1].endswith(PREDICTOR_SUFFIX) for backend in _backends(route)
    )


def policies_guarding(route: Route, resources: list[PolicyResource]) -> list[Mapping[str, Any]]:
    """Specs of the SecurityPolicies that target `route`."""
    guarding = []
    for resource in resources:
        if resource.resource_type != SECURITY_POLICY:
            continue
        metadata, spec = resource.props.get("metadata") or {}, resource.props.get("spec") or {}
        if str(metadata.get("namespace") or "default") != route.namespace:
            continue
        targets = [*(spec.get("targetRefs") or []), *([spec["targetRef"]] if spec.get("targetRef") else [])]
        if any(t.get("kind") == "HTTPRoute" and t.get("name") == route.name for t in targets):
            guarding.append(spec)
    return guarding
