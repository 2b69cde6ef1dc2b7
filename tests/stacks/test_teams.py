"""mlops:teams through the real program: each team gets its namespace, quota (GPUs always), RBAC and
isolation, its models land there with every identity they need, and configs a team's quota could not
hold are refused before any resource."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mlops.offline.render import Rendering, manifest_of, render
from mlops.offline.validate import ReferenceData, validate_rendering
from mlops.stackfiles import ProjectFiles
from stacks.config import ConfigError, load_stack_config
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.render_monitors import record_monitors

# Prod's two models (fraud-detector on CPUs, image-embedder on one L4 GPU per replica), one per team.
TEAMS = [
    {"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "40", "memory": "100Gi", "gpus": 0}},
    {"name": "vision", "groups": ["vision-engineers", "ml-oncall"], "quota": {"cpu": "40", "memory": "120Gi", "gpus": 4, "pods": 30}},
]
WITH_TEAMS = {"mlops:teams": json.dumps(TEAMS), "mlops:models[0].team": "fraud", "mlops:models[1].team": "vision"}


@pytest.fixture(scope="module", params=["aws", "gcp"])
def rendering(request) -> Rendering:
    return render(PROJECT_DIR, "prod", {**WITH_TEAMS, "mlops:cloud": request.param})


def objects(rendering: Rendering, kind: str) -> dict[tuple[str | None, str], dict[str, Any]]:
    found = {}
    for resource in rendering.resources:
        if resource.is_manifest:
            manifest = manifest_of(resource)
            if manifest["kind"] == kind:
                found[(manifest["metadata"].get("namespace"), manifest["metadata"]["name"])] = manifest
    return found


def test_every_object_passes_validation(rendering):
    assert [str(f) for f in validate_rendering(rendering, ReferenceData(REFERENCE_DIR), "1.35")] == []


def test_each_team_namespace_is_restricted_and_marked_as_running_models(rendering):
    namespaces = objects(rendering, "Namespace")
    for team in ("fraud", "vision"):
        labels = namespaces[(None, f"team-{team}")]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["mlops-platform/models"] == "true"
        assert labels["mlops-platform/team"] == team
    assert namespaces[(None, "mlops-serving")]["metadata"]["labels"]["mlops-platform/models"] == "true"


def test_models_land_in_their_teams_namespace_with_their_service_accounts(rendering):
    services = objects(rendering, "InferenceService")
    assert set(services) == {("team-fraud", "fraud-detector"), ("team-vision", "image-embedder")}
    accounts = set(objects(rendering, "ServiceAccount"))
    for team in ("fraud", "vision"):
        assert {(f"team-{team}", name) for name in ("model-server", "drift-job", "training-job", "batch-job")} <= accounts
    assert ("team-fraud", "fraud-detector-drift") in objects(rendering, "CronJob")
    assert objects(rendering, "PodMonitor")[("team-vision", "mlops-model-image-embedder")]["spec"]["namespaceSelector"] == {
        "matchNames": ["team-vision"]
    }


def test_quota_always_caps_gpus_and_binds_the_teams_groups_to_edit(rendering):
    quotas = objects(rendering, "ResourceQuota")
    assert quotas[("team-fraud", "team-quota")]["spec"]["hard"] == {
        "requests.cpu": "40", "requests.memory": "100Gi", "requests.nvidia.com/gpu": "0", "pods": "100"
    }
    assert quotas[("team-vision", "team-quota")]["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    binding = objects(rendering, "RoleBinding")[("team-vision", "team-edit")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("Group", "vision-engineers"), ("Group", "ml-oncall")]


def test_the_canary_guard_judges_the_model_in_its_teams_namespace(rendering):
    config = json.loads(objects(rendering, "ConfigMap")[("mlops-monitoring", "canary-guard")]["data"]["guard.json"])
    assert [(c["namespace"], c["model"]) for c in config["canaries"]] == [("team-fraud", "fraud-detector")]
    assert ("team-fraud", "canary-guard") in objects(rendering, "RoleBinding")


def test_no_team_policy_admits_another_team_namespace(rendering):
    for (namespace, _), policy in objects(rendering, "NetworkPolicy").items():
        if namespace and namespace.startswith("team-"):
            assert "team-" not in json.dumps(policy["spec"]), policy


def test_cloud_identities_admit_the_model_service_accounts_of_every_model_namespace(rendering):
    namespaces = ("mlops-serving", "team-fraud", "team-vision")
    if rendering.config["mlops:cloud"] == "aws":
        roles = {r.name: r.inputs for r in rendering.resources if r.type == "aws:iam/role:Role"}
        trust = json.loads(roles["irsa-drift-job"]["assumeRolePolicy"])
        (subjects,) = [value for key, value in trust["Statement"][0]["Condition"]["StringEquals"].items() if key.endswith(":sub")]
        assert subjects == [f"system:serviceaccount:{ns}:drift-job" for ns in namespaces]
        mlflow = json.loads(roles["irsa-mlflow"]["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        assert [v for k, v in mlflow.items() if k.endswith(":sub")] == ["system:serviceaccount:mlops-platform:mlflow"]
    else:
        members = sorted(
            r.inputs["member"] for r in rendering.resources if r.type == "gcp:serviceaccount/iAMMember:IAMMember" and "model-server]" in r.inputs["member"]
        )
        assert [m.rsplit("[", 1)[1] for m in members] == [f"{ns}/model-server]" for ns in namespaces]


def test_local_stack_copies_the_object_store_credentials_into_team_namespaces():
    teams = json.dumps([{"name": "fraud", "groups": ["fraud-engineers"], "quota": {"cpu": "20", "memory": "40Gi", "gpus": 0}}])
    dev = render(PROJECT_DIR, "dev", {"mlops:teams": teams, "mlops:models[0].team": "fraud"})
    secrets = objects(dev, "Secret")
    (store_secret,) = {name for ns, name in secrets if ns == "mlops-serving" and "object-store" in name}
    assert ("team-fraud", store_secret) in secrets
    assert validate_rendering(dev, ReferenceData(REFERENCE_DIR), "1.35") == []


# --- refused configs --------------------------------------------------------------------------------


def problems_with(overrides: dict[str, Any]) -> list[str]:
    """Problems of prod with the two teams and `overrides` (top-level keys as values, JSON-encoded)."""
    config = problems_config()
    config.update({key: value if isinstance(value, str) else json.dumps(value) for key, value in overrides.items()})
    try:
        load_stack_config(config)
    except ConfigError as error:
        return [str(problem) for problem in error.problems]
    return []


def teams_with(**quota_changes: dict[str, Any]) -> list[dict[str, Any]]:
    teams = json.loads(json.dumps(TEAMS))
    for team in teams:
        team["quota"].update(quota_changes.get(team["name"], {}))
    return teams


def test_the_two_team_config_is_accepted():
    assert problems_with({}) == []


def test_a_model_of_an_undeclared_team_is_refused():
    models = json.loads(problems_config()["mlops:models"])
    models[0]["team"] = "payments"
    assert problems_with({"mlops:models": models}) == [
        "mlops:models[0].team: unknown team; declared teams (mlops:teams): fraud, vision (got 'payments')"
    ]


def test_a_team_named_twice_is_refused():
    assert problems_with({"mlops:teams": [*TEAMS, TEAMS[0]]}) == [
        "mlops:teams[2].name: name is used by 2 entries; names must be unique (got 'fraud')"
    ]


def test_the_name_of_the_mlflow_sync_jobs_built_in_team_is_refused():
    """`serving` is the MLflow sync job's team of the models without one (access/mlflow_teams.py): a
    declared team of that name would share its role `mlops-team-serving`."""
    teams = json.loads(json.dumps(TEAMS))
    teams[1]["name"] = "serving"
    models = json.loads(problems_config()["mlops:models"])
    models[1]["team"] = "serving"
    assert problems_with({"mlops:teams": teams, "mlops:models": models}) == [
        "mlops:teams[1].name: reserved: MLflow role mlops-team-serving belongs to the models without a team "
        "(namespace mlops-serving); choose another name (got 'serving')"
    ]


def test_a_gpu_quota_below_the_gpu_models_peak_is_refused():
    """image-embedder: maxReplicas 2 x 1 GPU, promoted (no canary replicas), plus its weekly 1-GPU training Job = 3."""
    (problem,) = problems_with({"mlops:teams": teams_with(vision={"gpus": 2})})
    assert problem.startswith("mlops:teams[1].quota.gpus: the team's models (image-embedder) request up to 3 GPU(s) at maxReplicas")
    assert problem.endswith("(got 2)")
    assert problems_with({"mlops:teams": teams_with(vision={"gpus": 3})}) == []


def test_cpu_memory_and_pods_below_the_models_peak_are_refused():
    """fraud-detector: 8 + 2 canary replicas (10 %, at least minReplicas 2) x (1 CPU + 100m logger + 25m queue-proxy)
    = 11.25 CPU, + 250m for a drift run + 2 CPU for the training Job = 13.5 CPU; likewise memory, and 10 + 2 Job pods."""
    found = problems_with({"mlops:teams": teams_with(fraud={"cpu": "13", "memory": "20Gi", "pods": 11})})
    assert [re.match(r"^(\S+): .* request up to (.+?) at maxReplicas", p).groups() for p in found] == [
        ("mlops:teams[0].quota.cpu", "13500m CPU"),
        ("mlops:teams[0].quota.memory", "31976Mi memory"),
        ("mlops:teams[0].quota.pods", "12 pods"),
    ]
    assert problems_with({"mlops:teams": teams_with(fraud={"cpu": "13500m", "memory": "31976Mi", "pods": 12})}) == []


def test_an_alert_route_for_an_undeclared_team_is_refused_once_teams_exist():
    """Prod routes team `fraud`'s alerts; with teams declared, a route's team must be one of them."""
    routes = json.loads(problems_config()["mlops:alerting"])
    routes["teams"][0]["team"] = "fraud-ops"
    assert problems_with({"mlops:alerting": routes}) == [
        "mlops:alerting.teams[0].team: unknown team; declared teams (mlops:teams): fraud, vision (got 'fraud-ops')"
    ]


def problems_config() -> dict[str, str]:
    return ProjectFiles(PROJECT_DIR).stack_config("prod", WITH_TEAMS)


def test_more_teams_than_an_iam_trust_policy_can_list_are_refused_before_any_resource(monkeypatch):
    """Each team adds its namespace's subject to the model workloads' role trust policies; IAM refuses
    one over 2,048 characters (whitespace not counted). 27 namespaces of 25-character names overflow it,
    and the program stops naming mlops:teams before it declares anything on AWS."""
    quota = {"cpu": "1", "memory": "1Gi", "gpus": 0}
    many = [*TEAMS, *({"name": f"t{index:02d}-{'x' * 16}", "groups": ["g"], "quota": quota} for index in range(24))]
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:teams: the \S+ role would trust 27 namespaces in a \d{4}-character trust policy; IAM accepts 2048"):
        render(PROJECT_DIR, "prod", {**WITH_TEAMS, "mlops:teams": json.dumps(many)}, processes=1)
    assert monitors and monitors[0].recorded == []
    # Twenty such teams still fit.
    render(PROJECT_DIR, "prod", {**WITH_TEAMS, "mlops:teams": json.dumps(many[:20])}, processes=1)
