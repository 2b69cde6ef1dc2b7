"""The gateway guardrails on what the platform renders: a public model route needs jwt or apiKeyAuth,
and in prod a UI route needs an OIDC login. Each rule passes the rendered objects and fails them with
one thing removed or changed."""

from __future__ import annotations

import pytest

from mlops.offline.render import Rendering, render
from tests.conftest import PROJECT_DIR
from tests.exposure import EXPOSED, LOGIN
from tests.policies.conftest import verdicts

ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"


@pytest.fixture(scope="module")
def exposed() -> Rendering:
    return render(PROJECT_DIR, "prod", EXPOSED)


def gateway_objects(rendering: Rendering) -> list:
    return [r for r in rendering.resources if r.type in (ROUTE, SECURITY_POLICY)]


def without(resources: list, type_token: str, name: str) -> list:
    kept = [r for r in resources if not (r.type == type_token and r.inputs["metadata"]["name"] == name)]
    assert len(kept) == len(resources) - 1, f"{type_token} {name} not rendered"
    return kept


def test_rendered_gateway_passes_both_rules(exposed):
    """JWT model, API-key model, MLflow and Grafana behind OIDC: nothing to report."""
    resources = gateway_objects(exposed)
    assert sorted(r.inputs["metadata"]["name"] for r in resources if r.type == ROUTE) == ["fraud-detector", "grafana", "https-redirect", "image-embedder", "mlflow"]
    assert verdicts("public-model-requires-auth", resources) == []
    assert verdicts("ui-behind-login", resources) == []


@pytest.mark.parametrize("model", ["fraud-detector", "image-embedder"])
def test_public_model_route_without_its_security_policy_is_refused(exposed, model):
    """Dropping the model's SecurityPolicy leaves its route unauthenticated: mandatory, in dev too."""
    resources = without(gateway_objects(exposed), SECURITY_POLICY, model)
    for environment in ("dev", "prod"):
        [finding] = verdicts("public-model-requires-auth", resources, environment)
        assert f"HTTPRoute mlops-serving/{model} serves a model and no SecurityPolicy targets it" in finding.message
        assert finding.level == "mandatory"


def test_model_route_guarded_only_by_a_login_is_refused(exposed):
    """A SecurityPolicy without jwt/apiKeyAuth (here: an OIDC login) does not authenticate API callers."""
    resources = gateway_objects(exposed)
    for resource in resources:
        if resource.type == SECURITY_POLICY and resource.inputs["metadata"]["name"] == "fraud-detector":
            spec = resource.inputs["spec"]
            spec["oidc"] = {"provider": {"issuer": LOGIN["issuer"]}, "clientID": "x", "clientSecret": {"name": "x"}}
            del spec["jwt"], spec["authorization"]
    [finding] = verdicts("public-model-requires-auth", resources)
    assert "1 SecurityPolicy without jwt or apiKeyAuth targets it" in finding.message


def test_unlabelled_route_to_kourier_is_still_a_model_route(exposed):
    """The rule recognises a model route by its backend, not only by the label the platform sets."""
    resources = without(gateway_objects(exposed), SECURITY_POLICY, "fraud-detector")
    for resource in resources:
        if resource.type == ROUTE and resource.inputs["metadata"]["name"] == "fraud-detector":
            resource.inputs["metadata"]["labels"] = {}
    assert len(verdicts("public-model-requires-auth", resources)) == 1


@pytest.mark.parametrize("ui", ["grafana", "mlflow"])
def test_ui_route_without_login_is_refused_in_prod_and_reported_in_dev(exposed, ui):
    resources = without(gateway_objects(exposed), SECURITY_POLICY, ui)
    [prod] = verdicts("ui-behind-login", resources, "prod")
    [dev] = verdicts("ui-behind-login", resources, "dev")
    assert "is on the gateway without an OIDC login" in prod.message and prod.level == "mandatory"
    assert dev.level == "advisory"
