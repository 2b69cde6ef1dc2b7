"""MLflow team permissions as the platform renders them (the job itself: tests/runtime/test_mlflow_teams.py).

- the job's config in the ConfigMap is tests/fixtures/mlflow/teams.json (prod with teams) and
  serving.json (the committed dev stack: its models have no team), the files the runtime test feeds
  the job against a real MLflow, and the job's own loader accepts them;
- the pod hands the job what its command line names: the config file and one password file per team
  (the built-in team of the models without one included), from the machine users' Secrets, and the
  admin's credentials;
- every container the render hands MLflow's tracking URI (every model's drift, training and batch
  Jobs, the training Job templates, the sync job) authenticates with credentials from a Secret the
  render creates in its namespace: a model's Jobs as its namespace's machine user, unless the
  training Job names credentials of its own;
- with teams the tracking server denies by default (and rolls when that changes); without, MLflow
  keeps READ.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest

from access.mlflow_teams import SHARED_TEAM, load_config, parse_args
from components.platform.mlflow import DEFAULT_PERMISSION_ANNOTATION
from components.platform.mlflow_teams import APP, CONFIG_FILE, TEAM_CREDENTIALS_SECRET
from mlops.offline.render import render
from tests.conftest import PROJECT_DIR

FIXTURE = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "teams.json"
SERVING_FIXTURE = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "serving.json"
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


def test_the_rendered_config_is_the_file_the_runtime_test_feeds_the_job(with_teams, dev, tmp_path):
    """Regenerate the fixtures with: the ConfigMap's teams.json from `mlops render` with WITH_TEAMS
    (teams.json), and of the committed dev stack (serving.json)."""
    text = named(with_teams, "ConfigMap", APP)["data"][CONFIG_FILE]
    assert text == FIXTURE.read_text()
    path = tmp_path / CONFIG_FILE
    path.write_text(text)
    config = load_config(path)
    # Training experiments are named after the registered model (training/config.py's default).
    assert [(t.name, t.registered_models, t.experiments, t.experiment_prefix) for t in config.teams] == [
        ("fraud", ["fraud-detector"], ["fraud-detector"], "/teams/fraud/"),
        ("vision", ["image-embedder"], ["image-embedder"], "/teams/vision/"),
        (SHARED_TEAM, [], [], None),
    ]
    committed = named([manifest for _, manifest in dev.manifests()], "ConfigMap", APP)["data"][CONFIG_FILE]
    assert committed == SERVING_FIXTURE.read_text()
    path.write_text(committed)
    [shared] = load_config(path).teams
    assert (shared.name, shared.users, shared.registered_models, shared.experiments) == (
        SHARED_TEAM, [], ["churn-classifier"], ["churn-classifier"]
    )  # fmt: skip


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
        # One file per team of the config, from a Secret the render creates beside the job.
        assert sorted(files) == sorted(team["name"] for team in config["teams"])
        assert all(key == "password" and key in secret_keys(with_teams, "mlops-platform", secret) for secret, key in files.values())
        env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert env == {
            "MLFLOW_TRACKING_URI": "http://mlflow.mlops-platform.svc:5000",
            "MLFLOW_TRACKING_USERNAME": {"name": "mlflow-admin", "key": "username"},
            "MLFLOW_TRACKING_PASSWORD": {"name": "mlflow-admin", "key": "password"},
        }
        assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"


def secret_keys(rendered: list[dict[str, Any]], namespace: str, name: str) -> set[str]:
    """The keys of the Secret `name` in `namespace`; empty when the render has no such Secret."""
    found = [o for o in rendered if o["kind"] == "Secret" and (o["metadata"].get("namespace"), o["metadata"]["name"]) == (namespace, name)]
    return {key for o in found for key in (*o.get("data", {}), *o.get("stringData", {}))}


def test_each_team_and_the_shared_namespace_get_their_machine_users_credentials(with_teams):
    rendered = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in with_teams if o["kind"] == "Secret"}
    secrets = {key for key in rendered if key[1].startswith("mlflow-team-") or key[1] in ("mlflow-mlops-serving", TEAM_CREDENTIALS_SECRET)}
    assert secrets == {
        ("mlops-platform", "mlflow-team-fraud"), ("mlops-platform", "mlflow-team-vision"), ("mlops-platform", "mlflow-mlops-serving"),
        ("team-fraud", TEAM_CREDENTIALS_SECRET), ("team-vision", TEAM_CREDENTIALS_SECRET), ("mlops-serving", TEAM_CREDENTIALS_SECRET),
    }  # fmt: skip
    assert all(sorted(rendered[key]["stringData"]) == ["password", "username"] for key in secrets)


def test_teams_make_mlflow_deny_by_default_and_no_teams_keep_read(with_teams, dev):
    """READ without teams: people resolving versions (`mlops models resolve`) and browsing have no
    role to read through; with teams, `mlflowUsers` gives them one."""
    server = named(with_teams, "Deployment", "mlflow")["spec"]["template"]["metadata"]["annotations"]
    assert server[DEFAULT_PERMISSION_ANNOTATION] == "NO_PERMISSIONS"
    committed = [manifest for _, manifest in dev.manifests()]
    assert named(committed, "Deployment", "mlflow")["spec"]["template"]["metadata"]["annotations"][DEFAULT_PERMISSION_ANNOTATION] == "READ"


def pod_specs(value: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec inside a manifest: Jobs, CronJobs, Deployments, and Job templates kept as JSON
    in ConfigMaps (the training Job the drift job creates)."""
    if isinstance(value, dict):
        if isinstance(value.get("containers"), list):
            yield value
        for item in value.values():
            yield from pod_specs(item)
    elif isinstance(value, list):
        for item in value:
            yield from pod_specs(item)
    elif isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            yield from pod_specs(json.loads(value))
        except json.JSONDecodeError:
            return


def mlflow_clients(rendered: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every container given the tracking URI, by (namespace, object kind and name, container)."""
    return {
        (o["metadata"].get("namespace", ""), f"{o['kind']}/{o['metadata']['name']}", container["name"]): container
        for o in rendered
        for pod in pod_specs(o)
        for container in [*pod["containers"], *pod.get("initContainers", [])]
        if any(variable["name"] == "MLFLOW_TRACKING_URI" for variable in container.get("env", []))
    }


def credentials(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        v["name"]: (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for v in container["env"]
        if v["name"] in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD") and "valueFrom" in v
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_mlflow_client_of_the_committed_stacks_authenticates_with_a_secret_rendered_in_its_namespace(stack, request):
    """(A training Job's own `secretEnv` names a Secret its team creates: not rendered, so not here.)"""
    rendered = [manifest for _, manifest in request.getfixturevalue(stack).manifests()]
    clients = mlflow_clients(rendered)
    models = {o["metadata"]["name"] for o in rendered if o["kind"] == "InferenceService"}
    # Each model's drift job and training Job at least (batch where declared): the walk found them.
    assert {f"{model}-drift" for model in models} <= {name.split("/", 1)[1] for _, name, _ in clients}
    for (namespace, owner, container), env in clients.items():
        given = credentials(env)
        assert sorted(given) == ["MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME"], (namespace, owner, container)
        for secret, key in given.values():
            assert key in secret_keys(rendered, namespace, secret), (namespace, owner, container, secret)


def test_a_models_jobs_act_as_its_namespaces_machine_user_unless_they_name_their_own(with_teams, dev):
    machine = {"MLFLOW_TRACKING_USERNAME": (TEAM_CREDENTIALS_SECRET, "username"), "MLFLOW_TRACKING_PASSWORD": (TEAM_CREDENTIALS_SECRET, "password")}
    own = {item["name"]: (item["secret"], item["key"]) for item in OWN_CREDENTIALS}
    clients = {(namespace, owner): credentials(env) for (namespace, owner, _), env in mlflow_clients(with_teams).items()}
    assert {key: given for key, given in clients.items() if key[0].startswith("team-")} == {
        ("team-fraud", "CronJob/fraud-detector-drift"): machine,
        ("team-fraud", "ConfigMap/fraud-detector-training-job"): machine,
        ("team-vision", "CronJob/image-embedder-drift"): machine,
        ("team-vision", "CronJob/image-embedder-training"): own,
    }
    # The committed dev stack's model has no team: its Jobs act as mlops-serving.
    dev_clients = {(namespace, owner): credentials(env) for (namespace, owner, _), env in mlflow_clients([m for _, m in dev.manifests()]).items()}
    served = {key: given for key, given in dev_clients.items() if key[0] == "mlops-serving"}
    assert served and all(given == machine for given in served.values())
