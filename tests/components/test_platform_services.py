"""KServe, monitoring, MLflow and the collector, resource by resource, and their pure builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.platform.kserve import chart_deployment_mode, parse_s3_endpoint, serving_runtimes
from components.platform.mlflow_server import in_cluster_hosts, server_args
from components.platform.monitoring import MonitoringFileError, load_dashboards, load_rule_files
from mlops.offline.render import SECRET, RenderedResource, Rendering, render
from tests.conftest import PROJECT_DIR
from tests.exposure import EXPOSED, LOCAL_TLS

DASHBOARDS = sorted((PROJECT_DIR / "monitoring" / "dashboards").glob("*.json"))
RULE_FILES = sorted((PROJECT_DIR / "monitoring" / "rules").glob("*.yaml"))


def named(rendering: Rendering, type_token: str, name: str) -> RenderedResource:
    matches = [r for r in rendering.by_type(type_token) if r.name == name]
    assert len(matches) == 1, sorted(r.name for r in rendering.by_type(type_token))
    return matches[0]


def chart(rendering: Rendering, name: str) -> RenderedResource:
    (match,) = [r for r in rendering.by_type("kubernetes:helm.sh/v4:Chart") if str(r.inputs["chart"]).endswith("/" + name) or r.inputs["chart"] == name]
    return match


# --- KServe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "expected"), [("Serverless", "Knative"), ("RawDeployment", "Standard")])
def test_config_deployment_modes_map_to_the_chart_names(mode, expected):
    """The chart (0.16+) names the modes Knative/Standard; the config's names map onto them."""
    assert chart_deployment_mode(mode) == expected


def test_an_unknown_deployment_mode_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'Kubeflow' is not one of \['RawDeployment', 'Serverless'\]"):
        chart_deployment_mode("Kubeflow")


def test_controller_chart_gets_the_configured_mode_and_the_in_cluster_s3_endpoint(dev):
    """Serverless becomes `Knative`; the storage initializer reaches the in-cluster S3 server over plain HTTP."""
    kserve = chart(dev, "kserve-resources").inputs["values"]["kserve"]
    assert kserve["controller"]["deploymentMode"] == "Knative"
    assert kserve["storage"]["s3"]["endpoint"] == "object-store.mlops-platform.svc:9000"
    assert kserve["storage"]["s3"]["useHttps"] == "0"


def test_raw_deployment_mode_reaches_the_chart():
    rendering = render(PROJECT_DIR, "dev", {"mlops:kserve.deploymentMode": "RawDeployment", "mlops:models": "[]"})
    assert chart(rendering, "kserve-resources").inputs["values"]["kserve"]["controller"]["deploymentMode"] == "Standard"


@pytest.mark.parametrize(
    ("url", "host", "https"),
    [("http://object-store.mlops-platform.svc:9000", "object-store.mlops-platform.svc:9000", False), ("https://s3.example.com", "s3.example.com", True)],
)
def test_s3_endpoints_are_split_into_host_and_scheme(url, host, https):
    endpoint = parse_s3_endpoint(url)
    assert (endpoint.host, endpoint.use_https) == (host, https)


def test_an_endpoint_without_scheme_is_refused():
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        parse_s3_endpoint("object-store:9000")


def test_runtimes_cover_every_model_format_and_protocol_the_config_allows():
    """mlflow on MLServer (V2), sklearn and xgboost on KServe's servers (V1 and V2), one runtime per format."""
    runtimes = serving_runtimes("mlserver:1", "sklearn:1", "xgb:1")
    assert set(runtimes) == {"mlflow", "sklearn", "xgboost"}
    assert runtimes["mlflow"].protocols == ("v2",)
    assert {name for name, _ in runtimes["mlflow"].formats} == {"mlflow"}
    assert runtimes["sklearn"].protocols == runtimes["xgboost"].protocols == ("v1", "v2")
    env = dict(runtimes["mlflow"].env)
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == "mlserver_mlflow.MLflowRuntime"


def test_cluster_serving_runtimes_are_rendered_with_configured_images(dev):
    rendered = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in dev.by_type("kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime")}
    assert set(rendered) == {"mlops-mlserver", "mlops-sklearnserver", "mlops-xgbserver"}
    assert rendered["mlops-mlserver"]["containers"][0]["image"] == "docker.io/seldonio/mlserver:1.7.1"
    for spec in rendered.values():
        container = spec["containers"][0]
        assert container["securityContext"]["runAsNonRoot"] is True and container["resources"]["limits"]


def test_model_server_account_carries_store_credentials_locally_and_identity_on_aws(dev, prod):
    """Local: the S3 credentials Secret is attached; AWS: the storage initializer's IRSA role, no static keys."""
    local = named(dev, "kubernetes:core/v1:ServiceAccount", "kserve-model-server").inputs
    assert local["metadata"]["namespace"] == "mlops-serving" and local["metadata"]["name"] == "model-server"
    assert local["secrets"] == [{"name": "object-store-credentials"}]
    aws = named(prod, "kubernetes:core/v1:ServiceAccount", "kserve-model-server").inputs
    annotations = aws["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith("role/irsa-storage-initializer")
    assert "secrets" not in aws


# --- Monitoring -----------------------------------------------------------------------------


def test_one_dashboard_configmap_per_json_file_labelled_for_the_sidecar(dev):
    configmaps = {
        r.inputs["metadata"]["name"]: r.inputs for r in dev.by_type("kubernetes:core/v1:ConfigMap") if r.name.startswith("monitoring-dashboard-")
    }
    assert DASHBOARDS and sorted(configmaps) == sorted(f"grafana-dashboard-{p.stem}" for p in DASHBOARDS)
    for path in DASHBOARDS:
        configmap = configmaps[f"grafana-dashboard-{path.stem}"]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(configmap["data"][f"{path.stem}.json"]) == json.loads(path.read_text())


def test_one_prometheus_rule_per_rules_file_with_its_groups(dev):
    import yaml

    rules = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in dev.by_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        if "mlops:platform:Monitoring" in r.parent
    }
    assert RULE_FILES and sorted(rules) == sorted(f"mlops-{p.stem}" for p in RULE_FILES)
    for path in RULE_FILES:
        assert rules[f"mlops-{path.stem}"]["groups"] == yaml.safe_load(path.read_text())["groups"]


@pytest.mark.parametrize(("rendering", "retention", "size", "replicas"), [("dev", "3d", "10Gi", 1), ("prod", "30d", "200Gi", 2)])
def test_prometheus_retention_and_storage_follow_the_environment(request, rendering, retention, size, replicas):
    spec = chart(request.getfixturevalue(rendering), "kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == retention and spec["replicas"] == replicas
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == size
    # Monitors and rules of every component are selected, not only the release's own.
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is spec["podMonitorSelectorNilUsesHelmValues"] is spec["ruleSelectorNilUsesHelmValues"] is False


def test_grafana_admin_password_is_generated_and_secret(dev):
    secret = named(dev, "kubernetes:core/v1:Secret", "monitoring-grafana-admin").inputs
    assert secret["stringData"]["admin-password"] == SECRET
    assert chart(dev, "kube-prometheus-stack").inputs["values"]["grafana"]["admin"]["existingSecret"] == secret["metadata"]["name"]


def test_pushgateway_is_scraped_with_honored_labels(dev):
    values = chart(dev, "prometheus-pushgateway").inputs["values"]
    assert values["serviceMonitor"] == {"enabled": True, "namespace": "mlops-monitoring", "honorLabels": True}


def test_kserve_controller_and_mlflow_are_scraped(dev):
    monitors = {r.inputs["metadata"]["name"]: r.inputs for r in dev.by_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}
    assert monitors["kserve-controller"]["spec"]["namespaceSelector"] == {"matchNames": ["kserve"]}
    assert monitors["kserve-controller"]["spec"]["endpoints"][0]["port"] == "https"
    mlflow = monitors["mlflow"]["spec"]["endpoints"][0]
    assert mlflow["path"] == "/metrics" and mlflow["basicAuth"]["password"] == {"name": "mlflow-admin", "key": "password"}
    assert monitors["payload-collector"]["spec"]["endpoints"][0]["path"] == "/metrics"


def test_a_broken_dashboard_is_refused_with_its_file_name(tmp_path: Path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(MonitoringFileError, match="dashboard broken.json is not valid JSON"):
        load_dashboards(tmp_path)


def test_a_rules_file_without_groups_is_refused(tmp_path: Path):
    (tmp_path / "empty.yaml").write_text("rules: []\n")
    with pytest.raises(MonitoringFileError, match="rules file empty.yaml must hold a non-empty 'groups' list"):
        load_rule_files(tmp_path)


# --- MLflow ---------------------------------------------------------------------------------


def test_mlflow_runs_migrations_then_the_authenticated_server(dev):
    """Init container `mlflow db upgrade`, then `mlflow server --app-name basic-auth` with proxied artifacts."""
    pod = named(dev, "kubernetes:apps/v1:Deployment", "mlflow-server").inputs["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"] == ["db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"]
    (server,) = pod["containers"]
    args = server["args"]
    assert args == server_args(
        backend_store_uri="$(MLFLOW_BACKEND_STORE_URI)",
        artifacts_destination="s3://mlflow-artifacts",
        allowed_hosts=in_cluster_hosts("mlflow", "mlops-platform"),
        metrics_dir="/var/run/mlflow-metrics",
    )
    env = {e["name"]: e for e in server["env"]}
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == "/etc/mlflow/auth/basic_auth.ini"
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-auth", "key": "flask-secret-key"}
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= server.keys()


def test_mlflow_credentials_and_store_uri_are_secrets(dev):
    for name, key in (("mlflow-backend-store", "MLFLOW_BACKEND_STORE_URI"), ("mlflow-auth", "basic_auth.ini"), ("mlflow-admin", "password")):
        assert named(dev, "kubernetes:core/v1:Secret", name).inputs["stringData"][key] == SECRET


def test_mlflow_on_the_gateway_only_with_a_hostname(dev):
    """No class-less Ingress any more: with a host, MLflow gets a route on the platform gateway behind the
    OIDC login, and the server accepts requests for that host."""
    assert not dev.by_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert not dev.by_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
    exposed = {key: value for key, value in EXPOSED.items() if key.startswith("mlops:gateway") or key == "mlops:mlflow.hostname"}
    exposed |= {**LOCAL_TLS, "mlops:gateway.loadBalancer": "internal"}
    rendering = render(PROJECT_DIR, "dev", exposed)
    assert not rendering.by_type("kubernetes:networking.k8s.io/v1:Ingress")
    (route,) = [r for r in rendering.by_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute") if r.inputs["metadata"]["namespace"] == "mlops-platform"]
    assert route.inputs["spec"]["hostnames"] == ["mlflow.ml.example.com"]
    assert route.inputs["spec"]["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "mlflow", "port": 5000}]
    (login,) = rendering.by_type("kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy")
    assert login.inputs["spec"]["oidc"]["redirectURL"] == "https://mlflow.ml.example.com/oauth2/callback"
    assert login.inputs["spec"]["oidc"]["clientSecret"] == {"name": "mlflow-oidc-client"}
    assert named(rendering, "kubernetes:core/v1:Secret", "mlflow-ui-oidc-client").inputs["stringData"] == {"client-secret": SECRET}
    # allowedGroups: the ID token (fixed cookie name) is verified and its groups claim must match.
    assert login.inputs["spec"]["jwt"]["providers"][0]["extractFrom"] == {"cookies": ["mlops-id-token"]}
    claims = login.inputs["spec"]["authorization"]["rules"][0]["principal"]["jwt"]["claims"]
    assert claims == [{"name": "groups", "valueType": "StringArray", "values": ["ml-platform"]}]
    args = named(rendering, "kubernetes:apps/v1:Deployment", "mlflow-server").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "mlflow.ml.example.com" in args[args.index("--allowed-hosts") + 1].split(",")


# --- Payload collector ----------------------------------------------------------------------


def test_collector_runs_the_runtime_image_with_its_settings_and_spool_volume(dev):
    pod = named(dev, "kubernetes:apps/v1:Deployment", "payload-collector-server").inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/mlops-platform/mlops-runtime:0.1.0"
    assert container["command"] == ["python", "-m", "serving.collector"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["COLLECTOR_STORE_URI"] == "s3://inference-payloads/payloads"
    assert env["COLLECTOR_S3_ENDPOINT_URL"] == "http://object-store.mlops-platform.svc:9000"
    assert json.loads(env["COLLECTOR_MODELS"]) == [{"inferenceService": "churn-classifier", "model": "churn-classifier", "version": "1"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready" and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "spool", "persistentVolumeClaim": {"claimName": "payload-collector-spool"}} in pod["volumes"]
    assert env["COLLECTOR_SPOOL_DIR"] in [m["mountPath"] for m in container["volumeMounts"]]


def test_collector_stores_the_declared_share_of_each_models_payloads(prod):
    """mlops:models[].monitoring.payloadSampleRate reaches the collector as that model's sampleRate."""
    pod = named(prod, "kubernetes:apps/v1:Deployment", "payload-collector-server").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    rates = {m["inferenceService"]: m.get("sampleRate", 1.0) for m in json.loads(env["COLLECTOR_MODELS"])}
    assert rates == {"fraud-detector": 0.2, "image-embedder": 0.05}


def test_collector_settings_are_accepted_by_the_collector_itself(dev):
    """The env the component renders is a valid collector config (the collector's own parser)."""
    from serving.collector.config import load_config

    container = named(dev, "kubernetes:apps/v1:Deployment", "payload-collector-server").inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    config = load_config(None, env)
    assert config.port == 8080 and config.models[0].inference_service == "churn-classifier"


def test_the_local_object_store_runs_seaweedfs_s3_on_the_store_port(dev):
    """SeaweedFS `weed mini` (docs/object-store.md): S3 on 9000 behind the Service, nothing else listening,
    credentials only as the two AWS variables `weed mini` turns into its admin identity."""
    (server,) = [r for r in dev.by_type("kubernetes:apps/v1:Deployment") if r.name == "object-store-server"]
    (container,) = server.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("docker.io/chrislusf/seaweedfs:") and "@sha256:" in container["image"]
    assert container["command"] == ["/usr/bin/weed"]
    assert container["args"] == ["mini", "-dir=/data", "-s3.port=9000", "-s3.port.iceberg=0", "-webdav=false", "-admin.ui=false"]
    assert container["ports"] == [{"name": "s3", "containerPort": 9000}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    secrets = [r for r in dev.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "object-store-credentials"]
    assert secrets and all(set(s.inputs["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} for s in secrets)
