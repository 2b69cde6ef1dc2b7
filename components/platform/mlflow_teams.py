"""MLflow permissions per team: the job `access.mlflow_teams` with its config and credentials.

MLflow runs its basic-auth app, so every Job that talks to it needs a user. This component keeps
MLflow's grants in line with the teams: each team's role gets MANAGE on the registered models of
the team's model deployments, on their training experiments and on the experiments named under
`/teams/<team>/`, and holds the team's `mlflowUsers` and its machine user `team-<team>`. The models
without a team (namespace mlops-serving) are the built-in team SHARED_TEAM with machine user
`mlops-serving` and the same grants on their models, so the component renders with or without
`mlops:teams`. With teams declared the tracking server's default permission is NO_PERMISSIONS
(`mlflow_server.default_permission_for`).

- Config: a ConfigMap with the job's JSON (`teams_config`), mounted into the job's pod.
- Machine users: a generated password per team (Pulumi secret), kept in Secret
  `mlflow-<machine user>` in the platform namespace (the job reads it) and in Secret
  `mlflow-credentials` (keys `username`, `password`) in the team's namespace, where the team's
  drift, training and batch Jobs take it as MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
- Runs: a Job named after the config's hash runs once per config change (Pulumi does not wait for
  it: a person missing from MLflow must not fail a deploy; the Job's failure shows it), and a
  CronJob every SCHEDULE_MINUTES minutes grants experiments created since (experiment grants name
  an id, so they cannot precede the experiment) and repairs drift.
- Network: the job runs in the platform namespace next to MLflow; the namespace's default-deny
  leaves same-namespace egress open and MLflow admits its own namespace, so no policy is added.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from access.mlflow_teams import SHARED_TEAM, machine_user
from components import workloads
from components.declarations import ModelDeployment, Team, team_namespace
from components.model.training import training_experiment
from components.namespaces import PLATFORM, SERVING

APP = "mlflow-teams"
CONTAINER = "sync"
CONFIG_DIR = "/etc/mlflow-teams/config"
CONFIG_FILE = "teams.json"
PASSWORDS_DIR = "/etc/mlflow-teams/passwords"
# The Secret a team's own jobs read their MLflow credentials from, in the team's namespace.
TEAM_CREDENTIALS_SECRET = "mlflow-credentials"
SCHEDULE_MINUTES = 10
# access.mlflow_teams: 2 (config) and 3 (people missing from MLflow) do not change on a retry.
FINAL_EXIT_CODES = [2, 3]


def experiment_prefix(team: str) -> str:
    return f"/teams/{team}/"


def machine_secret(team: str) -> str:
    """The machine user's credentials in the platform namespace, where the job reads them."""
    return f"mlflow-{machine_user(team)}"


def credentials_namespace(team: str) -> str:
    """Where the team's models run, so where their Jobs find Secret TEAM_CREDENTIALS_SECRET."""
    return SERVING if team == SHARED_TEAM else team_namespace(team)


def _model_grants(models: list[ModelDeployment]) -> dict[str, list[str]]:
    experiments = {training_experiment(model) for model in models}
    return {
        "registeredModels": sorted({model.model.registered_model for model in models}),
        "experiments": sorted(name for name in experiments if name is not None),
    }


def teams_config(teams: list[Team], models: list[ModelDeployment]) -> dict[str, Any]:
    """The job's config: per team its people, what its deployments serve and train, its experiment
    prefix; then the built-in team of the models without one."""
    declared = [
        {
            "name": team.name,
            "users": list(team.mlflow_users),
            **_model_grants([model for model in models if model.team == team.name]),
            "experimentPrefix": experiment_prefix(team.name),
        }
        for team in teams
    ]
    shared = {"name": SHARED_TEAM, "users": [], **_model_grants([model for model in models if model.team is None])}
    return {"teams": [*declared, shared]}


def sync_pod_spec(
    *, image: pulumi.Input[str], account: pulumi.Input[str], tracking_uri: pulumi.Input[str], admin_secret: str, teams: list[str]
) -> dict[str, Any]:
    container = {
        "name": CONTAINER,
        "image": image,
        "command": ["python", "-m", "access.mlflow_teams"],
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_FILE}", "--passwords-dir", PASSWORDS_DIR],
        "env": [
            {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
            workloads.secret_env("MLFLOW_TRACKING_USERNAME", admin_secret, "username"),
            workloads.secret_env("MLFLOW_TRACKING_PASSWORD", admin_secret, "password"),
        ],
        "resources": workloads.resources("50m", "128Mi", cpu_limit="500m"),
        "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "passwords", "mountPath": PASSWORDS_DIR, "readOnly": True},
        ],
    }
    return {
        "serviceAccountName": account,
        # The job talks to MLflow only, never to the Kubernetes API.
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": workloads.RESTRICTED_POD_SECURITY,
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": APP}},
            {
                "name": "passwords",
                "projected": {
                    "sources": [
                        {"secret": {"name": machine_secret(team), "items": [{"key": "password", "path": team}]}} for team in teams
                    ]
                },
            },
        ],
    }


def sync_job_spec(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        # MLflow still starting after a deploy: retried with the Job's backoff (exit 6).
        "backoffLimit": 4,
        "activeDeadlineSeconds": 900,
        "podFailurePolicy": {
            "rules": [{"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": FINAL_EXIT_CODES}}]
        },
        "template": {"metadata": {"labels": workloads.labels(APP, "access")}, "spec": pod},
    }


@dataclass(frozen=True)
class MlflowTeamsArgs:
    teams: list[Team]
    models: list[ModelDeployment]
    image: pulumi.Input[str]
    tracking_uri: pulumi.Input[str]
    # The Secret holding the MLflow admin's `username` and `password`.
    admin_secret: str
    namespace: str = PLATFORM
    # The tracking server: the Job after a deploy starts once it is declared.
    server: list[pulumi.Resource] = field(default_factory=list)


class MlflowTeams(pulumi.ComponentResource):
    def __init__(self, name: str, args: MlflowTeamsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:MlflowTeams", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = workloads.labels(APP, "access")
        secrets: list[pulumi.Resource] = []
        team_names = [*(team.name for team in args.teams), SHARED_TEAM]
        for team in team_names:
            password = pulumi.Output.secret(random.RandomPassword(f"{name}-{team}-password", length=32, special=False, opts=child).result)
            credentials = {"username": machine_user(team), "password": password}
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{team}-machine-user",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=machine_secret(team), namespace=args.namespace, labels=labels),
                    string_data=credentials,
                    opts=child,
                )
            )
            k8s.core.v1.Secret(
                f"{name}-{team}-credentials",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=TEAM_CREDENTIALS_SECRET, namespace=credentials_namespace(team), labels=labels),
                string_data=credentials,
                opts=child,
            )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            automount_service_account_token=False,
            opts=child,
        )
        config_text = json.dumps(teams_config(args.teams, args.models), indent=2, sort_keys=True) + "\n"
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            data={CONFIG_FILE: config_text},
            opts=child,
        )
        pod = sync_pod_spec(
            image=args.image,
            account=account.metadata.name,
            tracking_uri=args.tracking_uri,
            admin_secret=args.admin_secret,
            teams=team_names,
        )
        annotations = workloads.skip_annotations(checkov={"CKV_K8S_35": workloads.MLFLOW_CREDENTIALS_REASON}, images=[args.image])
        inputs = pulumi.ResourceOptions(parent=self, depends_on=[config, *secrets, *args.server])
        k8s.batch.v1.CronJob(
            f"{name}-schedule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels, annotations=annotations),
            spec={
                "schedule": f"*/{SCHEDULE_MINUTES} * * * *",
                "timeZone": "Etc/UTC",
                # Two syncs at once would race on the same grants.
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": SCHEDULE_MINUTES * 60,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"metadata": {"labels": labels}, "spec": sync_job_spec(pod)},
            },
            opts=inputs,
        )
        config_hash = hashlib.sha256(config_text.encode()).hexdigest()[:10]
        k8s.batch.v1.Job(
            f"{name}-after-deploy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{APP}-{config_hash}",
                namespace=args.namespace,
                labels=labels,
                annotations={**annotations, "pulumi.com/skipAwait": "true"},
            ),
            spec=sync_job_spec(pod),
            opts=inputs,
        )
        self.register_outputs({})
