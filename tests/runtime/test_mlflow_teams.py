"""Team permissions applied by `python -m access.mlflow_teams` to a real MLflow, as the platform runs it.

The server is the platform's (`components.platform.mlflow_server`: basic-auth app, user store in
PostgreSQL) with the default permission the platform sets once teams are declared
(NO_PERMISSIONS). The job runs as a subprocess with the config the `MlflowTeams` component renders
(tests/fixtures/mlflow/teams.json, prod with two teams, for the teams; serving.json, the committed
dev stack, for the models without a team; tests/components/test_mlflow_teams_component.py holds the
rendered ConfigMaps to the same files), and the checks are requests a team's user makes, or MLflow's
client as the platform's Jobs run it. The tests share one server and run in file order, each from
the state the previous ones left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from access.mlflow_teams import ROLE_PREFIX, SHARED_MACHINE_USER, SHARED_TEAM, machine_user
from components.platform.mlflow_server import ADMIN_USERNAME, default_permission_for
from tests.conftest import PROJECT_DIR
from tests.runtime.test_mlflow_postgres import Postgres, Tracking, postgres, tracking_server  # noqa: F401 (postgres: the fixture)

pytestmark = pytest.mark.server

CONFIG = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "teams.json"
SERVING_CONFIG = PROJECT_DIR / "tests" / "fixtures" / "mlflow" / "serving.json"
FRAUD_MODEL, VISION_MODEL = "fraud-detector", "image-embedder"
# The committed dev stack's model: no team, namespace mlops-serving; its training experiment has its name.
SHARED_MODEL = "churn-classifier"
FRAUD_PERSON, VISION_PERSON = "alice@example.com", "victor@example.com"


@dataclass
class Sync:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class World:
    tracking: Tracking
    workdir: Path
    passwords: Path
    experiments: dict[str, str]
    first: Sync

    @property
    def admin(self) -> tuple[str, str]:
        return (ADMIN_USERNAME, self.tracking.admin_password)

    def call(self, auth: tuple[str, str], method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.tracking.url + path, auth=auth, timeout=30, **kwargs)

    def as_admin(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(self.admin, method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def machine(self, team: str) -> tuple[str, str]:
        return (machine_user(team), (self.passwords / team).read_text())

    def sync(self, config: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Sync:
        path = self.workdir / "teams.json"
        path.write_text(json.dumps(rendered_config() if config is None else config))
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_DIR),
            "MLFLOW_TRACKING_URI": self.tracking.url,
            "MLFLOW_TRACKING_USERNAME": ADMIN_USERNAME,
            "MLFLOW_TRACKING_PASSWORD": self.tracking.admin_password,
            **(environ or {}),
        }
        done = subprocess.run(
            [sys.executable, "-m", "access.mlflow_teams", "--config", str(path), "--passwords-dir", str(self.passwords)],
            cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return Sync(done.returncode, done.stdout, done.stderr)


def create_user(world: World, username: str, password: str) -> None:
    world.as_admin("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})


def create_experiment(world: World, name: str) -> str:
    return world.as_admin("POST", "/api/2.0/mlflow/experiments/create", json={"name": name})["experiment_id"]


def registered_model(world: World, auth: tuple[str, str], name: str) -> int:
    return world.call(auth, "GET", "/api/2.0/mlflow/registered-models/get", params={"name": name}).status_code


def experiment(world: World, auth: tuple[str, str], experiment_id: str) -> int:
    return world.call(auth, "GET", "/api/2.0/mlflow/experiments/get", params={"experiment_id": experiment_id}).status_code


def rendered_config() -> dict[str, Any]:
    """The declared teams of teams.json, and serving.json's team of the models without one (prod's
    models all have teams there): one server holds both."""
    declared = [team for team in json.loads(CONFIG.read_text())["teams"] if team["name"] != SHARED_TEAM]
    [shared] = json.loads(SERVING_CONFIG.read_text())["teams"]
    assert shared["registeredModels"] == [SHARED_MODEL]
    return {"teams": [*declared, shared]}


def teams_config(**changes: dict[str, Any]) -> dict[str, Any]:
    """The rendered config with some teams' fields replaced (a team mapped to None is dropped)."""
    teams = []
    for team in rendered_config()["teams"]:
        if team["name"] in changes and changes[team["name"]] is None:
            continue
        teams.append({**team, **(changes.get(team["name"]) or {})})
    return {"teams": teams}


@pytest.fixture(scope="module")
def world(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811 (the fixture)
    """The teams' models and experiments exist (registered by the admin), one person of the two
    has an MLflow user, and the job has run once."""
    workdir = tmp_path_factory.mktemp("mlflow-teams")
    passwords = workdir / "passwords"
    passwords.mkdir()
    for team in ("fraud", "vision", SHARED_TEAM):
        (passwords / team).write_text(f"{team}-machine-password-1")
    with tracking_server(postgres, workdir, str(workdir / "artifacts"), default_permission=default_permission_for(teams_declared=True)) as tracking:
        world = World(tracking, workdir, passwords, {}, Sync(0, "", ""))
        for model in (FRAUD_MODEL, VISION_MODEL, SHARED_MODEL):
            world.as_admin("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model})
        # SHARED_MODEL's training experiment exists before the job runs: granted by name.
        experiments = ("/teams/fraud/churn", "/teams/vision/embeddings", "/shared/scratch", SHARED_MODEL)
        world.experiments = {name: create_experiment(world, name) for name in experiments}
        create_user(world, FRAUD_PERSON, "alice-password-1")
        world.first = world.sync()
        yield world


def test_the_first_run_grants_what_it_can_and_names_the_person_missing_from_mlflow(world):
    assert world.first.returncode == 3, world.first.stderr
    assert world.first.stderr.strip() == (
        f"team vision: MLflow user '{VISION_PERSON}' does not exist; an MLflow admin creates it, the next run adds it to the team"
    )
    assert "fraud: created machine user team-fraud" in world.first.stdout
    assert f"fraud: added {FRAUD_PERSON} to role {ROLE_PREFIX}fraud" in world.first.stdout


def test_a_team_reads_its_models_and_experiments_and_not_the_other_teams(world):
    fraud_experiment, vision_experiment, shared, _ = world.experiments.values()
    for user in (world.machine("fraud"), (FRAUD_PERSON, "alice-password-1")):
        assert registered_model(world, user, FRAUD_MODEL) == 200
        assert registered_model(world, user, VISION_MODEL) == 403
        assert experiment(world, user, fraud_experiment) == 200
        assert [experiment(world, user, other) for other in (vision_experiment, shared)] == [403, 403]
    assert registered_model(world, world.machine("vision"), VISION_MODEL) == 200
    assert registered_model(world, world.machine("vision"), FRAUD_MODEL) == 403


def test_searches_list_only_the_teams_own_models_and_experiments(world):
    fraud = world.machine("fraud")
    models = world.call(fraud, "GET", "/api/2.0/mlflow/registered-models/search").json()["registered_models"]
    assert [model["name"] for model in models] == [FRAUD_MODEL]
    experiments = world.call(fraud, "POST", "/api/2.0/mlflow/experiments/search", json={"max_results": 100}).json()["experiments"]
    assert [e["name"] for e in experiments] == ["/teams/fraud/churn"]


def test_a_teams_machine_user_logs_runs_and_registers_versions_of_its_own_model_only(world):
    fraud = world.machine("fraud")
    run = world.call(fraud, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": world.experiments["/teams/fraud/churn"]})
    assert run.status_code == 200, run.text
    info = run.json()["run"]["info"]
    version = {"source": f"{info['artifact_uri']}/model", "run_id": info["run_id"]}
    assert world.call(fraud, "POST", "/api/2.0/mlflow/model-versions/create", json={"name": FRAUD_MODEL, **version}).status_code == 200
    assert world.call(fraud, "POST", "/api/2.0/mlflow/model-versions/create", json={"name": VISION_MODEL, **version}).status_code == 403
    other = world.call(fraud, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": world.experiments["/teams/vision/embeddings"]})
    assert other.status_code == 403


def as_platform_job(monkeypatch: pytest.MonkeyPatch, world: World, credentials: tuple[str, str] | None) -> Any:
    """MLflow's client as a platform Job runs it: the tracking URI, and the user its Secret names (or none)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.tracking.url)
    for variable, value in zip(("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"), credentials or (None, None)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    mlflow.set_tracking_uri(world.tracking.url)
    return mlflow


def train_and_register(mlflow: Any, model: str) -> str:
    """What training/run.py does with MLflow: a run in the model's experiment, a registered version, an alias."""
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    mlflow.set_experiment(model)
    with mlflow.start_run():
        mlflow.log_metric("candidate_f1", 0.9)
        # The artifact goes through the server's proxied artifact store, as the user too.
        model_uri = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model").model_uri
    registered = mlflow.register_model(model_uri, model)
    mlflow.MlflowClient().set_registered_model_alias(model, "challenger", registered.version)
    return registered.version


def test_a_job_without_mlflow_credentials_is_refused(world, monkeypatch):
    """What every Job of a model without a team had before it got the mlops-serving user."""
    mlflow = as_platform_job(monkeypatch, world, None)
    with pytest.raises(mlflow.exceptions.MlflowException) as refused:
        mlflow.MlflowClient().get_registered_model(SHARED_MODEL)
    assert "401" in str(refused.value), refused.value


def test_the_shared_machine_user_trains_and_registers_the_team_less_models_only(world, monkeypatch):
    assert f"{SHARED_TEAM}: created machine user {SHARED_MACHINE_USER}" in world.first.stdout
    mlflow = as_platform_job(monkeypatch, world, world.machine(SHARED_TEAM))
    assert world.machine(SHARED_TEAM)[0] == SHARED_MACHINE_USER
    assert train_and_register(mlflow, SHARED_MODEL) == "1"
    assert mlflow.MlflowClient().get_model_version_by_alias(SHARED_MODEL, "challenger").version == "1"
    # A team's model and experiment stay out of reach, and the shared user is no member of a team.
    for model in (FRAUD_MODEL, VISION_MODEL):
        with pytest.raises(mlflow.exceptions.MlflowException) as refused:
            mlflow.MlflowClient().create_model_version(model, "s3://bucket/model")
        assert refused.value.get_http_status_code() == 403
    assert experiment(world, world.machine(SHARED_TEAM), world.experiments["/teams/fraud/churn"]) == 403
    # And a team's machine user cannot touch the shared models.
    assert registered_model(world, world.machine("fraud"), SHARED_MODEL) == 403
    assert experiment(world, world.machine("fraud"), world.experiments[SHARED_MODEL]) == 403


def test_an_experiment_created_after_a_run_is_granted_by_the_next_and_nothing_else_changes(world):
    later = create_experiment(world, "/teams/fraud/later")
    assert experiment(world, world.machine("fraud"), later) == 403
    again = world.sync()
    assert again.returncode == 3
    assert again.stdout.splitlines()[:-1] == [f"fraud: granted MANAGE on experiment {later}"]
    assert experiment(world, world.machine("fraud"), later) == 200


def test_a_person_removed_from_the_config_loses_access_and_a_created_one_gains_it(world):
    create_user(world, VISION_PERSON, "victor-password-1")
    alice = (FRAUD_PERSON, "alice-password-1")
    assert registered_model(world, alice, FRAUD_MODEL) == 200
    done = world.sync(teams_config(fraud={"users": []}))
    assert done.returncode == 0, done.stderr
    assert f"fraud: removed {FRAUD_PERSON} from role {ROLE_PREFIX}fraud" in done.stdout
    assert f"vision: added {VISION_PERSON} to role {ROLE_PREFIX}vision" in done.stdout
    assert registered_model(world, alice, FRAUD_MODEL) == 403
    assert registered_model(world, (VISION_PERSON, "victor-password-1"), VISION_MODEL) == 200
    # The machine user keeps the team's grants.
    assert registered_model(world, world.machine("fraud"), FRAUD_MODEL) == 200


def test_a_rotated_machine_password_replaces_the_old_one(world):
    old = world.machine("vision")
    (world.passwords / "vision").write_text("vision-machine-password-2")
    done = world.sync(teams_config(fraud={"users": []}))
    assert done.returncode == 0, done.stderr
    assert "vision: reset the password of team-vision to the one in its Secret" in done.stdout.splitlines()
    assert registered_model(world, old, VISION_MODEL) == 401
    assert registered_model(world, world.machine("vision"), VISION_MODEL) == 200


def test_grants_the_job_did_not_make_are_left_alone_and_a_removed_team_loses_role_and_user(world):
    create_user(world, "bob", "bob-password-1")
    grant = {"username": "bob", "resource_type": "registered_model", "resource_id": VISION_MODEL, "permission": "READ"}
    world.as_admin("POST", "/api/3.0/mlflow/users/permissions/grant", json=grant)
    readers = world.as_admin("POST", "/api/3.0/mlflow/roles/create", json={"workspace": "default", "name": "vision-readers"})["role"]
    vision = world.machine("vision")
    done = world.sync(teams_config(fraud={"users": []}, vision=None))
    assert done.returncode == 0, done.stderr
    assert {f"vision: team no longer declared, deleted role {ROLE_PREFIX}vision", "vision: deleted machine user team-vision"} <= set(
        done.stdout.splitlines()
    )
    assert registered_model(world, vision, VISION_MODEL) == 401
    assert registered_model(world, ("bob", "bob-password-1"), VISION_MODEL) == 200
    roles = world.as_admin("GET", "/api/3.0/mlflow/roles/list", params={"workspace": "default"})["roles"]
    assert {role["name"] for role in roles if not role["name"].startswith("__user_")} == {
        f"{ROLE_PREFIX}fraud", f"{ROLE_PREFIX}{SHARED_TEAM}", readers["name"]
    }  # fmt: skip


def test_a_role_under_the_jobs_prefix_that_it_did_not_create_stops_the_run(world):
    world.as_admin("POST", "/api/3.0/mlflow/roles/create", json={"workspace": "default", "name": f"{ROLE_PREFIX}data"})
    done = world.sync()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"MLflow role '{ROLE_PREFIX}data' exists but was not created by this job (its description is not the marker); "
        "rename or delete it so the job can manage the team's grants"
    ]


def test_credentials_that_are_not_the_admins_are_refused_in_one_line(world):
    done = world.sync(environ={"MLFLOW_TRACKING_USERNAME": FRAUD_PERSON, "MLFLOW_TRACKING_PASSWORD": "alice-password-1"})
    assert (done.returncode, done.stderr.splitlines()) == (
        2, [f"MLFLOW_TRACKING_USERNAME='{FRAUD_PERSON}' is not an MLflow admin; the job needs the admin's credentials"]
    )  # fmt: skip
