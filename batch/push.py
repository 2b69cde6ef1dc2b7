"""Push a batch run's outcome to the Pushgateway (job "mlops-batch", grouping key model + version)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

PUSH_JOB = "mlops-batch"
ROWS = "mlops_batch_rows_scored"
ROWS_PER_SECOND = "mlops_batch_rows_per_second"
PARTITIONS = "mlops_batch_partitions"
STATUS = "mlops_batch_job_status"
LAST_SUCCESS = "mlops_batch_last_success_timestamp_seconds"
STATUSES = ("ok", "missing_data", "schema_mismatch", "error")
PUSH_TIMEOUT_SECONDS = 15.0


class PushFailed(Exception):
    """The Pushgateway did not take the metrics; the message names its URL."""


@dataclass(frozen=True)
class RunSummary:
    rows: int
    seconds: float
    scored: int
    skipped: int
    failed: int
    status: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def push_summary(gateway: str, model: str, version: str, summary: RunSummary, finished_at: float) -> None:
    """Replace this run's families; the last success timestamp is only pushed by a successful run,
    so a staleness alert counts from the real last success."""
    registry = CollectorRegistry()
    identity = ["model", "version"]
    Gauge(ROWS, "Rows scored by the last batch run.", identity, registry=registry).labels(model, version).set(summary.rows)
    Gauge(ROWS_PER_SECOND, "Rows per second of the last batch run's scoring.", identity, registry=registry).labels(model, version).set(
        summary.rows_per_second
    )
    partitions = Gauge(PARTITIONS, "Input partitions of the last batch run by outcome.", [*identity, "outcome"], registry=registry)
    for outcome, count in (("scored", summary.scored), ("skipped", summary.skipped), ("failed", summary.failed)):
        partitions.labels(model, version, outcome).set(count)
    status = Gauge(STATUS, "1 for the status of the last batch run, 0 for the others.", [*identity, "status"], registry=registry)
    for candidate in STATUSES:
        status.labels(model, version, candidate).set(1 if candidate == summary.status else 0)
    if summary.status == "ok":
        Gauge(LAST_SUCCESS, "Unix time the last successful batch run finished.", identity, registry=registry).labels(model, version).set(finished_at)
    try:
        pushadd_to_gateway(gateway, job=PUSH_JOB, grouping_key={"model": model, "version": version}, registry=registry, timeout=PUSH_TIMEOUT_SECONDS)
    except (URLError, OSError) as error:
        raise PushFailed(f"pushing batch metrics to {gateway} failed: {error}") from error
