"""MLflow's and Grafana's web UIs on the platform gateway, behind the identity provider's login.

Per UI, in the server's namespace: an HTTPRoute for its host (mlops:mlflow.hostname,
mlops:monitoring.grafanaHostname) on the gateway's HTTPS listener, the OAuth client secret as the
Secret Envoy Gateway reads it from (key `client-secret`), and a SecurityPolicy running the OIDC
authorization-code flow (`components.gateway_routes.oidc_login_spec`): a browser without a session
is sent to the provider, and with `allowedGroups` only members of those groups get through.

The servers keep their own logins behind it: MLflow's basic-auth app still checks every request
(its users and the per-team permissions), Grafana its users; API clients such as the MLflow client
use the in-cluster address (docs/endpoints.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.declarations import OidcLogin
from components.gateway_routes import (
    ENVOY_GATEWAY_API_VERSION,
    GATEWAY_API_VERSION,
    OIDC_CLIENT_SECRET_KEY,
    http_route_spec,
    oidc_login_spec,
    service_backend,
)

# Marks the route of a platform UI (value: which one); the policy pack requires a login on it in prod.
UI_LABEL = "mlops.platform/ui"


@dataclass(frozen=True)
class UiRouteArgs:
    # Which UI ("mlflow", "grafana"): names the route, its policy and its Secret.
    ui: str
    host: str
    namespace: str
    service: str
    port: int
    # The identity provider's login; None leaves the server's own login alone in front (refused in prod
    # by the policy pack's ui-behind-login).
    login: OidcLogin | None = None
    # The provider's signing keys, to verify the ID token's groups (needed with login.allowed_groups).
    jwks_uri: str | None = None
    # The Gateway API and Envoy Gateway CRDs: the route and policy fail with "no matches for kind" before them.
    crds_ready: tuple[pulumi.Resource, ...] = ()


class UiRoute(pulumi.ComponentResource):
    """`mlops:platform:UiRoute`: one platform UI at `https://<host>` for users the provider signs in."""

    route: k8s.apiextensions.CustomResource
    security_policy: k8s.apiextensions.CustomResource | None
    url: str

    def __init__(self, name: str, args: UiRouteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:UiRoute", name, None, opts)
        labels = {**workloads.labels(args.ui, "ui-route"), UI_LABEL: args.ui}
        metadata = {"name": args.ui, "namespace": args.namespace, "labels": labels}
        custom = pulumi.ResourceOptions(parent=self, depends_on=list(args.crds_ready))
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version=GATEWAY_API_VERSION,
            kind="HTTPRoute",
            metadata=metadata,
            spec=http_route_spec(args.host, [service_backend(args.service, args.port)]),
            opts=custom,
        )
        self.security_policy = self._create_login(name, args, args.login, metadata) if args.login is not None else None
        self.url = f"https://{args.host}"
        self.register_outputs({"url": self.url})

    def _create_login(self, name: str, args: UiRouteArgs, login: OidcLogin, metadata: dict) -> k8s.apiextensions.CustomResource:
        client_secret = k8s.core.v1.Secret(
            f"{name}-oidc-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.ui}-oidc-client", namespace=args.namespace, labels=metadata["labels"]),
            type="Opaque",
            string_data={OIDC_CLIENT_SECRET_KEY: pulumi.Output.secret(login.client_secret)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-login",
            api_version=ENVOY_GATEWAY_API_VERSION,
            kind="SecurityPolicy",
            metadata=metadata,
            spec=oidc_login_spec(
                args.ui, args.host, login.issuer, login.client_id, f"{args.ui}-oidc-client", login.allowed_groups, args.jwks_uri
            ),
            # Envoy Gateway resolves the client secret when it translates the policy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.crds_ready, client_secret]),
        )
