"""The AWS foundation as a whole: valid rendering, outputs, providers, one-pass teardown, dev vs prod."""

from __future__ import annotations

import json

import pulumi
import pytest

from mlops.offline.render import SECRET, RenderedResource, Rendering, render
from mlops.offline.validate import ReferenceData, validate_rendering
from stacks import program
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.render_monitors import record_monitors

DEV_ON_AWS = {
    "mlops:environment": "dev",
    "mlops:aws.zones": '["us-east-1a", "us-east-1b"]',
    "mlops:aws.natGateways": "single",
    "mlops:database.highAvailability": "false",
    "mlops:database.deletionProtection": "false",
}
STATEFUL_TYPES = ("aws:s3/bucket:Bucket", "aws:rds/instance:Instance", "aws:kms/key:Key")


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod")


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "prod", DEV_ON_AWS)


def in_cluster(rendering: Rendering) -> list[RenderedResource]:
    """Everything the Kubernetes provider of the EKS cluster manages."""
    return [r for r in rendering.resources if (r.options["provider"] or "").endswith("pulumi:providers:kubernetes::eks-cluster")]


def destroyed_before(rendering: Rendering) -> dict[str, set[str]]:
    """urn -> every resource that `pulumi destroy` removes only after it.

    The engine deletes a resource before anything it depends on: its explicit and implicit
    dependencies, its parent and its provider. The closure of those edges is the destroy order.
    """
    edges = {
        r.urn: {*r.options["dependsOn"], *filter(None, [r.parent, r.options["provider"]])} for r in rendering.resources
    }
    closure: dict[str, set[str]] = {}

    def reach(urn: str) -> set[str]:
        if urn not in closure:
            closure[urn] = set()
            for dependency in edges.get(urn, ()):
                closure[urn] |= {dependency, *reach(dependency)}
        return closure[urn]

    for urn in edges:
        reach(urn)
    return closure


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_rendering_passes_validation(request, stack):
    rendering = request.getfixturevalue(stack)
    assert validate_rendering(rendering, ReferenceData(REFERENCE_DIR), "1.35") == []


def test_outputs_use_the_shared_names_and_hide_the_kubeconfig(prod):
    outputs = prod.outputs
    assert {"clusterName", "kubeconfig", "artifactBucket", "payloadBucket", "databaseEndpoint"} <= outputs.keys()
    assert {"oidcProviderArn", "workloadRoleArns", "imageRepositories", "region"} <= outputs.keys()
    assert outputs["cloud"] == "aws"
    assert outputs["clusterName"] == "mlops-prod"
    assert outputs["kubeconfig"] == SECRET
    assert outputs["databaseEndpoint"].endswith(".rds.amazonaws.com")
    assert sorted(outputs["workloadRoleArns"]) == ["batch-job", "drift-job", "mlflow", "payload-collector", "storage-initializer", "training-job"]
    assert all(arn.startswith("arn:aws:iam::") for arn in outputs["workloadRoleArns"].values())


def test_every_aws_resource_goes_through_the_regional_provider(prod):
    (provider,) = prod.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    # Provider inputs reach the engine as strings; objects as JSON text.
    assert json.loads(provider.inputs["defaultTags"])["tags"]["mlops.platform/environment"] == "prod"
    for resource in prod.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.options["provider"] == provider.urn, resource.name


def test_kubernetes_provider_is_built_from_the_cluster_alone(prod):
    """Its only input is the token-free kubeconfig of the cluster (pulumi-eks #207/#764)."""
    (provider,) = prod.by_type("pulumi:providers:kubernetes")
    (cluster,) = prod.by_type("aws:eks/cluster:Cluster")
    assert provider.inputs == {"kubeconfig": SECRET}
    assert provider.options["dependsOn"] == [cluster.urn]


def test_every_in_cluster_object_uses_the_eks_provider(prod):
    objects = [r for r in prod.resources if r.custom and r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes"]
    assert objects
    assert {r.urn for r in objects} <= {r.urn for r in in_cluster(prod)}


def test_every_component_child_is_parented(prod):
    """Only the providers sit at the top; everything else hangs under the component that owns it."""
    top_level = {r.type for r in prod.resources if r.custom and r.parent.endswith("pulumi:pulumi:Stack::mlops-prod")}
    assert top_level == {"pulumi:providers:aws", "pulumi:providers:kubernetes"}


def test_destroy_removes_cluster_objects_then_node_groups_then_the_cluster_then_the_network(prod):
    """Walk the rendered graph: each layer is destroyed before the one it stands on, in one pass."""
    after = destroyed_before(prod)
    groups = {g.urn for g in prod.by_type("aws:eks/nodeGroup:NodeGroup")}
    gpu_groups = {g.urn for g in prod.by_type("aws:eks/nodeGroup:NodeGroup") if "taints" in g.inputs}
    (cluster,) = prod.by_type("aws:eks/cluster:Cluster")
    network = {r.urn for r in prod.resources if r.parent and r.parent.endswith("mlops:aws:Network::network")}
    objects = [r for r in in_cluster(prod) if r.custom or r.type.startswith("kubernetes:helm")]
    assert len(objects) > 5 and gpu_groups
    for resource in objects:
        assert gpu_groups <= after[resource.urn], resource.name
        if resource.type.startswith("kubernetes:helm"):
            continue
        assert groups <= after[resource.urn], resource.name
    for group in groups:
        assert cluster.urn in after[group]
    # The autoscaler stops before any group it scales goes, and a group's ASG tags go before it.
    autoscaler = [r for r in objects if r.parent.endswith("mlops:aws:ClusterAutoscaler::cluster-autoscaler")]
    assert {r.type.rsplit(":", 1)[1] for r in autoscaler} >= {"Deployment", "ClusterRoleBinding", "ServiceAccount"}
    for resource in autoscaler:
        assert groups <= after[resource.urn], resource.name
    tags = prod.by_type("aws:autoscaling/tag:Tag")
    assert tags and all(after[tag.urn] & gpu_groups for tag in tags)
    assert len(network) > 30
    assert network <= after[cluster.urn]
    for urn in network:
        assert cluster.urn not in after[urn] and not groups & after[urn]


def test_coredns_and_the_csi_driver_go_before_the_nodes_they_run_on(prod):
    after = destroyed_before(prod)
    groups = {g.urn for g in prod.by_type("aws:eks/nodeGroup:NodeGroup")}
    for addon in prod.by_type("aws:eks/addon:Addon"):
        if addon.inputs["addonName"] in ("coredns", "aws-ebs-csi-driver"):
            assert groups <= after[addon.urn]


def test_prod_stateful_resources_are_protected_and_retained(prod):
    stateful = [r for t in STATEFUL_TYPES for r in prod.by_type(t)]
    assert len(stateful) == 6
    for resource in stateful:
        assert resource.options["protect"] is True and resource.options["retainOnDelete"] is True, resource.name


def test_nothing_else_is_protected(prod):
    """Protection is for data; the network, cluster and nodes must stay destroyable."""
    protected = {r.type for r in prod.resources if r.options["protect"]}
    assert protected <= set(STATEFUL_TYPES)


def test_dev_on_aws_renders_the_cheaper_choices(dev):
    """Two zones, one shared NAT gateway, a single-AZ database, nothing protected."""
    assert len(dev.by_type("aws:ec2/natGateway:NatGateway")) == 1
    assert {s.inputs["availabilityZone"] for s in dev.by_type("aws:ec2/subnet:Subnet")} == {"us-east-1a", "us-east-1b"}
    (database,) = dev.by_type("aws:rds/instance:Instance")
    assert database.inputs["multiAz"] is False and database.inputs["deletionProtection"] is False
    assert not [r.name for r in dev.resources if r.options["protect"]]


def test_prod_on_aws_needs_three_zones():
    with pytest.raises(ConfigError, match=r"mlops:aws.zones: prod spans 3 availability zones"):
        render(PROJECT_DIR, "prod", {"mlops:aws.zones": '["us-east-1a", "us-east-1b"]'})


def test_kubernetes_version_without_pinned_addons_fails_before_any_resource(monkeypatch):
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:cluster.kubernetesVersion: no pinned EKS add-on versions for Kubernetes '1.29'"):
        render(PROJECT_DIR, "prod", {"mlops:cluster.kubernetesVersion": "1.29"})
    assert monitors and monitors[0].recorded == []


@pytest.fixture(scope="module")
def foundation_fields() -> dict[str, object]:
    """The Foundation handed to the in-cluster layer, resolved by exporting its fields from the program."""
    real = program.build_platform

    def exporting(config, foundation, namespaces):
        pulumi.export("probe:identityAnnotations", foundation.identity_annotations)
        pulumi.export(
            "probe:gpuPlacements",
            {pool: {"nodeSelector": p.node_selector, "tolerations": p.tolerations} for pool, p in foundation.gpu_placements.items()},
        )
        pulumi.export("probe:objectStore", {"scheme": foundation.object_store.scheme, "region": foundation.object_store.region})
        pulumi.export("probe:clusterReady", [r.urn for r in foundation.cluster_ready])
        return real(config, foundation, namespaces)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "build_platform", exporting)
        outputs = render(PROJECT_DIR, "prod").outputs
    return {k.removeprefix("probe:"): v for k, v in outputs.items() if k.startswith("probe:")}


def test_each_platform_workload_gets_its_role_annotation(foundation_fields, prod):
    annotations = dict(foundation_fields["identityAnnotations"])
    # cert-manager has a role of its own when the gateway's certificate comes from ACME (test_aws_gateway_lb.py).
    annotations.pop("cert-manager", None)
    assert sorted(annotations) == ["batch-job", "drift-job", "mlflow", "payload-collector", "storage-initializer", "training-job"]
    for workload, values in annotations.items():
        assert values["eks.amazonaws.com/role-arn"] == prod.outputs["workloadRoleArns"][workload]


def test_gpu_placements_name_each_gpu_pool(foundation_fields):
    assert foundation_fields["gpuPlacements"] == {
        "gpu-l4": {
            "nodeSelector": {"mlops.platform/pool": "gpu-l4"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        }
    }


def test_cluster_ready_holds_node_groups_pod_addons_admin_access_storage_class_and_the_device_plugin(foundation_fields):
    assert sorted(urn.rsplit("::", 1)[1] for urn in foundation_fields["clusterReady"]) == sorted(
        [
            "nodes-system",
            "nodes-cpu-serving",
            "nodes-gpu-l4",
            "workload-addons-coredns",
            "workload-addons-aws-ebs-csi-driver",
            "eks-admin-platform-admins",
            "nvidia-device-plugin-chart",
            "default-storage-class-class",
            "cluster-autoscaler-deployment",
        ]
    )
    assert foundation_fields["objectStore"] == {"scheme": "s3", "region": "us-east-1"}
