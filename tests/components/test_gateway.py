"""The gateway: Envoy Gateway's chart, the GatewayClass/EnvoyProxy/Gateway it serves, the wildcard
certificate, and the network flows of its namespace.

Envoy Gateway is a Go controller configuring Envoy binaries, neither of which runs here, so what the
objects must say comes from its source at v1.9.0 (envoyproxy/gateway, cited where used in
components/platform/gateway.py): the container ports its proxies bind (translator.go
wellKnownPortShift), the labels it puts on them (proxy/resource.go EnvoyAppLabel), its xDS,
webhook and metrics ports. The flows are proved with the platform lint's NetworkPolicy evaluator
over the rendered policies, not by reading the policies back.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from components.interfaces import GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_SERVICE, GatewayExposure
from components.namespaces import GATEWAY_ROUTES_LABEL, MODEL_NAMESPACE_LABEL
from components.platform import gateway as gw
from mlops.offline.lint import API_SERVER, PROMETHEUS, Endpoint, RenderIndex, flow_allowed
from mlops.offline.render import SECRET, Rendering, RenderedResource, render
from mlops.offline.validate import ReferenceData, unknown_value_paths, validate_chart, validate_rendering
from stacks import program
from tests.conftest import PROJECT_DIR, REFERENCE_DIR

DOMAIN = "ml.example.com"
CUSTOM = "kubernetes:{}:{}".format
PROVIDED_TLS = {
    "mlops:gateway.enabled": "true",
    "mlops:gateway.domain": DOMAIN,
    "mlops:gateway.tls.issuer": "provided",
    "mlops:gateway.tls.provided.certificate": "-----BEGIN CERTIFICATE-----",
    "mlops:gateway.tls.provided.privateKey": "-----BEGIN PRIVATE KEY-----",
}
ACME_TLS = {
    "mlops:gateway.enabled": "true",
    "mlops:gateway.domain": DOMAIN,
    "mlops:gateway.loadBalancer": "internet-facing",
    "mlops:gateway.tls.issuer": "acme",
    "mlops:gateway.tls.acme.email": "platform@example.com",
    "mlops:aws.hostedZoneId": "Z0123456789ABCDEFGHIJ",
}
# What a cloud hands the gateway: the shape h/cloudlb's AWS foundation fills in.
ROUTE53_SOLVER = {"route53": {"region": "us-east-1", "hostedZoneID": "Z0123456789ABCDEFGHIJ"}}
CLOUD_EXPOSURE = GatewayExposure(
    service_type="LoadBalancer",
    service_annotations={"networking.gke.io/load-balancer-type": "Internal"},
    load_balancer_ip="10.50.0.40",
    source_cidrs=("203.0.113.0/24",),
    dns01_solver=ROUTE53_SOLVER,
    address="10.50.0.40",
)
CERT_MANAGER_IDENTITY = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/cert-manager"}
PROXY = Endpoint("Envoy proxy", GATEWAY_NAMESPACE, gw.PROXY_LABELS)
# The controller's pod labels: the chart's selector labels (templates/_helpers.tpl eg.selectorLabels).
CONTROLLER = Endpoint(
    "Envoy Gateway controller",
    GATEWAY_NAMESPACE,
    {"control-plane": "envoy-gateway", "app.kubernetes.io/name": "gateway-helm", "app.kubernetes.io/instance": "envoy-gateway"},
)
CLIENT = Endpoint("a client on the internet", address="198.51.100.7")
KOURIER = Endpoint("Kourier gateway", "kourier-system", gw.KOURIER_GATEWAY_LABELS)


def render_on_cloud(stack: str, overrides: dict[str, str], exposure: GatewayExposure) -> Rendering:
    """Render `stack` with the cloud's load balancer replaced by `exposure` (and cert-manager's identity)."""
    real = program.build_platform

    def with_exposure(config, foundation, namespaces):
        identities = {**foundation.identity_annotations, "cert-manager": CERT_MANAGER_IDENTITY}
        return real(config, dataclasses.replace(foundation, gateway_exposure=exposure, identity_annotations=identities), namespaces)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "build_platform", with_exposure)
        return render(PROJECT_DIR, stack, overrides)


@pytest.fixture(scope="module")
def local() -> Rendering:
    """dev on a local cluster, with MLflow and Grafana given hosts under the gateway's domain."""
    hosts = {"mlops:mlflow.hostname": f"mlflow.{DOMAIN}", "mlops:monitoring.grafanaHostname": f"grafana.{DOMAIN}"}
    return render(PROJECT_DIR, "dev", {**PROVIDED_TLS, **hosts})


@pytest.fixture(scope="module")
def cloud() -> Rendering:
    return render_on_cloud("prod", ACME_TLS, CLOUD_EXPOSURE)


@pytest.fixture(scope="module")
def raw_deployment() -> Rendering:
    overrides = {"mlops:kserve.deploymentMode": "RawDeployment", "mlops:models[0].autoscaling.metric": "cpu"}
    return render(PROJECT_DIR, "dev", {**PROVIDED_TLS, **overrides})


def one(rendering: Rendering, kind: str, api: str) -> RenderedResource:
    (resource,) = rendering.by_type(CUSTOM(api, kind))
    return resource


def chart(rendering: Rendering) -> RenderedResource:
    (resource,) = [r for r in rendering.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]).endswith(f"/{gw.CHART}")]
    return resource


def namespace_labels(rendering: Rendering) -> dict[str, dict[str, str]]:
    return {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in rendering.by_type("kubernetes:core/v1:Namespace")}


# --- Chart and images ---------------------------------------------------------------------------------


def test_values_exist_in_the_pinned_chart_and_the_pin_is_the_manifests():
    defaults = yaml.safe_load((REFERENCE_DIR / "chart-values" / f"{gw.CHART}.values.yaml").read_text())
    assert unknown_value_paths(gw.gateway_helm_values("registry.example/gateway:v1"), defaults) == []
    manifest = yaml.safe_load((REFERENCE_DIR / "manifest.yaml").read_text())
    (source,) = [s for s in manifest["sources"].values() if gw.CHART in s["charts"]]
    assert source["version"] == gw.CHART_VERSION


def test_chart_values_pass_validation_with_the_clouds_identity_on_cert_manager(cloud):
    """cert-manager's serviceAccount.annotations has no default, only a values.schema.json entry: it is
    a key the chart reads; a misspelt one next to it is still reported."""
    charts = [f for f in validate_rendering(cloud, ReferenceData(REFERENCE_DIR), "1.35") if f.check.startswith("chart")]
    assert charts == []
    (cert_manager,) = [r for r in cloud.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]) == "cert-manager"]
    misspelt = dataclasses.replace(cert_manager, inputs={**cert_manager.inputs, "values": {"serviceAccount": {"anotations": {}}}})
    found = validate_chart(misspelt, ReferenceData(REFERENCE_DIR))
    assert ("chart-values", "serviceAccount.anotations") in [(f.check, f.path) for f in found]


def test_gateway_images_are_platform_images_resolved_from_the_stack_registry(cloud):
    """prod pulls every platform image from its registry by digest: the gateway's two as well."""
    images = cloud.outputs["images"]
    controller, proxy = images["docker.io/envoyproxy/gateway:v1.9.0"], images["docker.io/envoyproxy/envoy:distroless-v1.39.0"]
    assert "@sha256:" in controller and "@sha256:" in proxy
    assert chart(cloud).inputs["values"]["global"]["images"]["envoyGateway"]["image"] == controller
    container = one(cloud, "EnvoyProxy", "gateway.envoyproxy.io/v1alpha1").inputs["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]
    assert container["image"] == proxy
    repositories = {r.inputs["name"].rsplit("/", 1)[-1] for r in cloud.by_type("aws:ecr/repository:Repository")}
    assert {"gateway", "envoy"} <= repositories


def test_without_the_gateway_nothing_of_it_is_rendered(dev):
    assert not [r for r in dev.resources if "gateway" in r.type or r.name.startswith("gateway")]
    assert GATEWAY_NAMESPACE not in namespace_labels(dev)
    assert "gatewayDomain" not in dev.outputs


# --- Gateway, class and proxies ----------------------------------------------------------------------


def test_gateway_serves_https_for_the_domain_and_http_only_to_redirect(local):
    gateway = one(local, "Gateway", "gateway.networking.k8s.io/v1").inputs
    assert (gateway["metadata"]["name"], gateway["metadata"]["namespace"]) == (GATEWAY_NAME, GATEWAY_NAMESPACE)
    https, http = gateway["spec"]["listeners"]
    assert (https["protocol"], https["port"], https["hostname"]) == ("HTTPS", 443, f"*.{DOMAIN}")
    assert https["tls"] == {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": gw.TLS_SECRET}]}
    assert https["allowedRoutes"]["namespaces"] == {"from": "Selector", "selector": {"matchLabels": dict([GATEWAY_ROUTES_LABEL])}}
    assert (http["protocol"], http["port"], http["allowedRoutes"]["namespaces"]) == ("HTTP", 80, {"from": "Same"})
    (redirect,) = [r for r in local.by_type(CUSTOM("gateway.networking.k8s.io/v1", "HTTPRoute")) if r.inputs["metadata"]["namespace"] == GATEWAY_NAMESPACE]
    assert redirect.inputs["spec"]["parentRefs"] == [{"name": GATEWAY_NAME, "sectionName": "http"}]
    assert redirect.inputs["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}


def test_only_the_platform_and_model_namespaces_may_attach_routes(local):
    labels = namespace_labels(local)
    key, value = GATEWAY_ROUTES_LABEL
    assert sorted(ns for ns, found in labels.items() if found.get(key) == value) == ["mlops-monitoring", "mlops-platform", "mlops-serving"]
    assert labels["mlops-serving"][MODEL_NAMESPACE_LABEL[0]] == MODEL_NAMESPACE_LABEL[1]
    assert labels[GATEWAY_NAMESPACE]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_class_hands_its_proxies_the_envoy_proxy_settings(local):
    gateway_class = one(local, "GatewayClass", "gateway.networking.k8s.io/v1").inputs["spec"]
    proxy = one(local, "EnvoyProxy", "gateway.envoyproxy.io/v1alpha1").inputs
    assert gateway_class["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    assert gateway_class["parametersRef"] == {
        "group": "gateway.envoyproxy.io",
        "kind": "EnvoyProxy",
        "name": proxy["metadata"]["name"],
        "namespace": proxy["metadata"]["namespace"],
    }
    assert one(local, "Gateway", "gateway.networking.k8s.io/v1").inputs["spec"]["gatewayClassName"] == gw.GATEWAY_CLASS


def test_local_proxies_sit_behind_a_cluster_ip_service_without_a_budget(local):
    kubernetes = one(local, "EnvoyProxy", "gateway.envoyproxy.io/v1alpha1").inputs["spec"]["provider"]["kubernetes"]
    assert kubernetes["envoyService"] == {"name": GATEWAY_SERVICE, "type": "ClusterIP"}
    assert kubernetes["envoyDeployment"]["replicas"] == 1 and "envoyPDB" not in kubernetes
    assert local.outputs["gatewayDomain"] == DOMAIN and "gatewayAddress" not in local.outputs


def test_cloud_load_balancer_settings_reach_the_envoy_service(cloud):
    kubernetes = one(cloud, "EnvoyProxy", "gateway.envoyproxy.io/v1alpha1").inputs["spec"]["provider"]["kubernetes"]
    assert kubernetes["envoyService"] == {
        "name": GATEWAY_SERVICE,
        "type": "LoadBalancer",
        "annotations": {"networking.gke.io/load-balancer-type": "Internal"},
        "externalTrafficPolicy": "Local",
        "loadBalancerIP": "10.50.0.40",
        "loadBalancerSourceRanges": ["203.0.113.0/24"],
    }
    assert cloud.outputs["gatewayAddress"] == "10.50.0.40"


def test_prod_runs_two_proxies_on_different_nodes_with_a_budget(cloud):
    kubernetes = one(cloud, "EnvoyProxy", "gateway.envoyproxy.io/v1alpha1").inputs["spec"]["provider"]["kubernetes"]
    deployment = kubernetes["envoyDeployment"]
    assert deployment["replicas"] == 2 and kubernetes["envoyPDB"] == {"minAvailable": 1}
    (term,) = deployment["pod"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= PROXY.labels.items()
    assert deployment["container"]["resources"]["requests"] and deployment["container"]["resources"]["limits"]


def test_custom_resources_wait_for_the_charts_that_install_their_crds(cloud):
    gateway_chart = chart(cloud).urn
    cert_manager = [r.urn for r in cloud.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]) == "cert-manager"]
    for kind, api in (("EnvoyProxy", "gateway.envoyproxy.io/v1alpha1"), ("GatewayClass", "gateway.networking.k8s.io/v1"), ("Gateway", "gateway.networking.k8s.io/v1")):
        assert gateway_chart in one(cloud, kind, api).options["dependsOn"], kind
    for kind in ("ClusterIssuer", "Certificate"):
        assert set(cert_manager) <= set(one(cloud, kind, "cert-manager.io/v1").options["dependsOn"]), kind


# --- TLS ------------------------------------------------------------------------------------------------


def test_acme_issues_the_domain_and_its_wildcard_with_the_clouds_dns01_solver(cloud):
    issuer = one(cloud, "ClusterIssuer", "cert-manager.io/v1").inputs
    certificate = one(cloud, "Certificate", "cert-manager.io/v1").inputs
    acme = issuer["spec"]["acme"]
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory" and acme["email"] == "platform@example.com"
    assert acme["solvers"] == [{"selector": {"dnsZones": [DOMAIN]}, "dns01": ROUTE53_SOLVER}]
    assert certificate["metadata"]["namespace"] == GATEWAY_NAMESPACE
    assert certificate["spec"]["dnsNames"] == [DOMAIN, f"*.{DOMAIN}"]
    assert certificate["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer["metadata"]["name"]}
    assert certificate["spec"]["secretName"] == gw.TLS_SECRET
    assert not [r for r in cloud.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == gw.TLS_SECRET]


def test_staging_server_when_asked():
    rendering = render_on_cloud("prod", {**ACME_TLS, "mlops:gateway.tls.acme.server": "staging"}, CLOUD_EXPOSURE)
    assert one(rendering, "ClusterIssuer", "cert-manager.io/v1").inputs["spec"]["acme"]["server"] == gw.LETSENCRYPT_SERVERS["staging"]


def test_cert_manager_answers_challenges_under_the_clouds_identity(cloud):
    (cert_manager,) = [r for r in cloud.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]) == "cert-manager"]
    assert cert_manager.inputs["values"]["serviceAccount"] == {"annotations": CERT_MANAGER_IDENTITY}


def test_a_provided_certificate_is_a_tls_secret_whose_key_stays_secret(local):
    (secret,) = [r for r in local.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == gw.TLS_SECRET]
    assert secret.inputs["type"] == "kubernetes.io/tls" and secret.inputs["metadata"]["namespace"] == GATEWAY_NAMESPACE
    # The key makes the whole map a secret (Pulumi marks an object holding a secret as secret).
    assert secret.inputs["stringData"] == {"tls.crt": SECRET, "tls.key": SECRET}
    assert not local.by_type(CUSTOM("cert-manager.io/v1", "Certificate"))


# --- Flows ----------------------------------------------------------------------------------------------


def model_pod(index: RenderIndex) -> Endpoint:
    pod = next(p for p in index.pods if "serving.kserve.io/inferenceservice" in p.labels)
    return Endpoint(pod.owner, pod.namespace, pod.labels)


@pytest.mark.parametrize(
    ("source", "destination", "port", "allowed"),
    [
        (CLIENT, PROXY, 10443, True),  # listener 443, bound 10000 higher
        (CLIENT, PROXY, 10080, True),
        (CLIENT, PROXY, 443, False),  # nothing binds it
        (CLIENT, CONTROLLER, 18000, False),
        (PROXY, CONTROLLER, gw.XDS_PORT, True),
        (API_SERVER, CONTROLLER, gw.WEBHOOK_PORT, True),
        (PROMETHEUS, PROXY, gw.METRICS_PORT, True),
        (PROXY, KOURIER, gw.KOURIER_INTERNAL_PORT, True),
        (PROXY, Endpoint("MLflow", "mlops-platform", {"app.kubernetes.io/name": "mlflow"}), 5000, True),
        (PROXY, Endpoint("Grafana", "mlops-monitoring", {"app.kubernetes.io/name": "grafana"}), 3000, True),
        (PROXY, Endpoint("the JWKS of an identity provider", address="203.0.113.80"), 443, True),
        (PROXY, Endpoint("PostgreSQL", "mlops-platform", {"app.kubernetes.io/name": "postgres"}), 5432, False),
        (Endpoint("KServe controller", "kserve", {"control-plane": "kserve-controller-manager"}), CONTROLLER, gw.XDS_PORT, False),
        (Endpoint("a model pod", "mlops-serving", {"app": "x"}), KOURIER, gw.KOURIER_INTERNAL_PORT, False),
    ],
)
def test_gateway_namespace_flows(local, source, destination, port, allowed):
    assert flow_allowed(RenderIndex(local), source, destination, port) is allowed


def test_serverless_models_are_reached_through_kourier_not_directly(local):
    index = RenderIndex(local)
    assert not flow_allowed(index, PROXY, model_pod(index), 8080)


def test_raw_deployment_predictors_accept_the_proxies_and_no_other_namespace(raw_deployment):
    index = RenderIndex(raw_deployment)
    model = model_pod(index)
    assert flow_allowed(index, PROXY, model, 8080)
    assert not flow_allowed(index, Endpoint("KServe controller", "kserve", {"control-plane": "kserve-controller-manager"}), model, 8080)
    assert not flow_allowed(index, Endpoint("an Envoy of another gateway", GATEWAY_NAMESPACE, {"app": "other"}), model, 8080)


# --- Rules ------------------------------------------------------------------------------------------------


def problems(overrides: dict[str, Any]) -> list[str]:
    from mlops.stackfiles import ProjectFiles
    from stacks.config import load_stack_config
    from stacks.config.load import ConfigError

    try:
        load_stack_config(ProjectFiles(PROJECT_DIR).stack_config("dev", overrides))
    except ConfigError as error:
        return [str(p) for p in error.problems]
    return []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({**ACME_TLS, "mlops:gateway.loadBalancer": "internal"}, "mlops:gateway.tls.issuer: a local cluster has no cloud DNS zone"),
        ({**PROVIDED_TLS, "mlops:gateway.loadBalancer": "internet-facing"}, "mlops:gateway.loadBalancer: a local cluster has no cloud load balancer"),
        ({**PROVIDED_TLS, "mlops:gateway.sourceCidrs[0]": "10.0.0.1/8"}, "mlops:gateway.sourceCidrs[0]: not a CIDR"),
        ({"mlops:mlflow.hostname": "mlflow.example.com"}, "mlops:mlflow.hostname: is served through the platform gateway, which is off"),
        ({**PROVIDED_TLS, "mlops:monitoring.grafanaHostname": "grafana.example.org"}, "mlops:monitoring.grafanaHostname: the gateway's certificate covers"),
        ({**PROVIDED_TLS, "mlops:mlflow.hostname": f"a.mlflow.{DOMAIN}"}, "mlops:mlflow.hostname: the gateway's certificate covers"),
    ],
)
def test_gateway_settings_the_target_cannot_honour_are_refused(overrides, expected):
    found = problems(overrides)
    assert any(p.startswith(expected) for p in found), found


def test_a_host_under_the_domain_on_a_local_gateway_is_accepted():
    assert problems({**PROVIDED_TLS, "mlops:mlflow.hostname": f"mlflow.{DOMAIN}"}) == []
