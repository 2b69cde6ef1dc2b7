"""GKE node pools from config: system/CPU/GPU pools, accelerators with GKE-managed drivers, taints, zones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.foundation.gcp.node_pools import gpu_node_locations, gpu_placement, node_pool_spec
from mlops.offline.render import RenderedResource, Rendering, render
from stacks.config import ConfigError, NodePool, load_stack_config
from components.catalog import CatalogError

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
L4_POOL = NodePool(name="gpu-l4", role="gpu", size="large", accelerator="nvidia-l4", max_size=4)


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


def pools(rendering: Rendering) -> dict[str, RenderedResource]:
    return {p.name.removeprefix("nodes-"): p for p in rendering.by_type("gcp:container/nodePool:NodePool")}


def test_every_configured_pool_becomes_a_node_pool_of_the_cluster(prod):
    assert sorted(pools(prod)) == ["cpu-serving", "gpu-l4", "system"]
    (cluster,) = prod.by_type("gcp:container/cluster:Cluster")
    for pool in pools(prod).values():
        assert pool.inputs["cluster"] == "mlops-prod"
        assert pool.inputs["location"] == "us-central1"
        assert cluster.urn in pool.options["dependsOn"]


def test_pools_map_to_catalog_machine_types(prod):
    by_pool = pools(prod)
    assert by_pool["system"].inputs["nodeConfig"]["machineType"] == "n2-standard-8"
    assert by_pool["cpu-serving"].inputs["nodeConfig"]["machineType"] == "n2-standard-8"
    assert by_pool["gpu-l4"].inputs["nodeConfig"]["machineType"] == "g2-standard-8"


def test_gpu_pool_has_guest_accelerators_with_gke_managed_drivers(prod):
    assert pools(prod)["gpu-l4"].inputs["nodeConfig"]["guestAccelerators"] == [
        {"type": "nvidia-l4", "count": 1, "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"}}
    ]
    for name in ("system", "cpu-serving"):
        assert "guestAccelerators" not in pools(prod)[name].inputs["nodeConfig"]


def test_only_gpu_pools_carry_the_nvidia_noschedule_taint(prod):
    for name, pool in pools(prod).items():
        taints = pool.inputs["nodeConfig"].get("taints")
        assert taints == ([GPU_TAINT] if name == "gpu-l4" else None), name


def test_pools_autoscale_between_the_configured_totals_and_gpu_scales_from_zero(prod):
    by_pool = pools(prod)
    assert by_pool["gpu-l4"].inputs["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 4, "locationPolicy": "ANY"}
    assert by_pool["gpu-l4"].inputs["initialNodeCount"] == 0
    assert by_pool["system"].inputs["autoscaling"] == {"totalMinNodeCount": 3, "totalMaxNodeCount": 6, "locationPolicy": "BALANCED"}
    # initialNodeCount is per zone: three zones of one node meet the minimum of three.
    assert by_pool["system"].inputs["initialNodeCount"] == 1
    for pool in by_pool.values():
        assert "nodeCount" not in pool.inputs
        assert pool.options["ignoreChanges"] == ["initialNodeCount"]


def test_nodes_are_shielded_use_workload_identity_and_a_dedicated_service_account(prod):
    (account,) = [a for a in prod.by_type("gcp:serviceaccount/account:Account") if a.name == "nodes-account"]
    project_grants = {g.name: g for g in prod.by_type("gcp:projects/iAMMember:IAMMember")}
    # The only other project-wide grant is cert-manager's Cloud DNS admin, for prod's ACME DNS-01 challenges.
    assert sorted(project_grants) == ["nodes-account-node-role", "workload-identity-cert-manager-dns-admin"]
    role = project_grants["nodes-account-node-role"]
    assert role.inputs == {
        "project": "mlops-platform-prod",
        "role": "roles/container.defaultNodeServiceAccount",
        "member": "serviceAccount:mlops-prod-nodes@mock-project.iam.gserviceaccount.com",
    }
    for pool in pools(prod).values():
        config = pool.inputs["nodeConfig"]
        assert config["serviceAccount"] == "mlops-prod-nodes@mock-project.iam.gserviceaccount.com"
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert config["metadata"] == {"disable-legacy-endpoints": "true"}
        assert role.urn in pool.options["dependsOn"] and account.urn in pool.options["dependsOn"]


def test_pool_labels_match_the_gpu_placement(prod):
    """Pods placed with the foundation's GPU placement land on that pool: selector matches, taint tolerated."""
    placement = gpu_placement(node_pool_spec(L4_POOL, "us-central1", ZONES, {}))
    labels = pools(prod)["gpu-l4"].inputs["nodeConfig"]["labels"]
    assert placement.node_selector.items() <= labels.items()
    assert labels["mlops.platform/accelerator"] == "nvidia-l4"
    (toleration,) = placement.tolerations
    assert toleration == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert not placement.node_selector.items() <= pools(prod)["cpu-serving"].inputs["nodeConfig"]["labels"].items()


def test_spot_option_renders_spot_nodes_placed_wherever_capacity_is():
    rendering = render(PROJECT_DIR, "prod", {**ON_GCP, "mlops:nodePools[2].spot": "true", "mlops:nodePools[1].spot": "true"})
    by_pool = pools(rendering)
    assert by_pool["gpu-l4"].inputs["nodeConfig"]["spot"] is True
    assert by_pool["cpu-serving"].inputs["nodeConfig"]["spot"] is True
    assert by_pool["cpu-serving"].inputs["autoscaling"]["locationPolicy"] == "ANY"
    assert by_pool["system"].inputs["nodeConfig"]["spot"] is False


def test_gpu_pool_is_placed_only_in_zones_offering_its_accelerator():
    rendering = render(
        PROJECT_DIR, "prod", {**ON_GCP, "mlops:gcp.acceleratorZones": json.dumps({"nvidia-l4": ["us-central1-a", "us-central1-c"]})}
    )
    by_pool = pools(rendering)
    assert by_pool["gpu-l4"].inputs["nodeLocations"] == ["us-central1-a", "us-central1-c"]
    assert by_pool["cpu-serving"].inputs["nodeLocations"] == ZONES


def test_gpu_node_locations_default_to_every_pool_zone_and_keep_zone_order():
    assert gpu_node_locations("nvidia-l4", ZONES, {}) == ZONES
    assert gpu_node_locations("nvidia-l4", ZONES, {"nvidia-l4": ["us-central1-c", "us-central1-a"]}) == [
        "us-central1-a",
        "us-central1-c",
    ]


def test_accelerator_not_offered_in_the_pool_zones_names_the_allowed_zones():
    with pytest.raises(CatalogError, match=r"'nvidia-l4' is offered in zones \['us-central1-f'\].*allowed zones for it: us-central1-f"):
        gpu_node_locations("nvidia-l4", ["us-central1-a"], {"nvidia-l4": ["us-central1-f"]})


def test_accelerator_zones_outside_the_stack_zones_are_a_config_error():
    """Listing where an accelerator is offered, with none of it in mlops:gcp.zones, stops at config load."""
    raw = {
        "mlops:cloud": "gcp",
        "mlops:gcp": json.dumps({"zones": ["us-central1-a", "us-central1-b"], "acceleratorZones": {"nvidia-l4": ["us-central1-c"]}}),
    }
    with pytest.raises(ConfigError, match=r"mlops:gcp: accelerator 'nvidia-l4' is offered in \['us-central1-c'\], none of which"):
        load_stack_config(raw)


def test_zonal_dev_cluster_with_its_zone_lacking_the_accelerator_is_a_config_error():
    overrides = {
        **ON_GCP,
        "mlops:environment": "dev",
        "mlops:gcp.clusterLocation": "zonal",
        "mlops:gcp.acceleratorZones": json.dumps({"nvidia-l4": ["us-central1-b"]}),
    }
    with pytest.raises(ConfigError, match=r"mlops:nodePools\[2\]\.accelerator: accelerator 'nvidia-l4' is offered in zones"):
        render(PROJECT_DIR, "prod", overrides)


def test_gpu_type_unknown_in_the_region_is_a_config_error():
    """An accelerator the region lacks fails at config load, with the regions offering it."""
    raw = {
        "mlops:cloud": "gcp",
        "mlops:gcp": json.dumps({"region": "us-west4", "zones": ["us-west4-a"]}),
        "mlops:nodePools": json.dumps(
            [
                {"name": "system", "role": "system", "minSize": 1, "maxSize": 2},
                {"name": "gpu", "role": "gpu", "size": "xlarge", "accelerator": "nvidia-h100-80gb", "acceleratorCount": 8, "maxSize": 1},
            ]
        ),
    }
    with pytest.raises(ConfigError, match=r"mlops:nodePools\[1\].*'nvidia-h100-80gb' is not offered in gcp region 'us-west4'; regions"):
        load_stack_config(raw)
