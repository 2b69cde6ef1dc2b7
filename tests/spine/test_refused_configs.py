"""Each class of config that a cluster, Prometheus or a cloud would refuse is refused by the config
loader first: one problem naming the key, the value and what is allowed, before any resource.

The grammars are those of the real parsers (cited in components/formats.py); where a real parser
runs here (promtool), the test asks it and checks both agree.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import node_allocatable
from components.declarations import MODEL_NAME_MAX
from mlops.cli import main
from mlops.offline.render import render
from stacks.config import ConfigError, load_stack_config
from tests.conftest import PROJECT_DIR
from tests.render_monitors import record_monitors

SYSTEM_POOL = {"name": "system", "role": "system", "size": "large", "minSize": 1, "maxSize": 2}


def model(name: str = "churn", **overrides: Any) -> dict[str, Any]:
    declaration = {
        "name": name,
        "model": {"registeredModel": name, "version": "1", "artifactUri": f"s3://bucket/{name}"},
        "monitoring": {"referenceDataUri": f"s3://bucket/reference/{name}.parquet"},
        "retraining": {"webhook": "https://ci.example.com/retrain"},
    }
    declaration.update(overrides)
    return declaration


# EKS and GKE clusters default to a private endpoint: each cloud config here declares the runner's
# way in, so that every test sees only the problem it is about.
CLOUD_CLUSTER = {"runnerCidrs": ["10.100.0.0/24"]}
# Prod stacks page someone for critical alerts (mlops:alerting.criticalReceiver); likewise declared.
PROD_ALERTING = {"receivers": [{"name": "pager", "pagerduty": {"routingKey": "[secret]"}}], "defaultReceiver": "pager", "criticalReceiver": "pager"}


def encoded(raw: dict[str, Any]) -> dict[str, str]:
    if raw.get("mlops:cloud") in ("aws", "gcp"):
        raw = {"mlops:cluster": CLOUD_CLUSTER, **raw}
    if raw.get("mlops:environment") == "prod":
        raw = {"mlops:alerting": PROD_ALERTING, **raw}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}


def problem_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_stack_config(encoded(raw))
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1, problems
    return problems[0]


def accepted(raw: dict[str, Any]) -> None:
    load_stack_config(encoded(raw))


# --- Sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "message"), [
    ("cpu", "0", "'0' requests nothing"),
    ("memory", "0Gi", "'0Gi' requests nothing"),
    ("memory", "2GB", "'2GB' is not a Kubernetes quantity"),
    ("cpu", "-1", "'-1' is not a Kubernetes quantity"),
])
def test_requests_must_be_positive_kubernetes_quantities(key, value, message):
    found = problem_of({"mlops:models": [model(resources={key: value})]})
    assert found.startswith(f"mlops:models[0].resources.{key}: {message}")


@pytest.mark.parametrize(("key", "value"), [("cpu", "250m"), ("cpu", "0.5"), ("cpu", "1e0"), ("memory", "1536Mi"), ("memory", "1.5Gi"), ("memory", "2G")])
def test_kubernetes_quantity_forms_are_accepted(key, value):
    accepted({"mlops:models": [model(resources={key: value})]})


def test_memory_beyond_one_node_of_the_pool_is_refused():
    """A 512Gi replica on a 32 GiB node (aws system pool, size large = m6i.2xlarge)."""
    found = problem_of({"mlops:cloud": "aws", "mlops:nodePools": [SYSTEM_POOL], "mlops:models": [model(resources={"memory": "512Gi"})]})
    assert found.startswith("mlops:models[0].resources.memory: one replica needs more memory than a node of pool 'system' (m6i.2xlarge)")


def test_a_replica_is_measured_against_allocatable_not_capacity():
    """32Gi is the m6i.2xlarge's capacity; the EKS AMI reserves 255Mi + 11Mi x 58 pods and the kubelet
    evicts below 100Mi, so 31775Mi is what the scheduler can place."""
    assert node_allocatable("aws", "m6i.2xlarge").memory_mib == 32 * 1024 - (255 + 11 * 58) - 100
    pools = {"mlops:cloud": "aws", "mlops:nodePools": [SYSTEM_POOL]}
    accepted({**pools, "mlops:models": [model(resources={"memory": "31775Mi"})]})
    assert "memory" in problem_of({**pools, "mlops:models": [model(resources={"memory": "32Gi"})]})


def test_gke_allocatable_follows_the_published_tiers():
    """GKE reserves 25 % of the first 4 GiB, 20 % of the next 4 and 10 % of the next 8: 2.6 GiB of 16."""
    assert node_allocatable("gcp", "n2-standard-4").memory_mib == int(16 * 1024 - 0.25 * 4096 - 0.2 * 4096 - 0.1 * 8192 - 100)
    assert node_allocatable("gcp", "n2-standard-4").millicpu == 4000 - 60 - 10 - 10


def test_cpu_beyond_the_gpu_pool_a_model_is_pinned_to_is_refused():
    gpu_pool = {"name": "gpu", "role": "gpu", "size": "medium", "accelerator": "nvidia-l4", "maxSize": 2}
    found = problem_of({
        "mlops:cloud": "gcp",
        "mlops:nodePools": [SYSTEM_POOL, gpu_pool],
        "mlops:models": [model(resources={"cpu": "6", "gpus": 1, "gpuPool": "gpu"})],
    })
    assert found.startswith("mlops:models[0].resources.cpu: one replica needs more CPU than a node of pool 'gpu' (g2-standard-4)")


def test_pool_sizes_beyond_the_cloud_limit_are_refused():
    found = problem_of({"mlops:cloud": "aws", "mlops:nodePools": [{**SYSTEM_POOL, "maxSize": 100000}]})
    assert found == "mlops:nodePools[0].maxSize: aws allows at most 450 nodes in this pool (got 100000)"
    gcp = problem_of({"mlops:cloud": "gcp", "mlops:nodePools": [{**SYSTEM_POOL, "maxSize": 3001}], "mlops:gcp": {"podsCidr": "10.128.0.0/10"}})
    assert gcp == "mlops:nodePools[0].maxSize: gcp allows at most 3000 nodes in this pool (got 3001)"


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_numbers_that_are_not_finite_are_refused(number):
    # JSON text as a stack file would carry it; Python's json decodes 1e999 to infinity.
    text = json.dumps([model(canary={"trafficPercent": 10, "gates": {"maxP99LatencyMs": "NUMBER"}})])
    raw = {"mlops:models": text.replace('"NUMBER"', number)}
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw)
    assert [str(p) for p in caught.value.problems][0].startswith("mlops:models[0].canary.gates.maxP99LatencyMs: Input should be a finite number")


# --- Names and labels ----------------------------------------------------------------------------


def test_the_longest_model_name_renders_within_every_kubernetes_limit(tmp_path: Path):
    """The limit comes from the derived names: render a model with a name of exactly MODEL_NAME_MAX
    characters and measure every name and label value that carries it."""
    name = "m" * (MODEL_NAME_MAX - 2) + "-x"
    stack = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    declaration = {**stack["mlops:models"][0], "name": name}
    rendering = render(PROJECT_DIR, "dev", {"mlops:models": json.dumps([declaration])})
    derived = [r.inputs for r in rendering.resources if r.is_manifest and name in json.dumps(r.inputs)]
    assert derived
    for manifest in derived:
        metadata = manifest.get("metadata", {})
        limit = 52 if manifest.get("kind") == "CronJob" else 253
        assert len(metadata.get("name", "")) <= limit, metadata
        for value in metadata.get("labels", {}).values():
            assert len(value) <= 63, metadata
    # KServe's Knative Service, its revision label and its tag-routing host, from the isvc name.
    (isvc,) = [m for m in derived if m.get("kind") == "InferenceService"]
    assert len(f"latest-{isvc['metadata']['name']}-predictor") == 63


def test_a_model_name_one_character_longer_is_refused():
    name = "m" * (MODEL_NAME_MAX + 1)
    found = problem_of({"mlops:models": [model(name=name)]})
    assert found.startswith(f"mlops:models[0].name: CronJob '{name}-drift' would be {MODEL_NAME_MAX + 7} characters, above Kubernetes' 52")


def test_an_alias_that_cannot_be_a_label_value_is_refused():
    reference = {"registeredModel": "churn", "alias": "champion model!", "artifactUri": "s3://bucket/churn"}
    found = problem_of({"mlops:models": [model(model=reference)]})
    assert found.startswith("mlops:models[0].model.alias: 'champion model!' becomes a Kubernetes label value")


# --- Schedules and durations ----------------------------------------------------------------------

# robfig/cron v3.0.1 ParseStandard as Kubernetes' CronJob validation calls it.
CRON_VERDICTS = {
    "0 24 * * *": "hour field '24': 24 is above the maximum 23",
    "61 25 32 13 8": "minute field '61': 61 is above the maximum 59",
    "* * * *": "a cron schedule has 5 fields",
    "0 0 * * 7": "day of week field '7': 7 is above the maximum 6",
    "*/0 * * * *": "minute field '*/0': step '0' must be a positive number",
    "5-1 * * * *": "minute field '5-1': range 5-1 runs backwards",
    "CRON_TZ=UTC 0 * * * *": "time zones are not allowed",
    "@fortnightly": "unknown descriptor",
    "0 0 1 jan-mar mon-fri": None,
    "*/15 9-17 * * 1-5": None,
    "0 0 * * ?": None,
    "5/10 * * * *": None,
    "@hourly": None,
    "@every 90m": None,
}


@pytest.mark.parametrize("schedule", sorted(CRON_VERDICTS))
@pytest.mark.parametrize("key", ["monitoring.driftSchedule", "retraining.schedule"])
def test_schedules_are_parsed_as_kubernetes_parses_them(schedule, key):
    section, field = key.split(".")
    overrides = {
        "monitoring": {"referenceDataUri": "s3://bucket/ref.parquet", field: schedule},
    } if section == "monitoring" else {
        "retraining": {"schedule": schedule, "policy": "scheduled", "job": {"dataUri": "s3://bucket/training/"}},
        "monitoring": {"referenceDataUri": "s3://bucket/ref.parquet", "task": "classification"},
    }
    raw = {"mlops:models": [model(**overrides)]}
    if CRON_VERDICTS[schedule] is None:
        accepted(raw)
    else:
        found = problem_of(raw)
        assert found.startswith(f"mlops:models[0].{key}: {schedule!r} is not a schedule Kubernetes accepts: {CRON_VERDICTS[schedule]}")


@pytest.mark.parametrize("window", ["0m", "0s", "10m", "1h", "90s", "1h30m", "1w", "500ms", "1.5h", "10M", "30m1h"])
def test_durations_are_refused_exactly_when_promtool_refuses_them(tmp_path: Path, window):
    """The gate window becomes a PromQL range: ask promtool (Prometheus 2.42) what it accepts."""
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": f"rate(x_total[{window}]) > 0"}]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    promtool = subprocess.run(["promtool", "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    raw = {"mlops:models": [model(canary={"trafficPercent": 10, "gates": {"window": window}})]}
    try:
        load_stack_config(encoded(raw))
        refused = False
    except ConfigError as error:
        (problem,) = error.problems
        assert problem.path == "mlops:models[0].canary.gates.window"
        refused = True
    assert refused == (promtool.returncode != 0), promtool.stdout + promtool.stderr


def test_zero_retention_is_refused():
    assert problem_of({"mlops:monitoring": {"retention": "0d"}}).startswith("mlops:monitoring.retention: '0d' is zero")


# --- Geography and networks ------------------------------------------------------------------------


def test_unknown_region_is_refused_with_the_known_ones():
    found = problem_of({"mlops:cloud": "aws", "mlops:aws": {"region": "us-nowhere-9", "zones": ["us-nowhere-9a", "us-nowhere-9b"]}})
    assert found.startswith("mlops:aws.region: aws has no such region; regions: af-south-1,")


def test_a_zone_must_be_the_region_and_one_letter():
    found = problem_of({"mlops:cloud": "gcp", "mlops:gcp": {"zones": ["us-central1-a", "us-central1-zz"]}})
    assert found == "mlops:gcp.zones[1]: a zone is the region followed by -one letter (got 'us-central1-zz')"


def test_prod_gke_in_a_single_zone_is_refused():
    raw = {"mlops:cloud": "gcp", "mlops:environment": "prod", "mlops:gcp": {"zones": ["us-central1-a"]}}
    assert problem_of(raw).startswith("mlops:gcp.zones: prod spans 3 zones")


@pytest.mark.parametrize(("settings", "message"), [
    ({"vpcCidr": "10.40.0.0/33"}, "mlops:aws.vpcCidr: not a CIDR with its host bits zero"),
    ({"vpcCidr": "10.40.0.1/16"}, "mlops:aws.vpcCidr: not a CIDR with its host bits zero"),
    ({"vpcCidr": "10.0.0.0/8"}, "mlops:aws.vpcCidr: AWS VPCs are /16 to /28"),
    ({"vpcCidr": "10.40.0.0/24"}, "mlops:aws.vpcCidr: vpcCidr '10.40.0.0/24' is too small for EKS subnets"),
])
def test_aws_vpc_cidrs_that_aws_or_the_subnet_plan_refuse(settings, message):
    assert problem_of({"mlops:cloud": "aws", "mlops:nodePools": [SYSTEM_POOL], "mlops:aws": settings}).startswith(message)


@pytest.mark.parametrize(("settings", "message"), [
    ({"podsCidr": "10.48.0.0/14"}, "mlops:gcp.podsCidr: overlaps mlops:gcp.networkCidr (10.50.0.0/20)"),
    ({"podsCidr": "10.64.0.0/24"}, "mlops:gcp.podsCidr: holds 1 node /24 block(s) but the pools may grow to 2 nodes"),
    ({"controlPlaneCidr": "172.16.0.0/27"}, "mlops:gcp.controlPlaneCidr: GKE's private control plane takes exactly a /28"),
    ({"servicesCidr": "not-a-cidr"}, "mlops:gcp.servicesCidr: not a CIDR"),
])
def test_gke_ranges_that_gcp_would_refuse(settings, message):
    assert problem_of({"mlops:cloud": "gcp", "mlops:nodePools": [SYSTEM_POOL], "mlops:gcp": settings}).startswith(message)


GPU_ON_LOCAL = {
    "mlops:nodePools[1]": json.dumps({"name": "gpu", "role": "gpu", "accelerator": "nvidia-t4", "maxSize": 1}),
    "mlops:models[0].resources.gpus": "1",
    "mlops:models[0].resources.gpuPool": "gpu",
}


@pytest.mark.parametrize(
    ("stack", "overrides", "message"),
    [
        # Both used to fail late: a ValueError traceback after 2 resources, a ConfigError after 78.
        ("prod", {"mlops:aws.vpcCidr": "10.40.0.0/33"}, r"mlops:aws.vpcCidr: not a CIDR"),
        ("dev", GPU_ON_LOCAL, r"mlops:models\[0\].resources.gpus: GPU models need a cloud stack"),
    ],
    ids=["invalid-vpc-cidr", "gpu-model-on-local"],
)
def test_config_errors_stop_the_program_before_any_resource(monkeypatch, stack, overrides, message):
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=message):
        render(PROJECT_DIR, stack, overrides)
    assert monitors and monitors[0].recorded == []


# --- Locations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model": {"registeredModel": "churn", "version": "1", "artifactUri": "ftp://host/model"}},
     "mlops:models[0].model.artifactUri: 'ftp://host/model': KServe's storage initializer reads only s3://"),
    ({"monitoring": {"referenceDataUri": "ftp://host/ref.parquet"}},
     "mlops:models[0].monitoring.referenceDataUri: 'ftp://host/ref.parquet': the drift job reads only s3://, gs://, runs:/, models:/"),
    ({"monitoring": {"referenceDataUri": "/home/me/ref.parquet"}},
     "mlops:models[0].monitoring.referenceDataUri: '/home/me/ref.parquet': the drift job reads only"),
    ({"monitoring": {"referenceDataUri": ""}}, "mlops:models[0].monitoring.referenceDataUri: '': the drift job reads only"),
    ({"retraining": {"webhook": "https://ci.example.com/\nretrain"}},
     "mlops:models[0].retraining.webhook: 'https://ci.example.com/\\nretrain' contains whitespace or a control character"),
])
def test_locations_the_reader_cannot_read_are_refused(overrides, message):
    assert problem_of({"mlops:models": [model(**overrides)]}).startswith(message)


def test_an_empty_kube_context_is_refused():
    found = problem_of({"mlops:local": {"kubeContext": ""}})
    assert found.startswith("mlops:local.kubeContext: empty: the provider would use whatever context kubectl points at")


def test_a_ui_host_must_be_a_dns_name():
    assert problem_of({"mlops:mlflow": {"hostname": "MLflow Server"}}).startswith("mlops:mlflow.hostname: a host name is a lowercase DNS name")


# --- Canary gates ------------------------------------------------------------------------------------


def test_render_shows_each_canarys_gates_and_which_are_defaults(capsys, tmp_path):
    """Gates left to defaults are not refused (rollbacks restore such declarations) but never silent."""
    code = main([
        "render", "--stack", "prod", "--project-dir", str(PROJECT_DIR), "--out", str(tmp_path),
        "--config", 'mlops:models[0].canary={"trafficPercent": 10, "gates": {"window": "5m"}}',
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert "canary gates of fraud-detector: maxErrorRate 0.01 (default), maxP99LatencyMs 500.0 (default), minRequestCount 100 (default), window 5m" in out
    assert "canary gates of image-embedder: maxErrorRate 0.02, maxP99LatencyMs 800.0, minRequestCount 200, window 30m" in out
