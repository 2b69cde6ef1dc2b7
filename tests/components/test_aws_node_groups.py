"""Node groups from config: system/CPU/GPU pools, GPU taints and labels, spot diversity, device plugin."""

from __future__ import annotations

import json

import pytest
import yaml

from components.foundation.aws.node_groups import GPU_TOLERATION, gpu_placement, instance_types, node_group_spec
from mlops.offline.render import RenderedResource, Rendering, render
from stacks.config import ConfigError, NodePool, load_stack_config
from tests.conftest import PROJECT_DIR, REFERENCE_DIR

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


def groups(rendering: Rendering) -> dict[str, RenderedResource]:
    return {g.name.removeprefix("nodes-"): g for g in rendering.by_type("aws:eks/nodeGroup:NodeGroup")}


def test_every_configured_pool_becomes_a_managed_node_group_in_private_subnets(prod):
    assert sorted(groups(prod)) == ["cpu-serving", "gpu-l4", "system"]
    for group in groups(prod).values():
        assert group.inputs["clusterName"] == "mlops-prod"
        assert group.inputs["version"] == "1.35"
        assert sorted(group.inputs["subnetIds"]) == [f"network-private-us-east-1{z}-id" for z in "abc"]


def test_pools_map_to_catalog_instance_types_and_ami_types(prod):
    by_pool = groups(prod)
    assert by_pool["system"].inputs["instanceTypes"] == ["m6i.2xlarge"]
    assert by_pool["system"].inputs["capacityType"] == "ON_DEMAND"
    assert by_pool["system"].inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert by_pool["cpu-serving"].inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert by_pool["gpu-l4"].inputs["instanceTypes"] == ["g6.2xlarge"]
    assert by_pool["gpu-l4"].inputs["amiType"] == "AL2023_x86_64_NVIDIA"


def test_only_gpu_pools_carry_the_nvidia_noschedule_taint(prod):
    for name, group in groups(prod).items():
        if name == "gpu-l4":
            assert group.inputs["taints"] == [GPU_TAINT]
        else:
            assert "taints" not in group.inputs, name


def test_gpu_pools_carry_accelerator_labels(prod):
    labels = groups(prod)["gpu-l4"].inputs["labels"]
    assert labels["mlops.platform/pool"] == "gpu-l4"
    assert labels["mlops.platform/accelerator"] == "nvidia-l4"
    assert labels["k8s.amazonaws.com/accelerator"] == "nvidia-l4"
    assert labels["nvidia.com/gpu.present"] == "true"
    assert "nvidia.com/gpu.present" not in groups(prod)["cpu-serving"].inputs["labels"]


def test_gpu_pool_scales_from_zero_and_the_autoscaler_owns_the_current_size(prod):
    group = groups(prod)["gpu-l4"]
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}
    assert group.options["ignoreChanges"] == ["scalingConfig.desiredSize"]


def test_gpu_placement_selects_the_pool_and_tolerates_its_taint(prod):
    """Pods placed with the foundation's GPU placement land on that pool: selector matches, taint tolerated."""
    pool = NodePool(name="gpu-l4", role="gpu", size="large", accelerator="nvidia-l4", max_size=4)
    placement = gpu_placement(node_group_spec(pool, "us-east-1"))
    group = groups(prod)["gpu-l4"]
    assert placement.node_selector.items() <= group.inputs["labels"].items()
    (toleration,) = placement.tolerations
    assert toleration == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert not placement.node_selector.items() <= groups(prod)["cpu-serving"].inputs["labels"].items()


def test_spot_gpu_pool_offers_several_instance_types_with_the_same_gpus():
    pool = NodePool(name="gpu", role="gpu", size="medium", accelerator="nvidia-t4", max_size=2, spot=True)
    assert instance_types(pool, "us-east-1") == ["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge"]
    on_demand = pool.model_copy(update={"spot": False})
    assert instance_types(on_demand, "us-east-1") == ["g4dn.xlarge"]


def test_spot_cpu_pool_offers_interchangeable_families():
    pool = NodePool(name="batch", role="cpu", size="large", max_size=5, spot=True)
    assert instance_types(pool, "us-east-1") == ["m6i.2xlarge", "m6a.2xlarge", "m7i.2xlarge", "m5.2xlarge"]


def test_spot_gpu_pool_renders_as_spot_capacity_with_several_types():
    rendering = render(PROJECT_DIR, "prod", {"mlops:nodePools[2].spot": "true"})
    group = groups(rendering)["gpu-l4"]
    assert group.inputs["capacityType"] == "SPOT"
    assert group.inputs["instanceTypes"] == ["g6.2xlarge", "g6.4xlarge"]


def test_gpu_type_unknown_in_the_region_is_a_config_error():
    """An accelerator the region lacks fails at config load, not an hour into `pulumi up`."""
    raw = {
        "mlops:cloud": "aws",
        "mlops:aws": json.dumps({"region": "eu-west-2", "zones": ["eu-west-2a", "eu-west-2b"]}),
        "mlops:nodePools": json.dumps(
            [
                {"name": "system", "role": "system", "minSize": 1, "maxSize": 2},
                {"name": "gpu", "role": "gpu", "size": "medium", "accelerator": "nvidia-a10g", "maxSize": 2},
            ]
        ),
    }
    with pytest.raises(ConfigError, match=r"mlops:nodePools\[1\].*'nvidia-a10g' is not offered in aws region 'eu-west-2'"):
        load_stack_config(raw)


def device_plugin_charts(rendering):
    return [c for c in rendering.by_type("kubernetes:helm.sh/v4:Chart") if c.inputs["chart"] == "nvidia-device-plugin"]


def test_device_plugin_is_pinned_and_runs_on_gpu_nodes_only(prod):
    (chart,) = device_plugin_charts(prod)
    reference = yaml.safe_load((REFERENCE_DIR / "chart-values" / "nvidia-device-plugin.Chart.yaml").read_text())
    assert chart.inputs["chart"] == "nvidia-device-plugin"
    assert chart.inputs["version"] == reference["version"]
    assert chart.inputs["namespace"] == "kube-system"
    values = chart.inputs["values"]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["tolerations"] == [GPU_TOLERATION]
    assert chart.options["provider"].endswith("pulumi:providers:kubernetes::eks-cluster")
    assert chart.options["dependsOn"] == [groups(prod)["gpu-l4"].urn]


def test_no_gpu_pool_means_no_device_plugin():
    rendering = render(
        PROJECT_DIR,
        "prod",
        {"mlops:nodePools": '[{"name": "system", "role": "system", "minSize": 2, "maxSize": 3}]', "mlops:models": "[]"},
    )
    assert device_plugin_charts(rendering) == []
    assert list(groups(rendering)) == ["system"]
