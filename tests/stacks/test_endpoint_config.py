"""Config rules for external endpoints: each refuses one thing with the key path and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import ConfigError, load_stack_config
from tests.exposure import ISSUER, JWKS_URI
from tests.stacks.test_models_config import model

GATEWAY = {
    "enabled": True,
    "domain": "ml.example.com",
    # A local cluster has no cloud DNS for ACME: the certificate is provided.
    "tls": {"issuer": "provided", "provided": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "key"}},
    "jwt": {"issuer": ISSUER, "audiences": ["ml-api"], "jwksUri": JWKS_URI},
}
JWT_ENDPOINT = {"public": True, "auth": "jwt", "consumers": [{"name": "checkout-service"}]}


def load(endpoint: dict[str, Any], gateway: dict[str, Any] | None = None, **extra: str):
    return load_stack_config(
        {
            "mlops:cloud": "local",
            "mlops:gateway": json.dumps(GATEWAY if gateway is None else gateway),
            "mlops:models": json.dumps([model(endpoint=endpoint)]),
            **extra,
        }
    )


def problems(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(*args, **kwargs)
    return [(p.path, p.message) for p in caught.value.problems]


def test_a_public_jwt_model_on_the_gateway_is_valid():
    assert load(JWT_ENDPOINT).models[0].endpoint.public


def test_a_public_model_needs_the_gateway():
    [(path, message)] = problems(JWT_ENDPOINT, {"enabled": False})
    assert path == "mlops:models[0].endpoint.public" and "mlops:gateway.enabled" in message


def test_jwt_needs_the_gateways_token_issuer():
    gateway = {key: value for key, value in GATEWAY.items() if key != "jwt"}
    assert problems(JWT_ENDPOINT, gateway) == [
        ("mlops:models[0].endpoint.auth", "needs the token issuer in mlops:gateway.jwt (issuer, audiences, jwksUri), or use apiKey")
    ]


@pytest.mark.parametrize("host", ["fraud.models.ml.example.com", "fraud.example.org"])
def test_a_host_outside_the_wildcard_certificate_is_refused(host):
    [(path, message)] = problems({**JWT_ENDPOINT, "host": host})
    assert path == "mlops:models[0].endpoint.host" and "use <name>.ml.example.com" in message


def test_a_ui_host_under_the_domain_must_not_collide_with_a_model():
    [(path, message)] = problems(JWT_ENDPOINT, **{"mlops:mlflow": json.dumps({"hostname": "fraud.ml.example.com"})})
    assert path == "mlops:mlflow.hostname" and "also the host of mlops:models[0].endpoint.host" in message


def test_a_ui_host_needs_the_gateway():
    [(path, message)] = problems({}, {"enabled": False}, **{"mlops:monitoring": json.dumps({"grafanaHostname": "grafana.example.com"})})
    assert path == "mlops:monitoring.grafanaHostname" and "remove the host" in message


def test_an_api_key_consumer_must_be_a_secret_key():
    endpoint = {"public": True, "auth": "apiKey", "consumers": [{"name": "svc:checkout"}]}
    [(path, message)] = problems(endpoint)
    assert path == "mlops:models[0].endpoint.consumers[0].name" and "Secret key" in message


def test_too_many_audiences_for_envoy_gateway_are_refused():
    gateway = {**GATEWAY, "jwt": {**GATEWAY["jwt"], "audiences": [f"api-{n}" for n in range(9)]}}
    [(path, message)] = problems(JWT_ENDPOINT, gateway)
    assert path == "mlops:gateway.jwt.audiences" and "at most 8" in message


def test_login_groups_need_the_same_issuers_keys():
    """Groups are read from the ID token, verified with the keys of mlops:gateway.jwt: same issuer required."""
    login = {"issuer": "https://other-idp.example.com/", "clientId": "ui", "clientSecret": "[secret]", "allowedGroups": ["ml"]}
    [(path, message)] = problems(JWT_ENDPOINT, {**GATEWAY, "oidc": login})
    assert path == "mlops:gateway.oidc.allowedGroups" and "issuer 'https://other-idp.example.com/'" in message
    assert load(JWT_ENDPOINT, {**GATEWAY, "oidc": {**login, "issuer": ISSUER}}).gateway.oidc.allowed_groups == ["ml"]
