"""Stack config overrides exposing the committed prod stack through the platform gateway, shared by the
endpoint tests (components, policies, lint): a JWT model with a rate limit, an API-key model, and
MLflow and Grafana behind an OIDC login restricted to one group. The client secret is what an offline
render reads for a `secure:` value."""

from __future__ import annotations

import json

from mlops.offline.render import SECRET

ISSUER = "https://login.example.com/"
JWKS_URI = "https://login.example.com/.well-known/jwks.json"
LOGIN = {"issuer": ISSUER, "clientId": "mlops-ui", "clientSecret": SECRET, "allowedGroups": ["ml-platform"]}
JWT_MODEL = "fraud-detector"
API_KEY_MODEL = "image-embedder"
EXPOSED = {
    "mlops:gateway.enabled": "true",
    "mlops:gateway.domain": "ml.example.com",
    "mlops:gateway.loadBalancer": "internet-facing",
    "mlops:gateway.tls": json.dumps({"issuer": "acme", "acme": {"email": "platform@example.com"}}),
    "mlops:aws.hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "mlops:gcp.dnsZone": "mlops-prod",
    "mlops:gateway.jwt": json.dumps({"issuer": ISSUER, "audiences": ["ml-api"], "jwksUri": JWKS_URI}),
    "mlops:gateway.oidc": json.dumps(LOGIN),
    "mlops:mlflow.hostname": "mlflow.ml.example.com",
    "mlops:monitoring.grafanaHostname": "grafana.ml.example.com",
    "mlops:models[0].endpoint": json.dumps(
        {"public": True, "auth": "jwt", "consumers": [{"name": "checkout-service"}], "rateLimit": {"requests": 50, "unit": "Second"}}
    ),
    "mlops:models[1].endpoint": json.dumps(
        {"public": True, "auth": "apiKey", "consumers": [{"name": "partner-a"}, {"name": "partner-b", "keyVersion": 2}]}
    ),
}
# A local cluster has no cloud DNS for ACME: the certificate is provided.
LOCAL_TLS = {"mlops:gateway.tls": json.dumps({"issuer": "provided", "provided": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": SECRET}})}
# The same in RawDeployment mode, fraud-detector half-way through a canary from version 6 to 7.
RAW = {
    "mlops:kserve.deploymentMode": "RawDeployment",
    "mlops:models[0].canary.previousVersion": "6",
    "mlops:models[0].autoscaling.metric": "cpu",
    "mlops:models[1].autoscaling.metric": "cpu",
}
