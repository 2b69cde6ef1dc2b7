"""The collector's Prometheus metrics, named as the platform's alerts and dashboards expect them."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class CollectorMetrics:
    registry: CollectorRegistry
    events_received: Counter
    records_written: Counter
    events_dropped: Counter
    events_sampled_out: Counter
    batch_write_seconds: Histogram
    buffered_records: Gauge
    write_failures: Counter

    @classmethod
    def create(cls) -> "CollectorMetrics":
        """A fresh set in its own registry (one per app, so tests can run several apps side by side)."""
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            events_received=Counter(
                "mlops_collector_events_received",
                "Inference logger events accepted (durably spooled), by model, version and request|response.",
                ["model", "version", "event_type"],
                registry=registry,
            ),
            records_written=Counter(
                "mlops_collector_records_written",
                "Inference rows written to the payload store.",
                ["model", "version"],
                registry=registry,
            ),
            events_dropped=Counter(
                "mlops_collector_events_dropped",
                "Events refused with a 4xx/5xx status, by reason.",
                ["reason"],
                registry=registry,
            ),
            events_sampled_out=Counter(
                "mlops_collector_events_sampled_out",
                "Events acknowledged but not stored because the model's sample rate left their inference out.",
                ["model", "version", "event_type"],
                registry=registry,
            ),
            batch_write_seconds=Histogram(
                "mlops_collector_batch_write_seconds",
                "Time to encode and write one Parquet file to the payload store.",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            buffered_records=Gauge(
                "mlops_collector_buffered_records",
                "Rows accepted but not yet in the store (waiting for their partner event or for a batch write).",
                registry=registry,
            ),
            write_failures=Counter(
                "mlops_collector_write_failures",
                "Failed payload store writes (the rows stay spooled and are retried).",
                ["model", "version"],
                registry=registry,
            ),
        )
