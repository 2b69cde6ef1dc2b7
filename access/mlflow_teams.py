"""Team permissions in MLflow: `python -m access.mlflow_teams --config FILE --passwords-dir DIR`.

The tracking server runs MLflow's basic-auth app with `default_permission = NO_PERMISSIONS` once
teams are declared, so a user sees only what a grant gives. This job makes MLflow's grants follow
the teams the stack declares, through MLflow's role API (`/api/3.0/mlflow/roles/...`, MLflow 3.15
and later), as the admin (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD):

- one role `mlops-team-<team>` per team in MLflow's `default` workspace (the only one while
  MLflow's workspaces are off), holding MANAGE on each of the team's registered models (by name:
  a grant may precede the model), on each experiment whose name starts with the team's prefix
  (`/teams/<team>/`) and on each experiment the config names (its models' training experiments).
  Experiment grants name an id, so experiments created later are picked up by the next run: the
  job runs on a schedule;
- the models of the shared serving namespace (models without a team) are the built-in team
  SHARED_TEAM: role `mlops-team-serving`, machine user `mlops-serving` (a team cannot be named
  SHARED_TEAM: stacks/config/rules.py refuses it);
- the role is assigned to the team's machine user `team-<team>` (created here, its password read
  from `<passwords-dir>/<team>`, reset when it no longer authenticates) and to the team's listed
  MLflow users, which must exist: people are created by an MLflow admin (they choose passwords),
  so a missing one is reported and the job exits 3 after applying everything else;
- what the job manages is recorded in MLflow itself: roles named `mlops-team-*` whose description
  is MANAGED_MARKER. Grants and assignments the config no longer gives are removed from those
  roles; a role whose team is gone is deleted with its machine user. Per-user grants (MLflow gives
  a creator MANAGE on what they create) and every other role are never touched.

Exit codes: 0 in sync; 2 invalid config, environment or a conflicting role (one line naming it);
3 in sync except listed users missing from MLflow; 6 MLflow refused a call or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

EXIT_OK, EXIT_CONFIG_ERROR, EXIT_USERS_MISSING, EXIT_MLFLOW_ERROR = 0, 2, 3, 6
# With MLflow's workspaces off every resource belongs to this workspace, and roles must name it.
WORKSPACE = "default"
ROLE_PREFIX = "mlops-team-"
MANAGED_MARKER = "Managed by access.mlflow_teams (mlops-platform): grants and members follow mlops:teams."
PERMISSION = "MANAGE"
REGISTERED_MODEL, EXPERIMENT = "registered_model", "experiment"
TIMEOUT_SECONDS = 30
SEARCH_PAGE = 1000
ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

# The models without a team, in namespace mlops-serving: a team in all but its machine user's name.
SHARED_TEAM = "serving"
SHARED_MACHINE_USER = "mlops-serving"

TeamName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]


def machine_user(team: str) -> str:
    """The MLflow user a team's jobs authenticate as (named after the team's namespace)."""
    return SHARED_MACHINE_USER if team == SHARED_TEAM else f"team-{team}"


def role_name(team: str) -> str:
    return f"{ROLE_PREFIX}{team}"


class TeamAccess(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: TeamName
    users: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    registered_models: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, alias="registeredModels")
    # Quoted into a LIKE filter: no quotes, no LIKE wildcards (% and _). None: no prefix is the team's.
    experiment_prefix: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9./-]+/$", alias="experimentPrefix")
    # Experiments by exact name (granted once they exist), e.g. the team's training experiments.
    experiments: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class TeamsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teams: list[TeamAccess]

    @field_validator("teams")
    @classmethod
    def _unique_names(cls, teams: list[TeamAccess]) -> list[TeamAccess]:
        names = [team.name for team in teams]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"team names must be unique; repeated: {repeated}")
        return teams


class ConfigError(Exception):
    """Bad input: the message is the one line the job prints."""


class MlflowError(Exception):
    """MLflow refused a call (`status`: its HTTP status) or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def load_config(path: Path) -> TeamsConfig:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"--config {path}: not JSON ({error})") from error
    try:
        return TeamsConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        # The value when it is one; a whole list or mapping would bury the line.
        given = first.get("input")
        value = "" if first["type"] == "missing" or isinstance(given, (dict, list)) else f"={given!r}"
        raise ConfigError(f"--config {path}: {where}{value}: {first['msg']}") from error


def read_password(passwords_dir: Path, team: str) -> str:
    path = passwords_dir / team
    try:
        password = path.read_text().strip()
    except OSError as error:
        raise ConfigError(f"--passwords-dir {passwords_dir}: the password of {machine_user(team)} ({path}) cannot be read ({error.strerror})") from error
    if not password:
        raise ConfigError(f"--passwords-dir {passwords_dir}: the password of {machine_user(team)} ({path}) is empty")
    return password


class AdminClient:
    """The few calls of MLflow's auth and tracking REST API the sync needs, as the admin."""

    def __init__(self, tracking_uri: str, username: str, password: str):
        self.base = tracking_uri.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (username, password)

    def _call(self, method: str, path: str, *, auth: tuple[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base}{path}"
        try:
            if auth is None:
                response = self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
            else:
                response = requests.request(method, url, auth=auth, timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as error:
            raise MlflowError(f"cannot reach MLflow at {self.base}: {error}") from error
        if response.status_code != 200:
            raise MlflowError(f"MLflow refused {method} {path}: HTTP {response.status_code} {_message(response)}", response.status_code)
        try:
            return response.json() if response.content else {}
        except ValueError as error:
            raise MlflowError(f"MLflow answered {method} {path} with something other than JSON: {response.text[:300]}") from error

    def current_user(self) -> dict[str, Any]:
        return self._call("GET", "/api/2.0/mlflow/users/current")["user"]

    def authenticates(self, username: str, password: str) -> bool:
        try:
            self._call("GET", "/api/2.0/mlflow/users/current", auth=(username, password))
        except MlflowError as error:
            if error.status == 401:
                return False
            raise
        return True

    def user_ids(self) -> dict[str, int]:
        return {user["username"]: int(user["id"]) for user in self._call("GET", "/api/2.0/mlflow/users/list")["users"]}

    def create_user(self, username: str, password: str) -> int:
        return int(self._call("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})["user"]["id"])

    def update_password(self, username: str, password: str) -> None:
        self._call("PATCH", "/api/2.0/mlflow/users/update-password", json={"username": username, "password": password})

    def delete_user(self, username: str) -> None:
        self._call("DELETE", "/api/2.0/mlflow/users/delete", json={"username": username})

    def roles(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/3.0/mlflow/roles/list", params={"workspace": WORKSPACE})["roles"]

    def create_role(self, name: str) -> dict[str, Any]:
        body = {"workspace": WORKSPACE, "name": name, "description": MANAGED_MARKER}
        return self._call("POST", "/api/3.0/mlflow/roles/create", json=body)["role"]

    def delete_role(self, role_id: int) -> None:
        self._call("DELETE", "/api/3.0/mlflow/roles/delete", json={"role_id": role_id})

    def add_permission(self, role_id: int, resource_type: str, pattern: str) -> None:
        body = {"role_id": role_id, "resource_type": resource_type, "resource_pattern": pattern, "permission": PERMISSION}
        self._call("POST", "/api/3.0/mlflow/roles/permissions/add", json=body)

    def update_permission(self, permission_id: int) -> None:
        self._call("PATCH", "/api/3.0/mlflow/roles/permissions/update", json={"role_permission_id": permission_id, "permission": PERMISSION})

    def remove_permission(self, permission_id: int) -> None:
        self._call("DELETE", "/api/3.0/mlflow/roles/permissions/remove", json={"role_permission_id": permission_id})

    def member_ids(self, role_id: int) -> set[int]:
        assignments = self._call("GET", "/api/3.0/mlflow/roles/users/list", params={"role_id": str(role_id)})["assignments"]
        return {int(assignment["user_id"]) for assignment in assignments}

    def assign(self, username: str, role_id: int) -> None:
        self._call("POST", "/api/3.0/mlflow/roles/assign", json={"username": username, "role_id": role_id})

    def unassign(self, username: str, role_id: int) -> None:
        self._call("DELETE", "/api/3.0/mlflow/roles/unassign", json={"username": username, "role_id": role_id})

    def experiment_id(self, name: str) -> str | None:
        """The id of the experiment named `name`; None while nobody has created it."""
        try:
            return str(self._call("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})["experiment"]["experiment_id"])
        except MlflowError as error:
            if error.status == 404:
                return None
            raise

    def experiment_ids(self, prefix: str) -> list[str]:
        """Every experiment (deleted ones too, so a team can restore its own) named under `prefix`."""
        found: list[str] = []
        page_token = None
        while True:
            body: dict[str, Any] = {"max_results": SEARCH_PAGE, "filter": f"name LIKE '{prefix}%'", "view_type": "ALL"}
            if page_token:
                body["page_token"] = page_token
            page = self._call("POST", "/api/2.0/mlflow/experiments/search", json=body)
            # LIKE is case-insensitive on some backends: the prefix is checked exactly here.
            found += [e["experiment_id"] for e in page.get("experiments", []) if e["name"].startswith(prefix)]
            page_token = page.get("next_page_token")
            if not page_token:
                return sorted(found, key=int)


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", body) if isinstance(body, dict) else body)[:300]


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)
    missing_users: list[tuple[str, str]] = field(default_factory=list)


def managed_roles(client: AdminClient) -> dict[str, dict[str, Any]]:
    """This job's roles by team; a role under its prefix that it did not create stops the run."""
    roles: dict[str, dict[str, Any]] = {}
    for role in client.roles():
        if not role["name"].startswith(ROLE_PREFIX):
            continue
        if role.get("description") != MANAGED_MARKER:
            raise ConfigError(
                f"MLflow role {role['name']!r} exists but was not created by this job (its description is not the marker); "
                "rename or delete it so the job can manage the team's grants"
            )
        roles[role["name"].removeprefix(ROLE_PREFIX)] = role
    return roles


def sync(client: AdminClient, config: TeamsConfig, passwords: Mapping[str, str]) -> Report:
    report = Report()
    roles = managed_roles(client)
    users = client.user_ids()
    for team in config.teams:
        _sync_machine_user(client, team.name, passwords[team.name], users, report)
        role = roles.get(team.name)
        if role is None:
            role = client.create_role(role_name(team.name))
            report.changes.append(f"{team.name}: created role {role['name']}")
        _sync_grants(client, team, role, report)
        _sync_members(client, team, role, users, report)
    for team_name in sorted(set(roles) - {team.name for team in config.teams}):
        client.delete_role(int(roles[team_name]["id"]))
        report.changes.append(f"{team_name}: team no longer declared, deleted role {role_name(team_name)}")
        if machine_user(team_name) in users:
            client.delete_user(machine_user(team_name))
            report.changes.append(f"{team_name}: deleted machine user {machine_user(team_name)}")
    return report


def _sync_machine_user(client: AdminClient, team: str, password: str, users: dict[str, int], report: Report) -> None:
    username = machine_user(team)
    if username not in users:
        users[username] = client.create_user(username, password)
        report.changes.append(f"{team}: created machine user {username}")
    elif not client.authenticates(username, password):
        client.update_password(username, password)
        report.changes.append(f"{team}: reset the password of {username} to the one in its Secret")


def _sync_grants(client: AdminClient, team: TeamAccess, role: dict[str, Any], report: Report) -> None:
    wanted = {(REGISTERED_MODEL, name) for name in team.registered_models}
    if team.experiment_prefix is not None:
        wanted |= {(EXPERIMENT, experiment) for experiment in client.experiment_ids(team.experiment_prefix)}
    named = (client.experiment_id(name) for name in team.experiments)
    wanted |= {(EXPERIMENT, experiment) for experiment in named if experiment is not None}
    held = {(p["resource_type"], p["resource_pattern"]): p for p in role.get("permissions", [])}
    role_id = int(role["id"])
    for resource_type, pattern in sorted(wanted - held.keys()):
        client.add_permission(role_id, resource_type, pattern)
        report.changes.append(f"{team.name}: granted {PERMISSION} on {resource_type} {pattern}")
    for key in sorted(wanted & held.keys()):
        if held[key]["permission"] != PERMISSION:
            client.update_permission(int(held[key]["id"]))
            report.changes.append(f"{team.name}: set {key[0]} {key[1]} back to {PERMISSION} (was {held[key]['permission']})")
    for key in sorted(held.keys() - wanted):
        client.remove_permission(int(held[key]["id"]))
        report.changes.append(f"{team.name}: revoked {held[key]['permission']} on {key[0]} {key[1]}")


def _sync_members(client: AdminClient, team: TeamAccess, role: dict[str, Any], users: dict[str, int], report: Report) -> None:
    missing = [user for user in team.users if user not in users]
    report.missing_users += [(team.name, user) for user in missing]
    wanted = {machine_user(team.name), *(user for user in team.users if user in users)}
    names = {user_id: name for name, user_id in users.items()}
    role_id = int(role["id"])
    members = {names[user_id] for user_id in client.member_ids(role_id) if user_id in names}
    for username in sorted(wanted - members):
        client.assign(username, role_id)
        report.changes.append(f"{team.name}: added {username} to role {role['name']}")
    for username in sorted(members - wanted):
        client.unassign(username, role_id)
        report.changes.append(f"{team.name}: removed {username} from role {role['name']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m access.mlflow_teams", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        help=f"JSON file: {{teams: [{{name, users, registeredModels, experimentPrefix, experiments}}]}}; team {SHARED_TEAM!r} holds the models without a team",
    )
    parser.add_argument("--passwords-dir", type=Path, required=True, help="directory holding one file per team (named after it): its machine user's password")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        unset = [name for name in ENVIRONMENT if not environ.get(name, "").strip()]
        if unset:
            raise ConfigError(f"{', '.join(unset)} must be set: the tracking server and its admin's credentials")
        config = load_config(args.config)
        passwords = {team.name: read_password(args.passwords_dir, team.name) for team in config.teams}
        client = AdminClient(environ["MLFLOW_TRACKING_URI"], environ["MLFLOW_TRACKING_USERNAME"], environ["MLFLOW_TRACKING_PASSWORD"])
        admin = client.current_user()
        if not admin.get("is_admin"):
            raise ConfigError(f"MLFLOW_TRACKING_USERNAME={admin.get('username')!r} is not an MLflow admin; the job needs the admin's credentials")
        report = sync(client, config, passwords)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except MlflowError as error:
        print(error, file=sys.stderr)
        return EXIT_MLFLOW_ERROR
    for change in report.changes:
        print(change)
    for team, user in report.missing_users:
        print(f"team {team}: MLflow user {user!r} does not exist; an MLflow admin creates it, the next run adds it to the team", file=sys.stderr)
    print(f"{len(config.teams)} teams in sync, {len(report.changes)} changes")
    return EXIT_USERS_MISSING if report.missing_users else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
