"""A model's batch scoring: a CronJob running `python -m batch` (batch/) with the version the
InferenceService serves, on input partitions in the payload bucket, writing under batch-output/.

The pod runs as the `batch-job` account: it reads the payload bucket and the registry and writes
under batch-output/ only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.declarations import ModelDeployment
from components.interfaces import GpuPlacement
from components.model.serving import MODEL_LABEL, pod_resources
from components.model.training import job_pod_spec, served_version

BATCH_COMPONENT = "batch-scoring"
BATCH_OUTPUT_PREFIX = "batch-output"


def batch_labels(model: ModelDeployment) -> dict[str, str]:
    return {**workloads.labels(f"{model.name}-batch", BATCH_COMPONENT), MODEL_LABEL: model.name}


def batch_env(
    model: ModelDeployment, input_uri: pulumi.Input[str], output_uri: pulumi.Input[str], pushgateway_url: pulumi.Input[str], store_env: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The variables `python -m batch` reads (batch/config.py)."""
    assert model.batch is not None
    version = served_version(model)
    assert version is not None  # the schema requires a version (or a resolved alias) with batch
    return [
        {"name": "BATCH_MODEL", "value": model.model.registered_model},
        {"name": "BATCH_MODEL_VERSION", "value": version},
        {"name": "BATCH_INPUT", "value": input_uri},
        {"name": "BATCH_OUTPUT", "value": output_uri},
        {"name": "BATCH_PUSHGATEWAY", "value": pushgateway_url},
        {"name": "BATCH_CHUNK_ROWS", "value": str(model.batch.chunk_rows)},
        *store_env,
    ]


def batch_cronjob_spec(
    model: ModelDeployment, *, image: pulumi.Input[str], account: pulumi.Input[str], env: list[dict[str, Any]], placement: GpuPlacement | None
) -> dict[str, Any]:
    assert model.batch is not None
    container = {"name": "batch", "image": image, "command": ["python", "-m", "batch"], "env": env, "resources": pod_resources(model.batch.resources)}
    labels = batch_labels(model)
    return {
        "schedule": model.batch.schedule,
        "timeZone": "Etc/UTC",
        # Two runs would score the same unmarked partitions twice over (the output stays right, the work doubles).
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": labels},
            "spec": {
                # A rerun resumes: scored partitions are skipped (batch/__init__.py).
                "backoffLimit": 2,
                "activeDeadlineSeconds": model.batch.timeout_minutes * 60,
                "template": {"metadata": {"labels": labels}, "spec": job_pod_spec(container, account, placement)},
            },
        },
    }


@dataclass(frozen=True)
class BatchScoringArgs:
    model: ModelDeployment
    namespace: str
    runtime_image: pulumi.Input[str]
    account: pulumi.Input[str]
    input_uri: pulumi.Input[str]
    output_uri: pulumi.Input[str]
    pushgateway_url: pulumi.Input[str]
    store_env: list[dict[str, Any]]
    gpu_placement: GpuPlacement | None = None
    # Checks that do not apply to the CronJob, with the reason (workloads.skip_annotations).
    annotations: dict[str, str] = field(default_factory=dict)


class BatchScoring(pulumi.ComponentResource):
    """`mlops:serving:BatchScoring`: the model's batch scoring CronJob."""

    cron_job: k8s.batch.v1.CronJob

    def __init__(self, name: str, args: BatchScoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:BatchScoring", name, None, opts)
        model = args.model
        env = batch_env(model, args.input_uri, args.output_uri, args.pushgateway_url, args.store_env)
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{model.name}-batch", namespace=args.namespace, labels=batch_labels(model), annotations=args.annotations or None
            ),
            spec=batch_cronjob_spec(model, image=args.runtime_image, account=args.account, env=env, placement=args.gpu_placement),
            opts=pulumi.ResourceOptions(parent=self),
        )
        assert model.batch is not None
        self.register_outputs({"schedule": model.batch.schedule})
