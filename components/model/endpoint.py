"""A public model endpoint: the model's host on the platform gateway, who may call it, and how often.

Per public model, in the model's namespace:
- an HTTPRoute on the gateway's HTTPS listener for `<model>.<domain>` (or `endpoint.host`).
  Serverless: Knative keeps Kourier as its internal ingress, so the route goes to Kourier's
  cluster-local listener (Service `kourier-internal`, port 80 -> 8081; net-kourier
  config/300-gateway.yaml @ knative-v1.21.1) with the Host rewritten to the predictor's cluster-local
  route, `<isvc>-predictor.<ns>.svc.cluster.local` (KServe names the Knative Service
  `PredictorServiceName` = `<isvc>-predictor`, pkg/constants/constants.go @ v0.20.0; Knative serves a
  route at `<name>.<ns>.svc.cluster.local`, pkg/reconciler/route/domains @ knative-v1.21.3). Kourier
  then splits canary traffic between revisions as Knative configured it. The cross-namespace
  backendRef needs a ReferenceGrant in kourier-system (`KourierRouteGrant`, one per model namespace).
  RawDeployment: the predictor Services KServe creates, `<isvc>-<predictor name>-predictor`, port 80
  (the first container port, 8080, behind port 80: reconcilers/service/service_reconciler.go @ v0.20.0);
  during a canary, stable and canary Services are weighted by the declared traffic share.
- a SecurityPolicy: JWT (the stack's issuer, audiences and JWKS) with an authorization rule admitting
  only the declared consumers' values of the consumer claim; or API keys, one per consumer, generated
  by `random.RandomPassword` whose keeper is the consumer's `keyVersion` (bump it: the password is
  replaced, the old key stops working), kept in a Secret Envoy Gateway reads (one entry per client id).
  The key is stripped before the request reaches the model (`sanitize`).
- with a rate limit, a BackendTrafficPolicy with a local rate limit (per Envoy replica).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import workloads
from components.declarations import JwtSettings
from components.declarations import ModelDeployment as ModelDeclaration
from components.gateway_routes import (
    ENVOY_GATEWAY_API_VERSION,
    GATEWAY_API_GROUP,
    GATEWAY_API_VERSION,
    allow_only_claim,
    host_rewrite,
    http_route_spec,
    jwt_provider,
    route_target,
    service_backend,
)
from components.model.serving import MODEL_LABEL, PROMOTED_PERCENT, DeploymentMode, predictor_name
from components.namespaces import KOURIER_SYSTEM

KOURIER_INTERNAL_SERVICE = "kourier-internal"
KOURIER_INTERNAL_SERVICE_PORT = 80
PREDICTOR_SERVICE_PORT = 80
API_KEY_HEADER = "x-api-key"
# The model sees which consumer called (API keys): the client id, never the key.
CONSUMER_HEADER = "x-mlops-consumer"
JWT_PROVIDER = "mlops"
API_KEY_LENGTH = 40


def default_host(model: str, domain: str) -> str:
    return f"{model}.{domain}"


def endpoint_host(model: ModelDeclaration, domain: str) -> str:
    return model.endpoint.host or default_host(model.name, domain)


def serverless_predictor_host(model: str, namespace: str) -> str:
    return f"{model}-predictor.{namespace}.svc.cluster.local"


def raw_predictor_service(model: str, version: str) -> str:
    return f"{model}-{predictor_name(version)}-predictor"


def route_backends(model: ModelDeclaration, mode: DeploymentMode, namespace: str) -> tuple[list[dict], list[dict]]:
    """(backendRefs, filters) of the model's route in `mode` (see the module docstring)."""
    if mode == "Serverless":
        backend = service_backend(KOURIER_INTERNAL_SERVICE, KOURIER_INTERNAL_SERVICE_PORT, namespace=KOURIER_SYSTEM)
        return [backend], [host_rewrite(serverless_predictor_host(model.name, namespace))]
    version, canary = model.model.deployed_version, model.canary
    if canary is None or canary.traffic_percent == PROMOTED_PERCENT or canary.previous_version is None:
        return [service_backend(raw_predictor_service(model.name, version), PREDICTOR_SERVICE_PORT)], []
    return [
        service_backend(raw_predictor_service(model.name, canary.previous_version), PREDICTOR_SERVICE_PORT, weight=PROMOTED_PERCENT - canary.traffic_percent),
        service_backend(raw_predictor_service(model.name, version), PREDICTOR_SERVICE_PORT, weight=canary.traffic_percent),
    ], []


def jwt_policy_spec(route: str, jwt: JwtSettings, consumers: list[str]) -> dict:
    return {
        **route_target(route),
        "jwt": {"providers": [jwt_provider(JWT_PROVIDER, jwt.issuer, jwt.audiences, jwt.jwks_uri)]},
        "authorization": allow_only_claim(JWT_PROVIDER, jwt.consumer_claim, consumers),
    }


def api_key_policy_spec(route: str, keys_secret: str) -> dict:
    return {
        **route_target(route),
        "apiKeyAuth": {
            "credentialRefs": [{"group": "", "kind": "Secret", "name": keys_secret}],
            "extractFrom": [{"headers": [API_KEY_HEADER]}],
            "forwardClientIDHeader": CONSUMER_HEADER,
            "sanitize": True,
        },
    }


def rate_limit_spec(route: str, requests: int, unit: str) -> dict:
    return {**route_target(route), "rateLimit": {"local": {"rules": [{"limit": {"requests": requests, "unit": unit}}]}}}


def kourier_grant_spec(namespace: str) -> dict:
    """Lets HTTPRoutes of `namespace` send traffic to Kourier's cluster-local Service."""
    return {
        "from": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "namespace": namespace}],
        "to": [{"group": "", "kind": "Service", "name": KOURIER_INTERNAL_SERVICE}],
    }


@dataclass(frozen=True)
class ModelEndpointArgs:
    # The model's declaration: name, endpoint (host, auth, consumers, rate limit) and canary split.
    model: ModelDeclaration
    namespace: str
    deployment_mode: DeploymentMode
    # The gateway's domain (`<model>.<domain>` unless endpoint.host is set).
    domain: str
    # The stack's token issuer (mlops:gateway.jwt), required for endpoint.auth jwt.
    jwt: JwtSettings | None = None
    # The Gateway API and Envoy Gateway CRDs: the route and policies fail with "no matches for kind" before them.
    crds_ready: tuple[pulumi.Resource, ...] = ()


class ModelEndpoint(pulumi.ComponentResource):
    """`mlops:serving:ModelEndpoint`: a model reachable at `https://<host>` for its declared consumers."""

    route: k8s.apiextensions.CustomResource
    security_policy: k8s.apiextensions.CustomResource
    rate_limit: k8s.apiextensions.CustomResource | None
    url: str
    # Consumer -> API key (a secret output); empty for JWT.
    api_keys: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelEndpoint", name, None, opts)
        model, endpoint = args.model, args.model.endpoint
        if not endpoint.public or endpoint.auth is None:
            raise ValueError(f"model {model.name!r}: only a public endpoint with auth gets a ModelEndpoint")
        host = endpoint_host(model, args.domain)
        custom = pulumi.ResourceOptions(parent=self, depends_on=list(args.crds_ready))
        backends, filters = route_backends(model, args.deployment_mode, args.namespace)
        self.route = self._custom(name, "route", GATEWAY_API_VERSION, "HTTPRoute", http_route_spec(host, backends, filters), args, custom)
        route_name = model.name
        self.api_keys = {}
        if endpoint.auth == "jwt":
            if args.jwt is None:
                raise ValueError(f"model {model.name!r}: auth jwt needs mlops:gateway.jwt")
            policy = jwt_policy_spec(route_name, args.jwt, [consumer.name for consumer in endpoint.consumers])
        else:
            policy = api_key_policy_spec(route_name, self._create_keys(name, args))
        self.security_policy = self._custom(name, "auth", ENVOY_GATEWAY_API_VERSION, "SecurityPolicy", policy, args, custom)
        self.rate_limit = None
        if endpoint.rate_limit is not None:
            limit = rate_limit_spec(route_name, endpoint.rate_limit.requests, endpoint.rate_limit.unit)
            self.rate_limit = self._custom(name, "rate-limit", ENVOY_GATEWAY_API_VERSION, "BackendTrafficPolicy", limit, args, custom)
        self.url = f"https://{host}"
        self.register_outputs({"url": self.url, "api_keys": self.api_keys})

    def _custom(
        self, name: str, suffix: str, api_version: str, kind: str, spec: dict, args: ModelEndpointArgs, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{suffix}",
            api_version=api_version,
            kind=kind,
            metadata={
                "name": args.model.name,
                "namespace": args.namespace,
                "labels": {**workloads.labels(args.model.name, "endpoint"), MODEL_LABEL: args.model.name},
            },
            spec=spec,
            opts=opts,
        )

    def _create_keys(self, name: str, args: ModelEndpointArgs) -> str:
        """One generated key per consumer, in the Secret the SecurityPolicy names; returns its name."""
        child = pulumi.ResourceOptions(parent=self)
        for consumer in args.model.endpoint.consumers:
            key = random.RandomPassword(
                f"{name}-key-{consumer.name}",
                length=API_KEY_LENGTH,
                special=False,
                keepers={"keyVersion": str(consumer.key_version)},
                opts=child,
            )
            self.api_keys[consumer.name] = pulumi.Output.secret(key.result)
        secret_name = f"{args.model.name}-api-keys"
        k8s.core.v1.Secret(
            f"{name}-api-keys",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name,
                namespace=args.namespace,
                labels={**workloads.labels(args.model.name, "endpoint"), MODEL_LABEL: args.model.name},
            ),
            type="Opaque",
            string_data=dict(self.api_keys),
            opts=child,
        )
        return secret_name


@dataclass(frozen=True)
class KourierRouteGrantArgs:
    # The namespace whose HTTPRoutes may use Kourier's cluster-local Service as a backend.
    route_namespace: str
    crds_ready: tuple[pulumi.Resource, ...] = ()


class KourierRouteGrant(pulumi.ComponentResource):
    """`mlops:serving:KourierRouteGrant`: a ReferenceGrant in kourier-system for one model namespace's routes."""

    grant: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KourierRouteGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:KourierRouteGrant", name, None, opts)
        self.grant = k8s.apiextensions.CustomResource(
            f"{name}-grant",
            api_version=GATEWAY_API_VERSION,
            kind="ReferenceGrant",
            metadata={
                "name": f"routes-from-{args.route_namespace}",
                "namespace": KOURIER_SYSTEM,
                "labels": workloads.labels("model-endpoints", "endpoint"),
            },
            spec=kourier_grant_spec(args.route_namespace),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.crds_ready)),
        )
        self.register_outputs({"route_namespace": args.route_namespace})
