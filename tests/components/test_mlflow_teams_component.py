"""MLflow team permissions as the platform renders them (the job itself: tests/runtime/test_mlflow_teams.py).

- the job's config in the ConfigMap is tests/fixtures/mlflow/teams.json, the file the runtime test
  feeds the job against a real MLflow, and the job's own loader accepts it;
- the pod hands the job what its command line names: the config file and one password file per team,
  from the machine users' Secrets, and the admin's credentials;
- a team's model's drift, training and batch Jobs act as the team's machine user (the Secret in their
  namespace), unless the training Job names credentials of its own;
- with teams the tracking server denies by default (and rolls when that changes); without, nothing of
  this is rendered and MLflow keeps READ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from access.mlflow_teams import load_config, parse_args
from components.platform.mlflow import DEFAULT_PERMISSION_ANNOTATION
from components.platform.mlflow_teams import APP, CONFIG_FILE, TEAM_CREDENTIALS_SECRET
from mlops.offline.render import render
from tests.conftest import PROJECT_DIR

FIXTURE = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "teams.json"
TEAMS = [
    {"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "16", "memory": "64Gi", "gpus": 0}, "mlflowUsers": ["alice@example.com"]},
    {"name": "vision", "groups": ["vision-engineers"], "quota": {"cpu": "32", "memory": "128Gi", "gpus": 4}, "mlflowUsers": ["victor@example.com"]},
]
# The committed prod stack's two models, one per team; vision's training Job names MLflow credentials of its own.
OWN_CREDENTIALS = [
    {"name": "MLFLOW_TRACKING_USERNAME", "secret": "embedder-trainer", "key": "username"},
    {"name": "MLFLOW_TRACKING_PASSWORD", "secret": "embedder-trainer", "key": "password"},
]
WITH_TEAMS = {
    "mlops:teams": json.dumps(TEAMS),
    "mlops:models[0].team": "fraud",
    "mlops:models[1].team": "vision",
    "mlops:models[1].retraining.job.secretEnv": json.dumps(OWN_CREDENTIALS),
}


def objects(overrides: dict[str, str]) -> list[dict[str, Any]]:
    return [manifest for _, manifest in render(PROJECT_DIR, "prod", overrides).manifests()]


@pytest.fixture(scope="module")
def with_teams() -> list[dict[str, Any]]:
    return objects(WITH_TEAMS)


def named(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in rendered if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def job_pods(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cronjob = named(rendered, "CronJob", APP)
    [job] = [o for o in rendered if o["kind"] == "Job" and o["metadata"]["name"].startswith(f"{APP}-")]
    return [cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"], job["spec"]["template"]["spec"]]


def test_the_rendered_config_is_the_file_the_runtime_test_feeds_the_job(with_teams, tmp_path):
    """Regenerate the fixture with: the ConfigMap's teams.json from `mlops render` with WITH_TEAMS."""
    text = named(with_teams, "ConfigMap", APP)["data"][CONFIG_FILE]
    assert text == FIXTURE.read_text()
    path = tmp_path / CONFIG_FILE
    path.write_text(text)
    config = load_config(path)
    assert [(t.name, t.registered_models, t.experiment_prefix) for t in config.teams] == [
        ("fraud", ["fraud-detector"], "/teams/fraud/"),
        ("vision", ["image-embedder"], "/teams/vision/"),
    ]


def test_the_pod_mounts_what_the_jobs_command_line_names(with_teams):
    config = json.loads(named(with_teams, "ConfigMap", APP)["data"][CONFIG_FILE])
    for pod in job_pods(with_teams):
        [container] = pod["containers"]
        assert container["command"] == ["python", "-m", "access.mlflow_teams"]
        args = parse_args(container["args"])
        mounts = {m["name"]: Path(m["mountPath"]) for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        config_volume = next(name for name, path in mounts.items() if args.config.parent == path)
        assert volumes[config_volume]["configMap"]["name"] == APP and args.config.name == CONFIG_FILE
        password_volume = next(name for name, path in mounts.items() if args.passwords_dir == path)
        files = {
            item["path"]: (source["secret"]["name"], item["key"])
            for source in volumes[password_volume]["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        assert files == {team["name"]: (f"mlflow-team-{team['name']}", "password") for team in config["teams"]}
        env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert env == {
            "MLFLOW_TRACKING_URI": "http://mlflow.mlops-platform.svc:5000",
            "MLFLOW_TRACKING_USERNAME": {"name": "mlflow-admin", "key": "username"},
            "MLFLOW_TRACKING_PASSWORD": {"name": "mlflow-admin", "key": "password"},
        }
        assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"


def test_each_team_gets_its_machine_users_credentials_in_its_namespace(with_teams):
    rendered = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in with_teams if o["kind"] == "Secret"}
    secrets = {key for key in rendered if key[1].startswith("mlflow-team-") or key[1] == TEAM_CREDENTIALS_SECRET}
    assert secrets == {
        ("mlops-platform", "mlflow-team-fraud"), ("mlops-platform", "mlflow-team-vision"),
        ("team-fraud", TEAM_CREDENTIALS_SECRET), ("team-vision", TEAM_CREDENTIALS_SECRET),
    }  # fmt: skip
    assert all(sorted(rendered[key]["stringData"]) == ["password", "username"] for key in secrets)


def test_teams_make_mlflow_deny_by_default_and_no_teams_keep_read(with_teams, dev):
    server = named(with_teams, "Deployment", "mlflow")["spec"]["template"]["metadata"]["annotations"]
    assert server[DEFAULT_PERMISSION_ANNOTATION] == "NO_PERMISSIONS"
    committed = [manifest for _, manifest in dev.manifests()]
    assert named(committed, "Deployment", "mlflow")["spec"]["template"]["metadata"]["annotations"][DEFAULT_PERMISSION_ANNOTATION] == "READ"
    assert [o["metadata"]["name"] for o in committed if APP in o["metadata"]["name"]] == []


def mlflow_clients(rendered: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every container given the tracking URI, by (namespace, object name): CronJobs and the training
    Job template the drift job creates Jobs from."""
    pods = []
    for o in rendered:
        if o["kind"] == "CronJob":
            pods.append((o, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-training-job"):
            pods += [(o, json.loads(text)["spec"]["template"]["spec"]) for text in o["data"].values()]
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): container
        for o, pod in pods
        for container in pod["containers"]
        if any(variable["name"] == "MLFLOW_TRACKING_URI" for variable in container.get("env", []))
    }


def credentials(container: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (v["name"], v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for v in container["env"]
        if v["name"].startswith("MLFLOW_TRACKING_") and "valueFrom" in v
    ]


def test_a_teams_jobs_act_as_its_machine_user_unless_they_name_their_own(with_teams, dev):
    clients = mlflow_clients(with_teams)
    machine = [("MLFLOW_TRACKING_USERNAME", TEAM_CREDENTIALS_SECRET, "username"), ("MLFLOW_TRACKING_PASSWORD", TEAM_CREDENTIALS_SECRET, "password")]
    own = [(item["name"], item["secret"], item["key"]) for item in OWN_CREDENTIALS]
    assert {key: credentials(container) for key, container in clients.items() if key[0].startswith("team-")} == {
        ("team-fraud", "fraud-detector-drift"): machine,
        ("team-fraud", "fraud-detector-training-job"): machine,
        ("team-vision", "image-embedder-drift"): machine,
        ("team-vision", "image-embedder-training"): own,
    }
    # Without teams no Job is handed a machine user (the committed dev stack's models).
    dev_clients = mlflow_clients([manifest for _, manifest in dev.manifests()])
    assert dev_clients and all(secret != TEAM_CREDENTIALS_SECRET for c in dev_clients.values() for _, secret, _ in credentials(c))
