"""Knative queue-proxy request series of live revisions, growing with wall time, for alert and guard tests.

Each revision is its own scrape target whose static labels (namespace, model, model_version,
revision) are what the model's PodMonitor relabelling gives its series in a cluster; the exposition
is the queue-proxy's own (tests/runtime/queue_proxy.py renders it from monitoring.catalog, which
cites knative/serving @ knative-v1.21.3). Every scrape first records the requests due since the
start at the revision's rate: a fixed share answered 500, all within `latency_seconds`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.runtime.queue_proxy import _Histogram
from tests.runtime.servers import exposition_target


@dataclass(frozen=True)
class Revision:
    namespace: str
    model: str
    version: str
    requests_per_second: float
    error_share: float = 0.0
    latency_seconds: float = 0.03


class _GrowingRevision:
    def __init__(self, revision: Revision):
        self.revision = revision
        self.histogram = _Histogram()
        self.started = time.monotonic()
        self.recorded = 0
        self.lock = threading.Lock()

    def exposition(self) -> str:
        with self.lock:
            due = int(self.revision.requests_per_second * (time.monotonic() - self.started))
            for index in range(self.recorded, due):
                # Request n fails when floor(n * share) steps up: the share holds at any count.
                share = self.revision.error_share
                failed = int((index + 1) * share) > int(index * share)
                self.histogram.observe(500 if failed else 200, self.revision.latency_seconds)
            self.recorded = max(self.recorded, due)
        return self.histogram.exposition()


@contextlib.contextmanager
def revision_targets(revisions: list[Revision]) -> Iterator[list[dict[str, Any]]]:
    """Serve each revision's /metrics; yields Prometheus scrape configs for them (honor_labels off,
    as the PodMonitor's relabelled target labels are)."""
    with contextlib.ExitStack() as stack:
        configs = []
        for revision in revisions:
            address = stack.enter_context(exposition_target(_GrowingRevision(revision).exposition))
            labels = {
                "namespace": revision.namespace,
                "model": revision.model,
                "model_version": revision.version,
                "revision": f"{revision.model}-predictor-v{revision.version}",
            }
            configs.append({"job_name": f"{revision.model}-v{revision.version}", "static_configs": [{"targets": [address], "labels": labels}]})
        yield configs
