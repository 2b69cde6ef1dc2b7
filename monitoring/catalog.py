"""The metric names of the platform's monitoring contract, as constants (pure stdlib).

Alert rules, dashboards and the drift job use these names; the runtime tests prove that the drift
job pushes and the payload collector exports exactly them. The Knative queue-proxy names cannot be
produced on this machine (no cluster): they are listed here as the contract states them.
"""

from __future__ import annotations

# Drift job: pushed to the Pushgateway under this job name, grouped by model and version.
DRIFT_PUSH_JOB = "mlops-drift"
DRIFT_FEATURE_SCORE = "mlops_drift_feature_score"
DRIFT_FEATURE_DRIFTED = "mlops_drift_feature_drifted"
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

# Knative queue-proxy of every InferenceService revision, relabelled by the platform's PodMonitors
# to carry namespace, model, model_version and revision. Latencies are in milliseconds.
SERVING_LABELS = ("namespace", "model", "model_version", "revision")
SERVING_SERIES = frozenset(
    {
        "revision_request_count",
        "revision_request_latencies_bucket",
        "revision_request_latencies_sum",
        "revision_request_latencies_count",
    }
)
