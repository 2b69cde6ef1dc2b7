"""Public model endpoints as the program renders them (committed prod stack, exposed through the
gateway by tests/exposure.py): the route reaches the model's server in each serving mode, the
SecurityPolicy admits exactly the declared consumers, API keys rotate with keyVersion, and the keys
leave the stack only as a secret output."""

from __future__ import annotations

import json

import pulumi
import pytest

from mlops.offline.diff import diff_renderings
from mlops.offline.lint import lint_rendering
from mlops.offline.mocks import PlaceholderMocks
from mlops.offline.render import SECRET, RenderedResource, Rendering, manifest_of, render
from mlops.offline.validate import ReferenceData, validate_rendering
from stacks.config import load_stack_config
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.exposure import API_KEY_MODEL, EXPOSED, ISSUER, JWKS_URI, JWT_MODEL, RAW

PASSWORD = "random:index/randomPassword:RandomPassword"
GATEWAY_PARENT = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "envoy-gateway-system", "name": "mlops", "sectionName": "https"}


@pytest.fixture(scope="module")
def serverless() -> Rendering:
    return render(PROJECT_DIR, "prod", EXPOSED)


@pytest.fixture(scope="module")
def raw() -> Rendering:
    return render(PROJECT_DIR, "prod", {**EXPOSED, **RAW})


def objects(rendering: Rendering, kind: str) -> dict[str, dict]:
    found = {}
    for resource in rendering.resources:
        if resource.is_manifest and (manifest := manifest_of(resource))["kind"] == kind:
            found[f"{manifest['metadata'].get('namespace')}/{manifest['metadata']['name']}"] = manifest
    return found


def passwords(rendering: Rendering) -> dict[str, RenderedResource]:
    return {r.name: r for r in rendering.by_type(PASSWORD) if "ModelEndpoint" in r.parent}


def test_serverless_route_goes_through_kourier_to_the_predictor_host(serverless):
    """Knative only answers the predictor's cluster-local host, so the route rewrites Host on its way to
    Kourier's internal listener; the cross-namespace backend is granted once for the serving namespace."""
    route = objects(serverless, "HTTPRoute")[f"mlops-serving/{JWT_MODEL}"]
    assert route["metadata"]["labels"]["mlops.platform/model"] == JWT_MODEL
    assert route["spec"]["parentRefs"] == [GATEWAY_PARENT]
    assert route["spec"]["hostnames"] == [f"{JWT_MODEL}.ml.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "kourier-internal", "namespace": "kourier-system", "port": 80}]
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {"hostname": f"{JWT_MODEL}-predictor.mlops-serving.svc.cluster.local"}}]
    grants = objects(serverless, "ReferenceGrant")
    assert list(grants) == ["kourier-system/routes-from-mlops-serving"]
    assert grants["kourier-system/routes-from-mlops-serving"]["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "mlops-serving"}],
        "to": [{"group": "", "kind": "Service", "name": "kourier-internal"}],
    }


def test_raw_route_splits_between_stable_and_canary_predictors(raw, serverless):
    """RawDeployment: KServe's predictor Services by version; during a canary the route carries the split."""
    percent = next(m for m in load_stack_config(raw.config).models if m.name == JWT_MODEL).canary.traffic_percent
    assert 0 < percent < 100
    (rule,) = objects(raw, "HTTPRoute")[f"mlops-serving/{JWT_MODEL}"]["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": f"{JWT_MODEL}-v6-predictor", "port": 80, "weight": 100 - percent},
        {"group": "", "kind": "Service", "name": f"{JWT_MODEL}-v7-predictor", "port": 80, "weight": percent},
    ]
    assert "filters" not in rule
    (promoted,) = objects(raw, "HTTPRoute")[f"mlops-serving/{API_KEY_MODEL}"]["spec"]["rules"]
    assert promoted["backendRefs"] == [{"group": "", "kind": "Service", "name": f"{API_KEY_MODEL}-vchampion-predictor", "port": 80}]
    assert objects(raw, "ReferenceGrant") == {}


def test_jwt_policy_verifies_the_issuer_and_admits_only_the_consumers(serverless):
    policy = objects(serverless, "SecurityPolicy")[f"mlops-serving/{JWT_MODEL}"]["spec"]
    assert policy["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": JWT_MODEL}]
    assert policy["jwt"] == {"providers": [{"name": "mlops", "issuer": ISSUER, "audiences": ["ml-api"], "remoteJWKS": {"uri": JWKS_URI}}]}
    assert policy["authorization"] == {
        "defaultAction": "Deny",
        "rules": [{"name": "allow-sub", "action": "Allow",
                   "principal": {"jwt": {"provider": "mlops", "claims": [{"name": "sub", "valueType": "String", "values": ["checkout-service"]}]}}}],
    }
    assert "apiKeyAuth" not in policy
    limit = objects(serverless, "BackendTrafficPolicy")[f"mlops-serving/{JWT_MODEL}"]["spec"]
    assert limit["rateLimit"] == {"local": {"rules": [{"limit": {"requests": 50, "unit": "Second"}}]}}
    assert f"mlops-serving/{API_KEY_MODEL}" not in objects(serverless, "BackendTrafficPolicy")


def test_api_key_policy_reads_one_generated_key_per_consumer(serverless):
    policy = objects(serverless, "SecurityPolicy")[f"mlops-serving/{API_KEY_MODEL}"]["spec"]
    assert policy["apiKeyAuth"] == {
        "credentialRefs": [{"group": "", "kind": "Secret", "name": f"{API_KEY_MODEL}-api-keys"}],
        "extractFrom": [{"headers": ["x-api-key"]}],
        "forwardClientIDHeader": "x-mlops-consumer",
        "sanitize": True,
    }
    secret = objects(serverless, "Secret")[f"mlops-serving/{API_KEY_MODEL}-api-keys"]
    assert secret["stringData"] == {"partner-a": SECRET, "partner-b": SECRET}
    keys = passwords(serverless)
    assert sorted(keys) == [f"model-{API_KEY_MODEL}-endpoint-key-partner-a", f"model-{API_KEY_MODEL}-endpoint-key-partner-b"]
    for consumer, version in (("partner-a", "1"), ("partner-b", "2")):
        inputs = keys[f"model-{API_KEY_MODEL}-endpoint-key-{consumer}"].inputs
        assert (inputs["length"], inputs["special"], inputs["keepers"]) == (40, False, {"keyVersion": version})


def test_bumping_key_version_replaces_that_consumers_key_only(serverless):
    """keyVersion is the password's keeper: a new value replaces that consumer's RandomPassword, and the
    replacement has a new result (the mock, like the provider, derives it anew); the other consumer's key
    stays. (The Secret Envoy reads then gets the new key; offline its content is hidden as a secret.)"""
    endpoint = json.loads(EXPOSED["mlops:models[1].endpoint"])
    endpoint["consumers"][0]["keyVersion"] = 2
    rotated = render(PROJECT_DIR, "prod", {**EXPOSED, "mlops:models[1].endpoint": json.dumps(endpoint)})
    changes = {(c.op, c.name) for c in diff_renderings(serverless.document(), rotated.document()).changes}
    assert changes == {("replace", f"model-{API_KEY_MODEL}-endpoint-key-partner-a")}
    mocks = PlaceholderMocks()
    before, after = (
        mocks.new_resource(pulumi.runtime.MockResourceArgs(PASSWORD, name, passwords(r)[name].inputs))[1]["result"]
        for r, name in ((serverless, f"model-{API_KEY_MODEL}-endpoint-key-partner-a"), (rotated, f"model-{API_KEY_MODEL}-endpoint-key-partner-a"))
    )
    assert before != after


def test_keys_leave_the_stack_only_as_a_secret_output(serverless):
    assert serverless.outputs["modelApiKeys"] == SECRET
    assert serverless.outputs["modelEndpoints"] == {
        JWT_MODEL: f"https://{JWT_MODEL}.ml.example.com",
        API_KEY_MODEL: f"https://{API_KEY_MODEL}.ml.example.com",
    }


def test_private_models_get_nothing_on_the_gateway():
    """Prod with its one public model (fraud-detector) made private: no route, policy, key or output."""
    gateway_only = {key: value for key, value in EXPOSED.items() if not key.startswith("mlops:models")}
    private = render(PROJECT_DIR, "prod", {**gateway_only, "mlops:models[0].endpoint": json.dumps({"public": False})})
    assert not [m.name for m in load_stack_config(private.config).models if m.endpoint.public]
    assert not [r for r in private.resources if "ModelEndpoint" in r.type or "KourierRouteGrant" in r.type]
    assert "modelEndpoints" not in private.outputs and "modelApiKeys" not in private.outputs


def test_gateway_objects_validate_against_the_upstream_crds(serverless, raw):
    """Every route, grant and policy passes the reference CRDs (Gateway API v1.6.1, Envoy Gateway v1.9.0),
    schema and CEL rules, like every other custom resource."""
    reference = ReferenceData(REFERENCE_DIR)
    kinds = [("gateway.networking.k8s.io/v1", "HTTPRoute"), ("gateway.networking.k8s.io/v1", "ReferenceGrant"),
             ("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy"), ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy")]
    assert all(reference.crd_schema(api_version, kind) is not None for api_version, kind in kinds)
    for rendering in (serverless, raw):
        assert validate_rendering(rendering, reference, "1.33") == []


def test_a_plain_text_oidc_client_secret_is_refused():
    """The UI login's client secret must be a Pulumi secret in the stack file, like every credential."""
    login = json.loads(EXPOSED["mlops:gateway.oidc"])
    plain = render(PROJECT_DIR, "prod", {**EXPOSED, "mlops:gateway.oidc": json.dumps({**login, "clientSecret": "hunter2"})})
    [finding] = [f for f in validate_rendering(plain, ReferenceData(REFERENCE_DIR), "1.33") if f.check == "plain-credential"]
    assert finding.path == "mlops:gateway.oidc.clientSecret"


def test_a_team_models_endpoint_lives_in_the_team_namespace():
    """With teams, the route, its policies and its grant follow the model into team-<name>, and the
    gateway still reaches the model there (the lint's flows, RawDeployment straight to the server)."""
    teams = [{"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "40", "memory": "100Gi", "gpus": 0}}]
    team = {"mlops:teams": json.dumps(teams), "mlops:models[0].team": "fraud"}
    serverless = render(PROJECT_DIR, "prod", {**EXPOSED, **team})
    route = objects(serverless, "HTTPRoute")[f"team-fraud/{JWT_MODEL}"]
    assert route["spec"]["rules"][0]["filters"][0]["urlRewrite"]["hostname"] == f"{JWT_MODEL}-predictor.team-fraud.svc.cluster.local"
    assert f"team-fraud/{JWT_MODEL}" in objects(serverless, "SecurityPolicy")
    assert sorted(objects(serverless, "ReferenceGrant")) == ["kourier-system/routes-from-mlops-serving", "kourier-system/routes-from-team-fraud"]
    raw = render(PROJECT_DIR, "prod", {**EXPOSED, **RAW, **team})
    assert lint_rendering(raw) == []
