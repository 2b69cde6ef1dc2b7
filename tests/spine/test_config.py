"""Stack config rules, one by one: each bad input stops the program with a message naming the
key path, the bad value and what is allowed."""

from __future__ import annotations

import json

import pytest
import yaml

from mlops.offline.project_config import declared_config
from mlops.stackfiles import ProjectFiles
from stacks.config import ConfigError, load_stack_config
from tests.conftest import PROJECT_DIR

SYSTEM_POOL = {"name": "system", "role": "system", "minSize": 1, "maxSize": 2}


# A declared way into a private API endpoint (an in-VPC runner network), which aws/gcp stacks need.
WAY_IN = {"runnerCidrs": ["10.100.0.0/24"]}

def model(name: str = "churn", **overrides) -> dict:
    declaration = {
        "name": name,
        "model": {"registeredModel": name, "version": "1", "artifactUri": f"s3://bucket/{name}"},
        "monitoring": {"referenceDataUri": f"s3://bucket/reference/{name}.parquet"},
        "retraining": {"webhook": "https://ci.example.com/retrain"},
    }
    declaration.update(overrides)
    return declaration


def problems_of(raw: dict[str, object]) -> list[str]:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    with pytest.raises(ConfigError) as caught:
        load_stack_config(encoded)
    return [str(p) for p in caught.value.problems]


def test_defaults_are_a_valid_local_dev_stack():
    """An empty config is the embedded default: local, dev, one system pool."""
    config = load_stack_config({})
    assert (config.cloud, config.environment) == ("local", "dev")
    assert [p.name for p in config.node_pools] == ["system"]


def test_unknown_cloud_names_the_allowed_clouds():
    assert problems_of({"mlops:cloud": "azure"}) == [
        "mlops:cloud: Input should be 'aws', 'gcp' or 'local' (got 'azure')"
    ]


def test_unknown_top_level_key_lists_the_allowed_keys():
    (problem,) = problems_of({"mlops:clud": "aws"})
    assert problem.startswith("mlops:clud: unknown key; allowed keys: mlops:cloud, mlops:environment")
    assert "(got 'aws')" in problem


def test_typo_in_a_deeply_nested_key_is_rejected_with_its_path():
    """A typo four levels down (canary.gates) is named with its full path and the valid keys."""
    bad = model(canary={"trafficPercent": 10, "gates": {"maxErrorRat": 0.05}})
    (problem,) = problems_of({"mlops:models": [bad]})
    assert problem.startswith("mlops:models[0].canary.gates.maxErrorRat: unknown key; allowed keys here: maxErrorRate,")
    assert "(got 0.05)" in problem


def test_other_namespaces_are_left_to_their_providers():
    """`aws:region` or `kubernetes:context` belong to providers, not to this schema."""
    assert load_stack_config({"aws:region": "eu-west-1", "mlops:cloud": "local"}).cloud == "local"


def test_gpu_pool_with_max_below_min():
    pool = {"name": "gpu", "role": "gpu", "accelerator": "nvidia-t4", "minSize": 3, "maxSize": 1}
    (problem,) = problems_of({"mlops:nodePools": [SYSTEM_POOL, pool]})
    assert problem == "mlops:nodePools[1]: maxSize 1 is below minSize 3; maxSize must be >= minSize (got " + repr(pool) + ")"


def test_accelerator_unknown_to_the_chosen_cloud_lists_what_the_cloud_offers():
    pool = {"name": "gpu", "role": "gpu", "accelerator": "nvidia-a10g", "maxSize": 1}
    (problem,) = problems_of({"mlops:cloud": "gcp", "mlops:cluster": WAY_IN, "mlops:nodePools": [SYSTEM_POOL, pool]})
    assert problem == (
        "mlops:nodePools[1].accelerator: accelerator 'nvidia-a10g' is not offered on gcp; allowed on gcp: "
        "nvidia-a100-40gb, nvidia-h100-80gb, nvidia-l4, nvidia-t4 (got 'nvidia-a10g')"
    )


def test_accelerator_not_offered_in_the_region():
    pool = {"name": "gpu", "role": "gpu", "accelerator": "nvidia-h100-80gb", "acceleratorCount": 8, "size": "xlarge", "maxSize": 1}
    aws = {"region": "eu-west-1", "zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}
    (problem,) = problems_of({"mlops:cloud": "aws", "mlops:aws": aws, "mlops:cluster": WAY_IN, "mlops:nodePools": [SYSTEM_POOL, pool]})
    assert "not offered in aws region 'eu-west-1'; regions offering it: us-east-1, us-east-2, us-west-2" in problem


def test_unknown_accelerator_name_lists_the_known_ones():
    pool = {"name": "gpu", "role": "gpu", "accelerator": "nvidia-v100", "maxSize": 1}
    (problem,) = problems_of({"mlops:nodePools": [SYSTEM_POOL, pool]})
    assert problem.startswith("mlops:nodePools[1].accelerator: Input should be 'nvidia-t4', 'nvidia-l4'")


@pytest.mark.parametrize("percent", [-1, 101, 250])
def test_canary_percent_outside_0_to_100(percent):
    (problem,) = problems_of({"mlops:models": [model(canary={"trafficPercent": percent})]})
    assert problem.startswith("mlops:models[0].canary.trafficPercent: Input should be")
    assert f"(got {percent})" in problem


def test_two_models_with_the_same_name():
    (problem,) = problems_of({"mlops:models": [model("churn"), model("fraud"), model("churn")]})
    assert problem == "mlops:models[2].name: name is used by 2 entries; names must be unique (got 'churn')"


def test_model_without_observability_is_refused():
    declaration = model()
    del declaration["monitoring"]
    (problem,) = problems_of({"mlops:models": [declaration]})
    assert problem.startswith("mlops:models[0].monitoring: a model cannot be deployed without observability")


def test_model_without_retraining_strategy_is_refused():
    declaration = model()
    del declaration["retraining"]
    (problem,) = problems_of({"mlops:models": [declaration]})
    assert "mlops:models[0].retraining: a model cannot be deployed without a retraining strategy" in problem


def test_gpu_model_must_name_an_existing_gpu_pool():
    declaration = model(resources={"gpus": 1, "gpuPool": "gpu-a100"})
    pool = {"name": "gpu-t4", "role": "gpu", "accelerator": "nvidia-t4", "maxSize": 2}
    cluster = {"runnerCidrs": ["10.100.0.0/24"]}  # a GKE cluster's private endpoint needs a declared way in
    (problem,) = problems_of(
        {"mlops:cloud": "gcp", "mlops:cluster": cluster, "mlops:nodePools": [SYSTEM_POOL, pool], "mlops:models": [declaration]}
    )
    assert problem == "mlops:models[0].resources.gpuPool: no GPU pool of that name; GPU pools: gpu-t4 (got 'gpu-a100')"


def test_an_aws_stack_without_a_system_pool_is_refused():
    """The cluster autoscaler is pinned to the system pool: without one it would never schedule."""
    pools = [{"name": "cpu", "role": "cpu", "minSize": 1, "maxSize": 3}]
    (problem,) = problems_of({"mlops:cloud": "aws", "mlops:cluster": WAY_IN, "mlops:nodePools": pools})
    assert problem == "mlops:nodePools: an aws stack needs a pool with role 'system': the cluster autoscaler runs there (got ['cpu'])"
    config = {"mlops:cloud": "gcp", "mlops:cluster": json.dumps(WAY_IN), "mlops:nodePools": json.dumps(pools)}
    assert load_stack_config(config).cloud == "gcp"


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_a_private_only_cluster_needs_a_declared_way_in(cloud):
    """Without one, `pulumi up` creates the cluster and then cannot reach it to create a single object."""
    (problem,) = problems_of({"mlops:cloud": cloud})
    assert problem.startswith("mlops:cluster.runnerCidrs: the API endpoint is private-only")
    assert load_stack_config({"mlops:cloud": cloud, "mlops:cluster": json.dumps(WAY_IN)}).cluster.runner_cidrs == ["10.100.0.0/24"]
    public = {"privateEndpoint": False, "publicAccessCidrs": ["203.0.113.0/24"]}
    assert load_stack_config({"mlops:cloud": cloud, "mlops:cluster": json.dumps(public)}).cluster.private_endpoint is False
    assert load_stack_config({"mlops:cloud": "local"}).cluster.runner_cidrs == []


def test_every_problem_is_reported_at_once():
    """Two independent mistakes give two lines, so a user fixes both in one go."""
    problems = problems_of({"mlops:cloud": "azure", "mlops:environment": "staging"})
    assert [p.split(":")[1] for p in problems] == ["cloud", "environment"]


PAGER = {"receivers": [{"name": "pager", "pagerduty": {"routingKey": "[secret]"}}], "defaultReceiver": "pager", "criticalReceiver": "pager"}


def test_prod_api_may_not_be_open_to_the_internet():
    cluster = {"privateEndpoint": False, "publicAccessCidrs": ["0.0.0.0/0"]}
    (problem,) = problems_of({"mlops:environment": "prod", "mlops:cluster": cluster, "mlops:alerting": PAGER})
    assert problem.startswith("mlops:cluster.publicAccessCidrs: prod clusters may not open the API to 0.0.0.0/0")


def test_prod_without_a_receiver_for_critical_alerts_is_refused():
    (problem,) = problems_of({"mlops:environment": "prod"})
    assert problem.startswith("mlops:alerting.criticalReceiver: a prod stack must page someone for critical alerts")
    alerting = {**PAGER, "criticalReceiver": None}
    (problem,) = problems_of({"mlops:environment": "prod", "mlops:alerting": alerting})
    assert problem.startswith("mlops:alerting.criticalReceiver:") and "declared receivers: pager" in problem


def test_alert_routes_must_lead_to_declared_receivers():
    alerting = {
        "receivers": [{"name": "ops", "webhook": {"url": "https://hooks.example.com/am"}}],
        "criticalReceiver": "pagr",
        "teams": [{"team": "fraud", "models": ["fraud-detector"], "receiver": "ops", "criticalReceiver": "pager"}],
    }
    problems = problems_of({"mlops:alerting": alerting})
    assert [p.split(":")[1].split(" ")[0] for p in problems] == [
        "alerting.defaultReceiver",
        "alerting.criticalReceiver",
        "alerting.teams[0].criticalReceiver",
    ]
    assert "unknown receiver; declared receivers: ops (got 'pagr')" in problems[1]


def test_a_receiver_without_a_channel_is_refused():
    (problem,) = problems_of({"mlops:alerting": {"receivers": [{"name": "ops"}], "defaultReceiver": "ops"}})
    assert problem.startswith("mlops:alerting.receivers[0]: receiver 'ops' declares no channel")


def test_nested_secure_values_read_as_secrets_offline(tmp_path):
    """`pulumi config set --secret --path` nests `secure:` inside an object; offline it is the placeholder."""
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  mlops:alerting:\n    receivers:\n      - name: pager\n        pagerduty:\n"
        "          routingKey:\n            secure: v1:abc:def\n    defaultReceiver: pager\n"
    )
    config = load_stack_config(ProjectFiles(tmp_path).stack_config("s", {}))
    assert config.alerting.receivers[0].pagerduty.routing_key == "[secret]"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stack_files_are_valid(stack):
    config = load_stack_config(ProjectFiles(PROJECT_DIR).stack_config(stack, {}))
    assert config.environment == stack


def test_prod_renders_on_gcp_by_flipping_cloud_alone():
    config = load_stack_config(ProjectFiles(PROJECT_DIR).stack_config("prod", {"mlops:cloud": "gcp"}))
    assert config.cloud == "gcp" and config.gcp.region == "us-central1"


def test_pulumi_yaml_declares_every_key_with_type_default_and_description():
    """Pulumi.yaml's `config:` is exactly what the schema reads (regenerate it when the schema changes)."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == "mlops" and project["main"] == "stacks/"
    assert project["config"] == declared_config()
    assert all(entry["description"] and "default" in entry for entry in project["config"].values())
