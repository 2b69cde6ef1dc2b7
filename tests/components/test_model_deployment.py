"""The ModelDeployment builders: what each declared setting becomes in the rendered objects.

Pure builders (dict in, dict out), checked without Pulumi; CustomResources are checked against
the reference CRDs, alert rules with the real `promtool`, the drift job's arguments with the
drift job's own parser.
"""

from __future__ import annotations

import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from components.interfaces import GpuPlacement
from components.model.observability import (
    dashboard,
    dashboard_uid,
    drift_cronjob_spec,
    drift_job_args,
    pod_monitor_spec,
    prometheus_rule_spec,
)
from components.model.serving import (
    MODEL_LABEL,
    VERSION_LABEL,
    inference_service_metadata,
    inference_service_spec,
    predictor_name,
)
from mlops.offline.validate import ReferenceData
from monitoring import catalog
from monitoring.drift_job.config import RetrainPolicy, load_config
from stacks.config.schema import ModelDeployment
from tests.conftest import REFERENCE_DIR

COLLECTOR = "http://payload-collector.mlops-platform.svc:8080/"
NAMESPACE = "mlops-serving"
PLACEMENT = GpuPlacement(
    node_selector={"mlops.platform/pool": "gpu-l4"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
)


def declaration(**overrides: Any) -> ModelDeployment:
    document: dict[str, Any] = {
        "name": "fraud-detector",
        "model": {"registeredModel": "fraud", "version": "7", "artifactUri": "s3://artifacts/7/model"},
        "format": "sklearn",
        "resources": {"cpu": "1", "memory": "2Gi"},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 8, "metric": "rps", "target": 50},
        "canary": {
            "trafficPercent": 10,
            "previousArtifactUri": "s3://artifacts/6/model",
            "previousVersion": "6",
            "gates": {"maxErrorRate": 0.01, "maxP99LatencyMs": 250, "minRequestCount": 500, "window": "15m"},
        },
        "monitoring": {"referenceDataUri": "s3://artifacts/reference.parquet", "driftSchedule": "0 * * * *", "driftWindowHours": 24},
        "retraining": {"webhook": "https://ci.example.com/retrain", "policy": "on_dataset_drift"},
        "slo": {"availability": 0.999, "p99LatencyMs": 250},
    }
    document.update(overrides)
    return ModelDeployment.model_validate(document)


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData(REFERENCE_DIR)


def crd_errors(reference: ReferenceData, api_version: str, kind: str, manifest: dict[str, Any]) -> list[str]:
    schema = reference.crd_schema(api_version, kind)
    assert schema is not None
    return [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(manifest)]


def isvc(model: ModelDeployment, mode: str = "Serverless", placement: GpuPlacement | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": inference_service_metadata(model, mode, NAMESPACE),  # type: ignore[arg-type]
        "spec": inference_service_spec(model, mode, "model-server", COLLECTOR, placement),  # type: ignore[arg-type]
    }


def test_serverless_canary_serves_the_new_artifact_to_the_declared_share(reference):
    """Serverless: the new storageUri with canaryTrafficPercent = trafficPercent; revisions labelled by version."""
    manifest = isvc(declaration())
    predictor = manifest["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["storageUri"] == "s3://artifacts/7/model"
    assert predictor["labels"] == {MODEL_LABEL: "fraud-detector", VERSION_LABEL: "7"}
    assert predictor["annotations"] == predictor["labels"]
    assert "canary" not in manifest["spec"]
    annotations = manifest["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Serverless"
    assert annotations["serving.kserve.io/enable-tag-routing"] == "true"
    assert annotations["pulumi.com/waitFor"] == "condition=Ready"
    assert crd_errors(reference, "serving.kserve.io/v1beta1", "InferenceService", manifest) == []


@pytest.mark.parametrize(("canary", "percent"), [(None, 100), ({"trafficPercent": 0}, 0), ({"trafficPercent": 50}, 50)])
def test_serverless_split_follows_the_declaration(canary, percent):
    """No canary renders the promoted split (100); a rolled-back canary renders 0; any percent renders as declared."""
    predictor = isvc(declaration(canary=canary))["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == percent


def test_raw_deployment_renders_the_spec_canary_form(reference):
    """RawDeployment: stable predictor named and served from the previous version, canary entry for the new one."""
    manifest = isvc(declaration(autoscaling={"minReplicas": 2, "maxReplicas": 8, "metric": "cpu", "target": 70}), "RawDeployment")
    spec = manifest["spec"]
    stable, (canary,) = spec["predictor"], spec["canary"]
    assert "canaryTrafficPercent" not in stable and "canaryTrafficPercent" not in canary["predictor"]
    assert (stable["name"], stable["model"]["storageUri"], stable["labels"][VERSION_LABEL]) == ("v6", "s3://artifacts/6/model", "6")
    assert (stable["minReplicas"], stable["maxReplicas"], stable["scaleMetric"], stable["scaleTarget"]) == (2, 8, "cpu", 70)
    assert canary["trafficPercent"] == 10
    new = canary["predictor"]
    assert (new["name"], new["model"]["storageUri"], new["labels"][VERSION_LABEL]) == ("v7", "s3://artifacts/7/model", "7")
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & set(new)
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert "serving.kserve.io/enable-tag-routing" not in manifest["metadata"]["annotations"]
    assert crd_errors(reference, "serving.kserve.io/v1beta1", "InferenceService", manifest) == []


def test_raw_deployment_canary_without_the_stable_side_is_refused():
    """A RawDeployment canary that does not know what stable serves cannot be rendered."""
    with pytest.raises(ValueError, match="previousArtifactUri and canary.previousVersion"):
        isvc(declaration(canary={"trafficPercent": 10}), "RawDeployment")


def test_predictor_names_are_dns_labels():
    """Versions and aliases become valid predictor names."""
    assert predictor_name("7") == "v7"
    assert predictor_name("Champion_2") == "vchampion-2"


def test_gpu_model_requests_gpus_and_lands_on_its_pool(reference):
    """GPUs per replica become nvidia.com/gpu requests and limits; the pool's placement is copied."""
    model = declaration(resources={"cpu": "4", "memory": "16Gi", "gpus": 1, "gpuPool": "gpu-l4"})
    manifest = isvc(model, placement=PLACEMENT)
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["model"]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"mlops.platform/pool": "gpu-l4"}
    assert predictor["tolerations"] == PLACEMENT.tolerations
    assert crd_errors(reference, "serving.kserve.io/v1beta1", "InferenceService", manifest) == []


def test_cpu_model_has_no_gpu_placement():
    """A CPU model neither requests GPUs nor tolerates the GPU taint."""
    predictor = isvc(declaration())["spec"]["predictor"]
    assert "nvidia.com/gpu" not in predictor["model"]["resources"]["limits"]
    assert "tolerations" not in predictor and "nodeSelector" not in predictor


def test_logger_sends_every_payload_to_the_collector_with_the_version():
    """logger: mode all, the collector's URL, and the version annotations forwarded with each event."""
    logger = isvc(declaration())["spec"]["predictor"]["logger"]
    assert logger == {"mode": "all", "url": COLLECTOR, "metadataAnnotations": [MODEL_LABEL, VERSION_LABEL]}


def test_autoscaling_and_account_follow_the_declaration():
    """min/max replicas, metric and target, and the model-server account, as declared."""
    predictor = isvc(declaration(autoscaling={"minReplicas": 0, "maxReplicas": 3, "metric": "concurrency", "target": 4}))["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"], predictor["scaleTarget"]) == (0, 3, "concurrency", 4)
    assert predictor["serviceAccountName"] == "model-server"


def test_alias_without_resolved_version_labels_with_the_alias():
    """An alias resolved to a version labels the revision with that version; unresolved, with the alias."""
    resolved = declaration(model={"registeredModel": "m", "alias": "champion", "resolvedVersion": "12", "artifactUri": "s3://a/12"})
    unresolved = declaration(model={"registeredModel": "m", "alias": "champion", "artifactUri": "s3://a/x"})
    assert isvc(resolved)["spec"]["predictor"]["labels"][VERSION_LABEL] == "12"
    assert isvc(unresolved)["spec"]["predictor"]["labels"][VERSION_LABEL] == "champion"


def test_retraining_strategy_is_declared_on_the_inference_service():
    """The retraining policy and its trigger are annotations the policy pack reads."""
    annotations = isvc(declaration(retraining={"schedule": "0 3 * * 0", "policy": "scheduled"}))["metadata"]["annotations"]
    assert annotations["mlops.platform/retraining-policy"] == "scheduled"
    assert annotations["mlops.platform/retraining-schedule"] == "0 3 * * 0"
    assert "mlops.platform/retraining-webhook" not in annotations


@pytest.mark.parametrize(("mode", "revision_label"), [("Serverless", "serving.knative.dev/revision"), ("RawDeployment", "app")])
def test_pod_monitor_labels_series_with_the_contract(reference, mode, revision_label):
    """Every scraped series carries namespace, model, model_version and revision; the selector is the model's pods."""
    spec = pod_monitor_spec(declaration(), mode, NAMESPACE)  # type: ignore[arg-type]
    for endpoint in spec["podMetricsEndpoints"]:
        targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"] if r["targetLabel"] != "__address__"}
        assert tuple(targets) == catalog.SERVING_LABELS
        assert targets == {
            "namespace": ["__meta_kubernetes_namespace"],
            "model": ["__meta_kubernetes_pod_label_mlops_platform_model"],
            "model_version": ["__meta_kubernetes_pod_label_mlops_platform_model_version"],
            "revision": ["__meta_kubernetes_pod_label_" + revision_label.replace(".", "_").replace("/", "_")],
        }
    assert spec["selector"] == {"matchLabels": {MODEL_LABEL: "fraud-detector"}}
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "m"}, "spec": spec}
    assert crd_errors(reference, "monitoring.coreos.com/v1", "PodMonitor", manifest) == []


def kept_series(endpoint: dict[str, Any]) -> set[str]:
    (keep,) = endpoint["metricRelabelings"]
    assert keep["action"] == "keep" and keep["sourceLabels"] == ["__name__"]
    return set(keep["regex"].split("|"))


@pytest.mark.parametrize(
    ("model_format", "metrics_port", "families"),
    [
        ("mlflow", 8082, ("model_infer_request_success_total", "model_infer_request_failure_total", "model_infer_request_duration")),
        ("sklearn", 8080, ("request_predict_seconds",)),
    ],
)
def test_pod_monitor_scrapes_the_queue_proxy_and_the_model_server(model_format, metrics_port, families):
    """Serverless: the queue-proxy's request histogram on its named port 9091, and the model server's
    own metrics on the server's metrics port (MLServer 8082, KServe 8080), reached through the pod IP;
    each endpoint keeps only the catalog's series. RawDeployment has no queue-proxy."""
    queue_proxy, server = pod_monitor_spec(declaration(format=model_format), "Serverless", NAMESPACE)["podMetricsEndpoints"]
    assert (queue_proxy["port"], queue_proxy["path"]) == ("http-usermetric", "/metrics")
    assert kept_series(queue_proxy) == {f"kn_serving_invocation_duration_seconds_{part}" for part in ("bucket", "sum", "count")}
    (address,) = [r for r in server["relabelings"] if r["targetLabel"] == "__address__"]
    assert address["sourceLabels"] == ["__meta_kubernetes_pod_ip"] and address["replacement"] == f"$1:{metrics_port}"
    assert {name.rsplit("_", 1)[0] if name.endswith(("_bucket", "_sum", "_count")) else name for name in kept_series(server)} == set(families)
    (raw_server,) = pod_monitor_spec(declaration(format=model_format), "RawDeployment", NAMESPACE)["podMetricsEndpoints"]
    assert raw_server["portNumber"] == 8080 and kept_series(raw_server) == kept_series(server)


def rule_by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (group,) = spec["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_rules_come_from_the_declared_slo_and_gates():
    """Burn-rate thresholds from availability, latency from the SLO, canary gates from the canary."""
    rules = rule_by_name(prometheus_rule_spec(declaration(), NAMESPACE))
    assert "> 0.0144" in rules["MlopsModelSloBurnRateFast"]["expr"]  # 14.4 x (1 - 0.999)
    assert "> 0.006" in rules["MlopsModelSloBurnRateSlow"]["expr"]  # 6 x (1 - 0.999)
    assert rules["MlopsModelLatencySlo"]["expr"].endswith("> 0.25")  # 250 ms, the histogram is in seconds
    assert 'model_version="7"' in rules["MlopsModelCanaryErrorGate"]["expr"] and "> 0.01" in rules["MlopsModelCanaryErrorGate"]["expr"]
    assert "[15m]" in rules["MlopsModelCanaryLatencyGate"]["expr"]
    assert "MlopsModelCanaryNoTraffic" in rules
    assert rules["MlopsModelDriftAboveThreshold"]["expr"] == 'max(mlops_drift_dataset_drift_share{model="fraud-detector"}) >= 0.5'
    assert rules["MlopsModelDriftAboveThreshold"]["labels"]["retraining_policy"] == "on_dataset_drift"


def test_no_canary_rules_without_a_canary():
    """Canary gate alerts exist only while a canary is declared."""
    assert not [name for name in rule_by_name(prometheus_rule_spec(declaration(canary=None), NAMESPACE)) if "Canary" in name]


def test_rules_are_valid_prometheus_rules(tmp_path, reference):
    """promtool accepts the rendered groups, and the PrometheusRule matches its CRD."""
    spec = prometheus_rule_spec(declaration(), NAMESPACE)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    completed = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "m"}, "spec": spec}
    assert crd_errors(reference, "monitoring.coreos.com/v1", "PrometheusRule", manifest) == []


def test_dashboard_panels_query_this_model():
    """Every panel queries this model's series; the uid fits Grafana's 40 characters."""
    board = dashboard(declaration(), NAMESPACE)
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert len(board["panels"]) == 10 and all("fraud-detector" in expr for expr in exprs)
    assert board["uid"] == "mlops-model-fraud-detector"
    assert len(dashboard_uid("m" * 63)) == 40 and dashboard_uid("m" * 63) != dashboard_uid("m" * 62)


def test_drift_job_arguments_are_accepted_by_the_drift_job():
    """The CronJob's arguments parse with monitoring.drift_job's own parser into the declared settings."""
    model = declaration(monitoring={"referenceDataUri": "s3://a/ref.parquet", "driftWindowHours": 6, "featureDriftThreshold": 0.2, "driftShareThreshold": 0.3})
    config = load_config(drift_job_args(model, "s3://payloads", "s3://reports", "http://pushgateway:9091"), {})  # type: ignore[arg-type]
    assert (config.model, config.model_version, config.reference, config.payload_root) == ("fraud-detector", "7", "s3://a/ref.parquet", "s3://payloads")
    assert config.reports_root == "s3://reports"
    assert (config.window_hours, config.drift_share_threshold, config.feature_threshold) == (6, 0.3, 0.2)
    assert (config.retrain_policy, config.retrain_webhook) == (RetrainPolicy.ON_DATASET_DRIFT, "https://ci.example.com/retrain")


def test_declared_labels_turn_on_performance_drift_in_the_drift_job():
    """monitoring.labelsUri and task reach the drift job, which then computes performance drift."""
    model = declaration(
        monitoring={"referenceDataUri": "s3://a/ref.parquet", "labelsUri": "s3://a/labels.parquet", "task": "classification"}
    )
    config = load_config(drift_job_args(model, "s3://payloads", "s3://reports", "http://pushgateway:9091"), {})  # type: ignore[arg-type]
    assert (config.labels, str(config.task)) == ("s3://a/labels.parquet", "classification")
    without = load_config(drift_job_args(declaration(), "s3://payloads", "s3://reports", "http://pushgateway:9091"), {})  # type: ignore[arg-type]
    assert without.labels is None


def test_labels_without_a_task_are_refused():
    with pytest.raises(ValueError, match="labelsUri needs task"):
        declaration(monitoring={"referenceDataUri": "s3://a/ref.parquet", "labelsUri": "s3://a/labels.parquet"})


def test_scheduled_retraining_makes_the_drift_job_report_only():
    """Scheduled retraining is not triggered by drift: the job runs with policy never and no webhook."""
    model = declaration(retraining={"schedule": "0 3 * * 0", "policy": "scheduled"})
    config = load_config(drift_job_args(model, "s3://payloads", "s3://reports", "http://pushgateway:9091"), {})  # type: ignore[arg-type]
    assert (config.retrain_policy, config.retrain_webhook) == (RetrainPolicy.NEVER, None)


def test_drift_cronjob_is_restricted_and_never_overlaps():
    """Forbid concurrency, the drift-job account, restricted security, requests and limits, the runtime image."""
    spec = drift_cronjob_spec(declaration(), image="runtime@sha256:" + "0" * 64, account="drift-job", payload_root="s3://p", report_root="s3://r", pushgateway_url="http://pg:9091", env=[])
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedule"] == "0 * * * *"
    assert pod["serviceAccountName"] == "drift-job" and pod["securityContext"]["runAsNonRoot"] is True
    assert container["command"] == ["python", "-m", "monitoring.drift_job"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False and container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert spec["jobTemplate"]["metadata"]["labels"][MODEL_LABEL] == "fraud-detector"

