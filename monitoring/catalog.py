"""The metric names of the platform's monitoring contract, per source and version (pure stdlib).

Every PromQL expression the platform ships or renders (monitoring/rules, monitoring/dashboards, the
per-model rules and dashboards, the canary gates) names only series listed here; a test parses them
and fails on any other name. The runtime tests prove the names: the drift job and the collector
push and export exactly theirs, and real MLServer and KServe servers, scraped by a real Prometheus,
emit the model-server families below.

Where each serving signal comes from:
- Requests, 5xx answers and latency of a model (SLO alerts, canary gates, `mlops canary analyze`):
  the Knative queue-proxy in front of every revision, because it sees every request the same way
  whatever the model server (including time queued before the server, and answers the server never
  produced, such as timeouts), and it labels each request with its HTTP status code. The KServe
  Python server has no status code on its metrics, so it cannot give an error ratio.
- What the model server itself spends (dashboard row "Model server"): MLServer's and the KServe
  Python server's own metrics, scraped from their own ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Drift job: pushed to the Pushgateway under this job name, grouped by model and version.
DRIFT_PUSH_JOB = "mlops-drift"
DRIFT_FEATURE_SCORE = "mlops_drift_feature_score"
DRIFT_FEATURE_DRIFTED = "mlops_drift_feature_drifted"
DRIFT_FEATURE_SKIPPED = "mlops_drift_feature_skipped"
DRIFT_DATASET_SHARE = "mlops_drift_dataset_drift_share"
DRIFT_DATASET_DRIFTED = "mlops_drift_dataset_drifted"
DRIFT_PREDICTION_SCORE = "mlops_drift_prediction_score"
DRIFT_PREDICTION_DRIFTED = "mlops_drift_prediction_drifted"
DRIFT_PERFORMANCE = "mlops_drift_performance"
DRIFT_PERFORMANCE_REFERENCE = "mlops_drift_performance_reference"
DRIFT_JOB_STATUS = "mlops_drift_job_status"
DRIFT_JOB_LAST_SUCCESS = "mlops_drift_job_last_success_timestamp_seconds"
DRIFT_JOB_LAST_RUN = "mlops_drift_job_last_run_timestamp_seconds"
DRIFT_JOB_STATUSES = ("ok", "missing_data", "schema_mismatch", "empty_window", "error")
# Pushed by drift runs whose retraining policy triggered, under their own job name so that the next
# drift run (which replaces its group) keeps the last trigger's outcome.
RETRAIN_PUSH_JOB = "mlops-drift-retrain"
RETRAIN_TRIGGER = "mlops_drift_retrain_trigger"
RETRAIN_TRIGGER_LAST = "mlops_drift_retrain_trigger_timestamp_seconds"
RETRAIN_TRIGGER_OUTCOMES = ("accepted", "created", "duplicate", "failed")
PERFORMANCE_METRICS = {"classification": ("accuracy", "f1"), "regression": ("mae", "rmse")}

DRIFT_JOB_SERIES = frozenset(
    {
        DRIFT_FEATURE_SCORE,
        DRIFT_FEATURE_DRIFTED,
        DRIFT_FEATURE_SKIPPED,
        DRIFT_DATASET_SHARE,
        DRIFT_DATASET_DRIFTED,
        DRIFT_PREDICTION_SCORE,
        DRIFT_PREDICTION_DRIFTED,
        DRIFT_PERFORMANCE,
        DRIFT_PERFORMANCE_REFERENCE,
        DRIFT_JOB_STATUS,
        DRIFT_JOB_LAST_SUCCESS,
        DRIFT_JOB_LAST_RUN,
    }
)

# Payload collector (serving/collector), scraped from its /metrics endpoint.
COLLECTOR_SERIES = frozenset(
    {
        "mlops_collector_events_received_total",
        "mlops_collector_records_written_total",
        "mlops_collector_events_dropped_total",
        "mlops_collector_events_sampled_out_total",
        "mlops_collector_write_failures_total",
        "mlops_collector_batch_write_seconds_bucket",
        "mlops_collector_batch_write_seconds_sum",
        "mlops_collector_batch_write_seconds_count",
        "mlops_collector_buffered_records",
    }
)


@dataclass(frozen=True)
class MetricFamily:
    """One metric family as Prometheus scrapes it: the name, its kind, the labels its source sets, the
    unit of its values, and where in the source's code at the pinned version it is defined."""

    name: str
    kind: Literal["counter", "gauge", "histogram", "summary"]
    labels: tuple[str, ...]
    unit: str
    source: str
    defined_in: str

    @property
    def series(self) -> frozenset[str]:
        """The series names the family exposes (a histogram's buckets, sum and count)."""
        if self.kind == "histogram":
            return frozenset({f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"})
        if self.kind == "summary":
            return frozenset({f"{self.name}_sum", f"{self.name}_count"})
        return frozenset({self.name})


# Labels the platform's PodMonitors add to every scraped model series (from the pod's namespace and
# labels); the queries select and group by them.
SERVING_LABELS = ("namespace", "model", "model_version", "revision")

KNATIVE_SERVING_VERSION = "knative-v1.21.3"
QUEUE_PROXY_SOURCE = f"Knative queue-proxy {KNATIVE_SERVING_VERSION}"
# The queue-proxy exports its OpenTelemetry instruments with the OTel Prometheus exporter v0.61.0
# (knative.dev/pkg observability/metrics/prometheus_enabled.go, UnderscoreEscapingWithSuffixes):
# dots become underscores, the unit "s" adds "_seconds", and every series carries the scope labels.
OTEL_SCOPE_LABELS = ("otel_scope_name", "otel_scope_schema_url", "otel_scope_version")
QUEUE_PROXY_SCOPE = "knative.dev/serving/pkg/queue"
# knative/serving pkg/queue/request_metric.go @ knative-v1.21.3: `latencyBounds`.
QUEUE_PROXY_LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
QUEUE_PROXY_REQUEST_DURATION = MetricFamily(
    name="kn_serving_invocation_duration_seconds",
    kind="histogram",
    labels=("http_response_status_code", *OTEL_SCOPE_LABELS),
    unit="seconds",
    source=QUEUE_PROXY_SOURCE,
    defined_in="knative/serving pkg/queue/request_metric.go @ knative-v1.21.3 (kn.serving.invocation.duration, unit s)",
)
# The status label's values are integers ("200", "503"): 5xx is a regex, not a status class label.
SERVER_ERROR_STATUS = "5.."

MLSERVER_SOURCE = "MLServer 1.7.1"
# MLServer serves /metrics on its own port (settings.py `metrics_port`), not on the inference port.
MLSERVER_METRICS_PORT = 8082
MLSERVER_INFER_SUCCESS = MetricFamily(
    name="model_infer_request_success_total",
    kind="counter",
    labels=("model", "version"),
    unit="requests",
    source=MLSERVER_SOURCE,
    defined_in="SeldonIO/MLServer mlserver/handlers/dataplane.py @ 1.7.1 (model_infer_request_success)",
)
MLSERVER_INFER_FAILURE = MetricFamily(
    name="model_infer_request_failure_total",
    kind="counter",
    labels=("model", "version"),
    unit="requests",
    source=MLSERVER_SOURCE,
    defined_in="SeldonIO/MLServer mlserver/handlers/dataplane.py @ 1.7.1 (model_infer_request_failure)",
)
MLSERVER_INFER_DURATION = MetricFamily(
    name="model_infer_request_duration",
    kind="summary",
    labels=("model", "version"),
    unit="seconds",
    source=MLSERVER_SOURCE,
    defined_in="SeldonIO/MLServer mlserver/handlers/dataplane.py @ 1.7.1 (Summary model_infer_request_duration)",
)

KSERVE_SOURCE = "KServe Python model server 0.21.0"
# The KServe Python server serves /metrics on its HTTP port (kserve/protocol/rest/server.py).
KSERVE_METRICS_PORT = 8080
KSERVE_PREDICT_DURATION = MetricFamily(
    name="request_predict_seconds",
    kind="histogram",
    labels=("model_name",),
    unit="seconds",
    source=KSERVE_SOURCE,
    defined_in="kserve/kserve python/kserve/kserve/metrics.py @ v0.21.0 (PREDICT_HIST_TIME)",
)

MODEL_SERVER_FAMILIES = {
    "mlserver": (MLSERVER_INFER_SUCCESS, MLSERVER_INFER_FAILURE, MLSERVER_INFER_DURATION),
    "kserve": (KSERVE_PREDICT_DURATION,),
}
SERVING_FAMILIES = (QUEUE_PROXY_REQUEST_DURATION, *MODEL_SERVER_FAMILIES["mlserver"], *MODEL_SERVER_FAMILIES["kserve"])
SERVING_SERIES = frozenset().union(*(family.series for family in SERVING_FAMILIES))

# Prometheus' own series the rules use: `up` of each scrape target.
PROMETHEUS_SERIES = frozenset({"up"})

# NVIDIA dcgm-exporter on GPU nodes (chart 4.8.2). Every GPU series carries the GPU's identity
# (internal/pkg/rendermetrics/render_metrics.go @ 4.5.3-4.8.2: gpu, UUID, pci_bus_id, device,
# modelName, Hostname), the pod holding the GPU (internal/pkg/transformation/const.go: namespace, pod,
# container) and, relabelled by the platform's ServiceMonitor from that pod's labels, model and
# model_version. Units as etc/default-counters.csv @ 4.5.3-4.8.2 states them.
DCGM_EXPORTER_SOURCE = "NVIDIA dcgm-exporter 4.5.3-4.8.2"
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "namespace", "pod", "container", "model", "model_version")
DCGM_COUNTERS = "NVIDIA/dcgm-exporter etc/default-counters.csv @ 4.5.3-4.8.2"
GPU_UTILIZATION = MetricFamily("DCGM_FI_DEV_GPU_UTIL", "gauge", DCGM_LABELS, "percent", DCGM_EXPORTER_SOURCE, DCGM_COUNTERS)
GPU_MEMORY_USED = MetricFamily("DCGM_FI_DEV_FB_USED", "gauge", DCGM_LABELS, "MiB", DCGM_EXPORTER_SOURCE, DCGM_COUNTERS)
GPU_MEMORY_FREE = MetricFamily("DCGM_FI_DEV_FB_FREE", "gauge", DCGM_LABELS, "MiB", DCGM_EXPORTER_SOURCE, DCGM_COUNTERS)
GPU_POWER_USAGE = MetricFamily("DCGM_FI_DEV_POWER_USAGE", "gauge", DCGM_LABELS, "watts", DCGM_EXPORTER_SOURCE, DCGM_COUNTERS)
GPU_FAMILIES = (GPU_UTILIZATION, GPU_MEMORY_USED, GPU_MEMORY_FREE, GPU_POWER_USAGE)
GPU_SERIES = frozenset().union(*(family.series for family in GPU_FAMILIES))

# The canary guard (monitoring/canary/guard.py), scraped from its /metrics endpoint: 1 for its current
# verdict on each canary version, 0 for the others.
CANARY_VERDICT = "mlops_canary_verdict"
CANARY_VERDICT_LABELS = ("namespace", "model", "model_version", "verdict")
CANARY_GUARD_SERIES = frozenset({CANARY_VERDICT})

ALL_SERIES = DRIFT_JOB_SERIES | COLLECTOR_SERIES | SERVING_SERIES | PROMETHEUS_SERIES | GPU_SERIES | CANARY_GUARD_SERIES
