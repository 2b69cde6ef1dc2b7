"""A model's declared training Job, as Kubernetes runs it.

`policy: scheduled` renders a CronJob. The drift policies render the Job as a template: a ConfigMap
holding the whole Job manifest, mounted into the model's drift CronJob, which creates a Job from it
through the API server when the policy triggers (monitoring/drift_job/retrain.py), under a Role that
allows creating Jobs in the model's namespace and nothing else. Kubernetes has no "Job from a
template" object of its own; a suspended CronJob would also serve, but creating a Job from it needs
`get` on CronJobs as well, and the ConfigMap keeps the template readable with `kubectl get cm`.

The training pod runs as the `training-job` account: it reads the payload and reference data, talks
to MLflow (runs, artifacts through the tracking server, model versions), and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.interfaces import GpuPlacement
from components.declarations import ModelDeployment
from components.model.serving import MODEL_LABEL, job_template_name, pod_resources

TRAINING_COMPONENT = "training"
TRAINING_CONTAINER = "training"
JOB_TEMPLATE_KEY = "job.json"
JOB_TEMPLATE_DIR = "/etc/mlops/retraining"
JOB_TEMPLATE_PATH = f"{JOB_TEMPLATE_DIR}/{JOB_TEMPLATE_KEY}"
# Names the ConfigMap key holding a manifest, so `mlops validate` checks the Job before the cluster sees it.
EMBEDDED_MANIFEST_ANNOTATION = "mlops.platform/embedded-manifest"
# python -m training's exit codes that a retry cannot change: bad settings, missing data, schema
# mismatch, candidate refused (training/__init__.py).
FINAL_EXIT_CODES = [2, 3, 4, 9]


def training_labels(model: ModelDeployment) -> dict[str, str]:
    return {**workloads.labels(f"{model.name}-training", TRAINING_COMPONENT), MODEL_LABEL: model.name}


def served_version(model: ModelDeployment) -> str | None:
    """The registered version most traffic goes to: the stable side of a canary in progress, else
    the declared version (None when an alias was never resolved)."""
    canary = model.canary
    if canary is not None and canary.traffic_percent < 100 and canary.previous_version is not None:
        return canary.previous_version
    return model.model.version or model.model.resolved_version


def training_experiment(model: ModelDeployment) -> str | None:
    """The MLflow experiment the model's training Job logs to (training/config.py: TRAINING_EXPERIMENT,
    default the registered model); None without a training Job."""
    job = model.retraining.job if model.retraining is not None else None
    if job is None:
        return None
    return job.env.get("TRAINING_EXPERIMENT", model.model.registered_model)


def training_env(model: ModelDeployment, payload_root: pulumi.Input[str], store_env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The variables `python -m training` reads (training/config.py), then the declared ones."""
    monitoring, retraining = model.monitoring, model.retraining
    assert monitoring is not None and retraining is not None and retraining.job is not None and monitoring.task is not None
    job = retraining.job
    env: list[dict[str, Any]] = [
        {"name": "TRAINING_MODEL", "value": model.model.registered_model},
        {"name": "TRAINING_TASK", "value": monitoring.task},
        {"name": "TRAINING_METRIC", "value": model.training_metric},
        {"name": "TRAINING_MARGIN", "value": f"{job.margin:g}"},
        {"name": "TRAINING_TRIGGER", "value": "schedule" if retraining.policy == "scheduled" else "drift"},
    ]
    if job.data_uri is not None:
        env.append({"name": "TRAINING_DATA", "value": job.data_uri})
    if monitoring.labels_uri is not None:
        env += [{"name": "TRAINING_PAYLOAD_ROOT", "value": payload_root}, {"name": "TRAINING_LABELS", "value": monitoring.labels_uri}]
    version = served_version(model)
    if version is not None:
        env.append({"name": "TRAINING_SERVED_VERSION", "value": version})
    env += store_env
    env += [{"name": name, "value": value} for name, value in sorted(job.env.items())]
    env += [workloads.secret_env(item.name, item.secret, item.key) for item in job.secret_env]
    return env


def job_pod_spec(
    container: dict[str, Any], account: pulumi.Input[str], placement: GpuPlacement | None, *, api_token: bool = False
) -> dict[str, Any]:
    """A run-to-completion pod under the restricted profile, with a writable /tmp, on its GPU pool."""
    pod: dict[str, Any] = {
        "serviceAccountName": account,
        "automountServiceAccountToken": api_token,
        "restartPolicy": "Never",
        "securityContext": workloads.RESTRICTED_POD_SECURITY,
        "containers": [
            {
                **container,
                "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
                "volumeMounts": [*container.get("volumeMounts", []), {"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if placement is not None:
        pod["nodeSelector"] = dict(placement.node_selector)
        pod["tolerations"] = [dict(t) for t in placement.tolerations]
    return pod


def training_job_spec(
    model: ModelDeployment, *, image: pulumi.Input[str], account: pulumi.Input[str], env: list[dict[str, Any]], placement: GpuPlacement | None
) -> dict[str, Any]:
    assert model.retraining is not None and model.retraining.job is not None
    job = model.retraining.job
    container = {
        "name": TRAINING_CONTAINER,
        "image": job.image or image,
        "command": list(job.command),
        "args": list(job.args),
        "env": env,
        "resources": pod_resources(job.resources),
    }
    return {
        "backoffLimit": job.backoff_limit,
        "activeDeadlineSeconds": job.timeout_minutes * 60,
        # Finished Jobs go after a day: each trigger creates a new one.
        "ttlSecondsAfterFinished": 86400,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": TRAINING_CONTAINER, "operator": "In", "values": FINAL_EXIT_CODES}}
            ]
        },
        "template": {"metadata": {"labels": training_labels(model)}, "spec": job_pod_spec(container, account, placement)},
    }


def training_cronjob_spec(model: ModelDeployment, job_spec: dict[str, Any]) -> dict[str, Any]:
    assert model.retraining is not None and model.retraining.schedule is not None
    return {
        "schedule": model.retraining.schedule,
        "timeZone": "Etc/UTC",
        # One training at a time: a second would race the first to the challenger alias.
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": training_labels(model)}, "spec": job_spec},
    }


def job_template_manifest(model: ModelDeployment, namespace: str, job_spec: dict[str, Any]) -> dict[str, Any]:
    """The Job the drift job creates; it names it `<model>-training-<key hash>` per drift window."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": f"{model.name}-training-", "namespace": namespace, "labels": training_labels(model)},
        "spec": job_spec,
    }


def json_of_manifest(manifest: Any) -> pulumi.Output[str]:
    """`json.dumps` of a manifest whose leaves may be Outputs, resolved together in one `Output.all`.

    `Output.json_dumps` gives the same string, dependencies and secrecy, but lifts every nested dict
    and list into Outputs of its own first: hundreds of Outputs for one Job manifest, per model.
    """
    leaves: list[pulumi.Output[Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, pulumi.Output):
            leaves.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                collect(value)

    def resolved(node: Any, values: Iterator[Any]) -> Any:
        # The same walk as `collect`, so each leaf takes its own value.
        if isinstance(node, pulumi.Output):
            return next(values)
        if isinstance(node, dict):
            return {key: resolved(value, values) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [resolved(value, values) for value in node]
        return node

    collect(manifest)
    return pulumi.Output.all(*leaves).apply(lambda values: json.dumps(resolved(manifest, iter(values))))


@dataclass(frozen=True)
class ModelTrainingArgs:
    model: ModelDeployment
    namespace: str
    runtime_image: pulumi.Input[str]
    # Reads payloads, reference data and the registry; writes to MLflow only.
    training_account: pulumi.Input[str]
    # The drift job's account: it creates the Jobs of drift-triggered retraining.
    drift_account: pulumi.Input[str]
    payload_root: pulumi.Input[str]
    store_env: list[dict[str, Any]]
    gpu_placement: GpuPlacement | None = None
    # Checks that do not apply to the CronJob, with the reason (workloads.skip_annotations).
    annotations: dict[str, str] = field(default_factory=dict)


class ModelTraining(pulumi.ComponentResource):
    """`mlops:serving:ModelTraining`: a CronJob (scheduled), or a Job template with the Role that lets
    the drift job create it (drift policies)."""

    cron_job: k8s.batch.v1.CronJob | None
    job_template: k8s.core.v1.ConfigMap | None
    trigger_role: k8s.rbac.v1.Role | None
    trigger_binding: k8s.rbac.v1.RoleBinding | None

    def __init__(self, name: str, args: ModelTrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelTraining", name, None, opts)
        model = args.model
        env = training_env(model, args.payload_root, args.store_env)
        spec = training_job_spec(model, image=args.runtime_image, account=args.training_account, env=env, placement=args.gpu_placement)
        child = pulumi.ResourceOptions(parent=self)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=job_template_name(model), namespace=args.namespace, labels=training_labels(model))
        self.cron_job = self.job_template = self.trigger_role = self.trigger_binding = None
        assert model.retraining is not None
        if model.retraining.policy == "scheduled":
            cron_metadata = k8s.meta.v1.ObjectMetaArgs(
                name=f"{model.name}-training", namespace=args.namespace, labels=training_labels(model), annotations=args.annotations or None
            )
            self.cron_job = k8s.batch.v1.CronJob(f"{name}-cron", metadata=cron_metadata, spec=training_cronjob_spec(model, spec), opts=child)
        else:
            self._create_template(name, args, metadata, spec, child)
        self.register_outputs({"schedule": model.retraining.schedule, "template": job_template_name(model) if self.job_template else None})

    def _create_template(
        self, name: str, args: ModelTrainingArgs, metadata: k8s.meta.v1.ObjectMetaArgs, spec: dict[str, Any], child: pulumi.ResourceOptions
    ) -> None:
        manifest = job_template_manifest(args.model, args.namespace, spec)
        template_metadata = k8s.meta.v1.ObjectMetaArgs(
            name=job_template_name(args.model),
            namespace=args.namespace,
            labels=training_labels(args.model),
            annotations={EMBEDDED_MANIFEST_ANNOTATION: JOB_TEMPLATE_KEY},
        )
        self.job_template = k8s.core.v1.ConfigMap(
            f"{name}-template", metadata=template_metadata, data={JOB_TEMPLATE_KEY: json_of_manifest(manifest)}, opts=child
        )
        # RBAC cannot narrow `create` to a name or a template: the Role allows creating Jobs in the
        # model's namespace, nothing else (no get, list, delete; no other kinds or namespaces).
        self.trigger_role = k8s.rbac.v1.Role(
            f"{name}-trigger",
            metadata=metadata,
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=["batch"], resources=["jobs"], verbs=["create"])],
            opts=child,
        )
        self.trigger_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-trigger",
            metadata=metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=self.trigger_role.metadata.name),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=args.drift_account, namespace=args.namespace)],
            opts=child,
        )
