"""What the platform puts in and beside a model's pods, in resource terms.

The components render these values and the config rules add them up against a team's quota, so
they live here, free of any Pulumi import: the config (and the `mlops` commands that read stack
files in the runtime virtualenv) must load without the SDK.
"""

from __future__ import annotations

from components import workloads

# Knative's queue-proxy beside each Serverless model container (config-deployment keys).
QUEUE_PROXY_RESOURCES: dict[str, str] = {
    "queue-sidecar-cpu-request": "25m",
    "queue-sidecar-cpu-limit": "1000m",
    "queue-sidecar-memory-request": "128Mi",
    "queue-sidecar-memory-limit": "512Mi",
}
# Requests of the container KServe adds beside the model for the logger: the `agent` defaults of
# KServe's inferenceservice-config (config/configmap/inferenceservice.yaml, v0.20.0), which the
# platform keeps. A team's quota must hold it for each replica.
LOGGER_AGENT_REQUESTS = {"cpu": "100m", "memory": "100Mi"}
# What one drift run requests (a team's quota must hold it beside the model's replicas).
DRIFT_JOB_RESOURCES = workloads.resources("250m", "1Gi", cpu_limit="1")
