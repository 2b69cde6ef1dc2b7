"""Routes on the platform's gateway and the Envoy Gateway policies that guard them: pure builders.

Shapes follow Gateway API v1.6.1 (the version Envoy Gateway v1.9.0 bundles: go.mod and
charts/gateway-helm/charts/crds/crds/gatewayapi-crds.yaml at envoyproxy/gateway v1.9.0) and Envoy
Gateway's api/v1alpha1 at v1.9.0 (securitypolicy_types.go, jwt_types.go, authorization_types.go,
api_key_auth_types.go, oidc_types.go, ratelimit_types.go, backendtrafficpolicy_types.go).

Every route attaches to the one Gateway (`GATEWAY_NAME` in `GATEWAY_NAMESPACE`) on its HTTPS
listener; a policy targets the route by name and lives in the route's namespace (Envoy Gateway
resolves a policy's targetRefs in the policy's own namespace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.interfaces import GATEWAY_NAME, GATEWAY_NAMESPACE

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_API_GROUP}/v1"
ENVOY_GATEWAY_API_VERSION = "gateway.envoyproxy.io/v1alpha1"
# The Gateway's TLS listener (the plain-HTTP one only redirects); routes attach to it by this name.
HTTPS_LISTENER = "https"
# Envoy's OAuth2 filter answers the provider's redirect here and clears its cookies at the logout path
# (oidc_types.go defaults `/oauth2/callback` and `/logout`, spelled out so the provider's registration
# can be read off the object).
OIDC_CALLBACK_PATH = "/oauth2/callback"
OIDC_LOGOUT_PATH = "/logout"
# The ID-token cookie gets a fixed name so the JWT filter can read the groups claim from it (the
# default name has a random suffix); the OAuth2 filter runs before the JWT filter
# (internal/xds/translator/httpfilters.go, v1.9.0), so the cookie is set by the time it is read.
ID_TOKEN_COOKIE = "mlops-id-token"
LOGIN_PROVIDER = "login"
GROUPS_CLAIM = "groups"
# Secret key Envoy Gateway reads an OIDC client secret from (oidc_types.go OIDCClientSecretKey).
OIDC_CLIENT_SECRET_KEY = "client-secret"


def gateway_parent() -> dict[str, str]:
    return {"group": GATEWAY_API_GROUP, "kind": "Gateway", "namespace": GATEWAY_NAMESPACE, "name": GATEWAY_NAME, "sectionName": HTTPS_LISTENER}


def service_backend(name: str, port: int, namespace: str | None = None, weight: int | None = None) -> dict[str, Any]:
    """A backendRef to a Service; `namespace` only when it is not the route's (needs a ReferenceGrant there)."""
    backend: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": port}
    if namespace is not None:
        backend["namespace"] = namespace
    if weight is not None:
        backend["weight"] = weight
    return backend


def host_rewrite(hostname: str) -> dict[str, Any]:
    """A URLRewrite filter replacing the Host header the backend sees."""
    return {"type": "URLRewrite", "urlRewrite": {"hostname": hostname}}


def http_route_spec(host: str, backends: Sequence[dict[str, Any]], filters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Everything under `host` on the gateway's HTTPS listener goes to `backends`."""
    rule: dict[str, Any] = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": list(backends)}
    if filters:
        rule["filters"] = list(filters)
    return {"parentRefs": [gateway_parent()], "hostnames": [host], "rules": [rule]}


def route_target(route: str) -> dict[str, Any]:
    """The policy-side reference to an HTTPRoute of the policy's namespace."""
    return {"targetRefs": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "name": route}]}


def jwt_provider(
    name: str, issuer: str, audiences: Sequence[str], jwks_uri: str, cookie: str | None = None
) -> dict[str, Any]:
    provider: dict[str, Any] = {"name": name, "issuer": issuer, "audiences": list(audiences), "remoteJWKS": {"uri": jwks_uri}}
    if cookie is not None:
        provider["extractFrom"] = {"cookies": [cookie]}
    return provider


def allow_only_claim(provider: str, claim: str, values: Sequence[str], value_type: str = "String") -> dict[str, Any]:
    """Authorization: requests whose verified token's `claim` is one of `values` pass; all others are denied."""
    return {
        "defaultAction": "Deny",
        "rules": [
            {
                "name": f"allow-{claim.replace('_', '-').replace('.', '-').lower()}",
                "action": "Allow",
                "principal": {"jwt": {"provider": provider, "claims": [{"name": claim, "valueType": value_type, "values": list(values)}]}},
            }
        ],
    }


def oidc_login_spec(
    route: str,
    host: str,
    issuer: str,
    client_id: str,
    client_secret_name: str,
    allowed_groups: Sequence[str] = (),
    jwks_uri: str | None = None,
) -> dict[str, Any]:
    """SecurityPolicy spec: a browser login at the provider in front of `route`; with `allowed_groups`,
    only users whose ID token lists one of them in `groups` get through (the token is verified with the
    provider's keys at `jwks_uri`)."""
    spec: dict[str, Any] = {
        **route_target(route),
        "oidc": {
            "provider": {"issuer": issuer},
            "clientID": client_id,
            "clientSecret": {"name": client_secret_name},
            "redirectURL": f"https://{host}{OIDC_CALLBACK_PATH}",
            "logoutPath": OIDC_LOGOUT_PATH,
        },
    }
    if allowed_groups:
        if jwks_uri is None:
            raise ValueError("allowed groups are checked on the ID token, which needs the provider's JWKS URI")
        spec["oidc"]["cookieNames"] = {"idToken": ID_TOKEN_COOKIE}
        # An ID token's audience is the client it was issued to.
        spec["jwt"] = {"providers": [jwt_provider(LOGIN_PROVIDER, issuer, [client_id], jwks_uri, cookie=ID_TOKEN_COOKIE)]}
        spec["authorization"] = allow_only_claim(LOGIN_PROVIDER, GROUPS_CLAIM, allowed_groups, value_type="StringArray")
    return spec
