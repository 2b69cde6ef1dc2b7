"""Push a run's outcome to the Pushgateway (job "mlops-drift", grouping key model + version).

A successful run replaces the whole group (PUT), so features that left the model disappear. A
failed run only replaces the status and last-run families (POST), so the last good verdicts and
the last success timestamp stay: the staleness alert keeps counting from the real last success.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway

from monitoring import catalog
from monitoring.drift_job.results import DriftResult
from monitoring.drift_job.status import JobStatus

PUSH_TIMEOUT_SECONDS = 15.0
IDENTITY = ["model", "version"]


class PushFailed(Exception):
    """The Pushgateway did not take the metrics; the message names its URL."""


def _gauge(registry: CollectorRegistry, name: str, documentation: str, extra_labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, documentation, [*IDENTITY, *extra_labels], registry=registry)


def _status_families(registry: CollectorRegistry, model: str, version: str, status: JobStatus, now: datetime) -> None:
    state = _gauge(registry, catalog.DRIFT_JOB_STATUS, "1 for the status of the last drift run, 0 for the others.", ("status",))
    for candidate in catalog.DRIFT_JOB_STATUSES:
        state.labels(model, version, candidate).set(1 if candidate == status.value else 0)
    _gauge(registry, catalog.DRIFT_JOB_LAST_RUN, "Unix time the last drift run started (its window ends then).").labels(model, version).set(now.timestamp())


def results_registry(result: DriftResult, now: datetime) -> CollectorRegistry:
    """Every metric of a successful run."""
    registry = CollectorRegistry()
    model, version = result.model, result.version
    score = _gauge(registry, catalog.DRIFT_FEATURE_SCORE, "Drift score of an input feature (method label says which test).", ("feature", "method"))
    drifted = _gauge(registry, catalog.DRIFT_FEATURE_DRIFTED, "1 if the input feature drifted in the last window.", ("feature",))
    for feature in result.features:
        score.labels(model, version, feature.name, feature.method).set(feature.score)
        drifted.labels(model, version, feature.name).set(int(feature.drifted))
    if result.skipped:
        skipped = _gauge(
            registry, catalog.DRIFT_FEATURE_SKIPPED, "1 for an input feature the last run could not compare; reason says why.",
            ("feature", "reason"),
        )
        for feature in result.skipped:
            skipped.labels(model, version, feature.name, feature.code).set(1)
    _gauge(registry, catalog.DRIFT_DATASET_SHARE, "Fraction of input features that drifted.").labels(model, version).set(result.drift_share)
    _gauge(registry, catalog.DRIFT_DATASET_DRIFTED, "1 if the drift share reached the dataset threshold.").labels(model, version).set(
        int(result.dataset_drifted)
    )
    if result.prediction is not None:
        _gauge(registry, catalog.DRIFT_PREDICTION_SCORE, "Drift score of the model's predictions.", ("method",)).labels(
            model, version, result.prediction.method
        ).set(result.prediction.score)
        _gauge(registry, catalog.DRIFT_PREDICTION_DRIFTED, "1 if the predictions drifted.").labels(model, version).set(
            int(result.prediction.drifted)
        )
    if result.performance is not None:
        current = _gauge(registry, catalog.DRIFT_PERFORMANCE, "Model quality on labelled rows of the window.", ("metric",))
        reference = _gauge(registry, catalog.DRIFT_PERFORMANCE_REFERENCE, "Model quality on the labelled reference sample.", ("metric",))
        for metric, value in result.performance.current.items():
            current.labels(model, version, metric).set(value)
        for metric, value in result.performance.reference.items():
            reference.labels(model, version, metric).set(value)
    _status_families(registry, model, version, JobStatus.OK, now)
    _gauge(registry, catalog.DRIFT_JOB_LAST_SUCCESS, "Unix time the last successful drift run started.").labels(model, version).set(now.timestamp())
    return registry


def push_results(gateway: str, result: DriftResult, now: datetime) -> None:
    _send(push_to_gateway, gateway, result.model, result.version, results_registry(result, now))


def push_failure(gateway: str, model: str, version: str, status: JobStatus, now: datetime) -> None:
    registry = CollectorRegistry()
    _status_families(registry, model, version, status, now)
    _send(pushadd_to_gateway, gateway, model, version, registry)


def _send(method: Callable[..., None], gateway: str, model: str, version: str, registry: CollectorRegistry) -> None:
    try:
        method(
            gateway,
            job=catalog.DRIFT_PUSH_JOB,
            grouping_key={"model": model, "version": version},
            registry=registry,
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except (URLError, OSError) as error:
        raise PushFailed(f"pushing drift metrics to {gateway} failed: {error}") from error
