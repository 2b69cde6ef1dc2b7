"""GPU models are observable: the DCGM exporter's chart values are ones the chart has, its series
reach Prometheus labelled with the model, and the model's GPU panels and alerts read them.

The exporter is a Go binary needing a GPU, so its exposition here is written from its source at the
pinned tag (NVIDIA/dcgm-exporter 4.5.3-4.8.2): the series format of
internal/pkg/rendermetrics/render_metrics.go (`gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`,
`Hostname`, then pod labels and the pod attributes `pod`, `namespace`, `container` of
internal/pkg/transformation/const.go), pod label names sanitised as internal/pkg/utils/utils.go does,
counter names and units from etc/default-counters.csv.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest
import yaml

from components.interfaces import GpuPlacement
from components.model.observability import dashboard, prometheus_rule_spec
from components.model.serving import MODEL_LABEL, VERSION_LABEL
from components.platform.gpu_metrics import CHART, CHART_VERSION, dcgm_exporter_values, exported_label
from mlops.offline.validate import unknown_value_paths
from monitoring import catalog
from tests.components.test_model_deployment import declaration
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import PrometheusServer, exposition_target, promtool, wait_for

NAMESPACE = "mlops-serving"
REFERENCE_VALUES = PROJECT_DIR / "reference" / "chart-values"
PLACEMENTS = [
    GpuPlacement({"mlops.platform/pool": "gpu-l4"}, [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
    GpuPlacement({"mlops.platform/pool": "gpu-a100"}, [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
]


def gpu_model() -> Any:
    return declaration(name="image-embedder", resources={"cpu": "4", "memory": "16Gi", "gpus": 1, "gpuPool": "gpu-l4"})


def test_values_exist_in_the_pinned_chart():
    chart = yaml.safe_load((REFERENCE_VALUES / f"{CHART}.Chart.yaml").read_text())
    defaults = yaml.safe_load((REFERENCE_VALUES / f"{CHART}.values.yaml").read_text())
    assert chart["version"] == CHART_VERSION
    values = dcgm_exporter_values(PLACEMENTS)
    assert unknown_value_paths(values, defaults) == []
    # The chart's control-plane toleration is replaced: the DaemonSet goes to GPU pools only.
    assert values["tolerations"] == [dict(PLACEMENTS[0].tolerations[0])]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["gpu-l4"], ["gpu-a100"]]


def test_allow_list_lets_through_only_the_model_labels():
    patterns = [re.compile(p) for p in dcgm_exporter_values(PLACEMENTS)["kubernetes"]["podLabelAllowlistRegex"]]
    allowed = {MODEL_LABEL, VERSION_LABEL}
    for label in (*allowed, "app", "serving.kserve.io/inferenceservice", "mlopsXplatform/model", "pod-template-hash"):
        assert any(p.search(label) for p in patterns) == (label in allowed), label


def dcgm_exposition() -> str:
    """Two GPUs of an image-embedder pod (one busy, one idle) and one GPU no pod holds."""
    pod_labels = f'{exported_label(MODEL_LABEL)}="image-embedder",{exported_label(VERSION_LABEL)}="3"'
    held = f'container="kserve-container",namespace="{NAMESPACE}",pod="image-embedder-predictor-00001-deployment-7c9d"'
    gpus = [
        ('gpu="0",UUID="GPU-1f2e",pci_bus_id="00000000:00:1E.0",device="nvidia0"', f"{pod_labels},{held}", (95, 22000, 1000, 68.5)),
        ('gpu="1",UUID="GPU-3a4b",pci_bus_id="00000000:00:1F.0",device="nvidia1"', f"{pod_labels},{held}", (5, 3000, 20000, 17.25)),
        ('gpu="2",UUID="GPU-5c6d",pci_bus_id="00000000:00:20.0",device="nvidia2"', "", (0, 0, 23000, 12.0)),
    ]
    families = (catalog.GPU_UTILIZATION, catalog.GPU_MEMORY_USED, catalog.GPU_MEMORY_FREE, catalog.GPU_POWER_USAGE)
    lines = []
    for index, family in enumerate(families):
        lines += [f"# HELP {family.name} {family.unit}", f"# TYPE {family.name} {family.kind}"]
        for identity, labels, values in gpus:
            extra = f",{labels}" if labels else ""
            lines.append(f'{family.name}{{{identity},modelName="NVIDIA L4",Hostname="ip-10-40-1-7"{extra}}} {values[index]}')
    return "\n".join(lines) + "\n"


def operator_relabelings(relabelings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ServiceMonitor's relabelings as the Prometheus operator writes them into scrape configs."""
    snake = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return [{snake.get(key, key): value for key, value in relabeling.items()} for relabeling in relabelings]


@pytest.mark.server
def test_prometheus_sees_the_model_gpus_and_its_panels_and_alert_expressions_read_them(tmp_path):
    monitor = dcgm_exporter_values(PLACEMENTS)["serviceMonitor"]
    model = gpu_model()
    with exposition_target(dcgm_exposition) as exporter, PrometheusServer.start(
        tmp_path,
        scrape_configs=[
            {
                "job_name": "dcgm-exporter",
                "honor_labels": monitor["honorLabels"],
                "static_configs": [{"targets": [exporter], "labels": {"namespace": "kube-system"}}],
                "metric_relabel_configs": operator_relabelings(monitor["metricRelabelings"]),
            }
        ],
    ) as prometheus:
        wait_for("the DCGM series", lambda: prometheus.query(catalog.GPU_UTILIZATION.name), 30)
        time.sleep(1)  # a second scrape, so the panels' instant queries see the same series
        series = prometheus.query(f'{catalog.GPU_POWER_USAGE.name}{{model="image-embedder"}}')
        assert sorted(s["metric"]["gpu"] for s in series) == ["0", "1"]
        assert all(s["metric"]["model_version"] == "3" and s["metric"]["namespace"] == NAMESPACE for s in series)
        assert not [s for s in series if exported_label(MODEL_LABEL) in s["metric"]], "the raw pod labels are dropped"
        row = [p for p in dashboard(model, NAMESPACE)["panels"] if p["id"] >= next(x["id"] for x in dashboard(model, NAMESPACE)["panels"] if x["type"] == "row")]
        assert [p["title"] for p in row] == ["GPU", "GPU utilisation", "GPU memory used", "GPU power draw"]
        by_title = {p["title"]: {(s["metric"]["gpu"], float(s["value"][1])) for s in prometheus.query(p["targets"][0]["expr"])} for p in row[1:]}
        rules = {r["alert"]: r for g in prometheus_rule_spec(model, NAMESPACE)["groups"] for r in g["rules"]}
        idle_value = prometheus.query(rules["MlopsModelGpuIdle"]["expr"].split(" < ")[0])
        saturated = prometheus.query(rules["MlopsModelGpuSaturated"]["expr"])
    assert by_title == {
        "GPU utilisation": {("0", 95.0), ("1", 5.0)},
        "GPU memory used": {("0", 22000.0), ("1", 3000.0)},
        "GPU power draw": {("0", 68.5), ("1", 17.25)},
    }
    assert float(idle_value[0]["value"][1]) == 50.0  # the model's average, the idle GPU 2 not counted
    # Average utilisation 50 % is not saturated, but GPU 0's memory is 22000 / 23000 full.
    assert [round(float(s["value"][1]), 3) for s in saturated] == [round(22000 / 23000, 3)]


def test_gpu_alerts_fire_and_resolve_under_promtool(tmp_path):
    """The alerts' `for` durations, thresholds and labels, on DCGM series as Prometheus keeps them."""
    model = gpu_model()
    groups = [g for g in prometheus_rule_spec(model, NAMESPACE)["groups"]]
    for group in groups:
        group["rules"] = [r for r in group["rules"] if r["alert"].startswith("MlopsModelGpu")]
    rules_path = tmp_path / "gpu-rules.yaml"
    rules_path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    labels = f'namespace="{NAMESPACE}",model="image-embedder",model_version="3",pod="image-embedder-predictor-1",gpu="0"'
    rules = {r["alert"]: r for r in groups[0]["rules"]}

    def expected(alert: str, value: str) -> list[dict[str, Any]]:
        annotations = {**rules[alert]["annotations"]}
        annotations["description"] = annotations["description"].replace("{{ $value | humanize }}", value)
        return [{"exp_labels": rules[alert]["labels"], "exp_annotations": annotations}]

    test = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # Idle (3 %) for 90 minutes, then 97 % busy for 30 minutes.
                "input_series": [
                    {"series": f"{catalog.GPU_UTILIZATION.name}{{{labels}}}", "values": "3x90 97x30"},
                    {"series": f"{catalog.GPU_MEMORY_USED.name}{{{labels}}}", "values": "4000x120"},
                    {"series": f"{catalog.GPU_MEMORY_FREE.name}{{{labels}}}", "values": "19000x120"},
                ],
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": "MlopsModelGpuIdle", "exp_alerts": []},
                    {"eval_time": "80m", "alertname": "MlopsModelGpuIdle", "exp_alerts": expected("MlopsModelGpuIdle", "3")},
                    {"eval_time": "100m", "alertname": "MlopsModelGpuIdle", "exp_alerts": []},
                    {"eval_time": "100m", "alertname": "MlopsModelGpuSaturated", "exp_alerts": []},
                    {"eval_time": "115m", "alertname": "MlopsModelGpuSaturated", "exp_alerts": expected("MlopsModelGpuSaturated", "97")},
                ],
            }
        ],
    }
    test_path = tmp_path / "gpu-rules_test.yaml"
    test_path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([str(promtool()), "test", "rules", str(test_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_cpu_model_has_no_gpu_row_or_alerts():
    model = declaration()
    assert not [p for p in dashboard(model, NAMESPACE)["panels"] if p["type"] == "row"]
    assert not [r for g in prometheus_rule_spec(model, NAMESPACE)["groups"] for r in g["rules"] if "Gpu" in r["alert"]]
