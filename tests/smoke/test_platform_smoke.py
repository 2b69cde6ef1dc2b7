"""After `pulumi up`: MLflow answers and registers a model, KServe (and, in Serverless mode, Knative
with Kourier) is ready, Prometheus scrapes the platform's targets, Grafana has the dashboards."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import PROJECT_DIR

DASHBOARDS = sorted((PROJECT_DIR / "monitoring" / "dashboards").glob("*.json"))
# Prometheus job names: the Service behind each ServiceMonitor.
EXPECTED_JOBS = {"mlflow", "payload-collector", "prometheus-pushgateway", "kserve-controller-manager-metrics-service"}


def test_kserve_controller_is_rolled_out(host):
    result = host.run("kubectl -n kserve rollout status deployment/kserve-controller-manager --timeout=120s")
    assert result.rc == 0, result.stderr


KNATIVE_DEPLOYMENTS = {
    "knative-serving": ("activator", "autoscaler", "controller", "webhook", "net-kourier-controller"),
    "kourier-system": ("3scale-kourier-gateway",),
}


def test_knative_and_kourier_are_rolled_out_in_serverless_mode(host):
    deploy = host.run("kubectl -n kserve get configmap inferenceservice-config -o jsonpath={.data.deploy}")
    assert deploy.rc == 0, deploy.stderr
    if json.loads(deploy.stdout).get("defaultDeploymentMode") not in ("Serverless", "Knative"):
        pytest.skip("KServe runs in RawDeployment mode, which needs no Knative")
    for namespace, deployments in KNATIVE_DEPLOYMENTS.items():
        for deployment in deployments:
            result = host.run("kubectl -n %s rollout status deployment/%s --timeout=120s", namespace, deployment)
            assert result.rc == 0, result.stderr
    gateway = host.run("kubectl -n kourier-system get service kourier -o jsonpath={.spec.type}")
    assert gateway.stdout == "ClusterIP", "the Kourier gateway must not have a cloud load balancer"


def test_serving_runtimes_are_installed(host):
    result = host.run("kubectl get clusterservingruntimes -o jsonpath={.items[*].metadata.name}")
    assert result.rc == 0, result.stderr
    assert {"mlops-mlserver", "mlops-sklearnserver", "mlops-xgbserver"} <= set(result.stdout.split())


def test_mlflow_answers_and_registers_a_model(host, forward, secret_value):
    host.run("kubectl -n mlops-platform rollout status deployment/mlflow --timeout=180s")
    auth = ("admin", secret_value("mlops-platform", "mlflow-admin", "password"))
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    with forward("mlops-platform", "svc/mlflow", 5000) as url:
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        api = f"{url}/api/2.0/mlflow"
        created = httpx.post(f"{api}/registered-models/create", json={"name": name}, auth=auth, timeout=30)
        assert created.status_code == 200, created.text
        version = httpx.post(
            f"{api}/model-versions/create", json={"name": name, "source": f"mlflow-artifacts:/smoke/{name}"}, auth=auth, timeout=30
        )
        assert version.status_code == 200, version.text
        httpx.request("DELETE", f"{api}/registered-models/delete", json={"name": name}, auth=auth, timeout=30)


def test_prometheus_scrapes_the_platform_targets(forward):
    with forward("mlops-monitoring", "svc/kube-prometheus-stack-prometheus", 9090) as url:
        targets = httpx.get(f"{url}/api/v1/targets?state=active", timeout=30).json()["data"]["activeTargets"]
    healthy = {t["labels"].get("job") for t in targets if t["health"] == "up"}
    assert EXPECTED_JOBS <= healthy, sorted(EXPECTED_JOBS - healthy)


def test_grafana_has_the_dashboards(forward, secret_value):
    auth = ("admin", secret_value("mlops-monitoring", "grafana-admin", "admin-password"))
    expected = {json.loads(path.read_text())["title"] for path in DASHBOARDS}
    with forward("mlops-monitoring", "svc/kube-prometheus-stack-grafana", 80) as url:
        found = httpx.get(f"{url}/api/search?type=dash-db", auth=auth, timeout=30).json()
    assert expected <= {d["title"] for d in found}
