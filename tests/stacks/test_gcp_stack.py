"""The GCP foundation as a whole: valid rendering, outputs, providers, one-pass teardown, dev vs prod."""

from __future__ import annotations

import json

import pulumi
import pytest

from mlops.offline.policy_runner import blocking, run_policies
from mlops.offline.render import SECRET, RenderedResource, Rendering, render
from mlops.offline.validate import ReferenceData, validate_rendering
from components.interfaces import WORKLOADS
from stacks import program
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR, REFERENCE_DIR
from tests.render_monitors import record_monitors

ON_GCP = {"mlops:cloud": "gcp"}
DEV_ON_GCP = {
    **ON_GCP,
    "mlops:environment": "dev",
    "mlops:gcp.clusterLocation": "zonal",
    "mlops:storage.customerManagedKey": "false",
    "mlops:database.highAvailability": "false",
    "mlops:database.deletionProtection": "false",
}
STATEFUL_TYPES = (
    "gcp:storage/bucket:Bucket",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:kms/cryptoKey:CryptoKey",
    "gcp:kms/keyRing:KeyRing",
)
GKE_PROVIDER = "pulumi:providers:kubernetes::gke-cluster"


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "prod", DEV_ON_GCP)


def in_cluster(rendering: Rendering) -> list[RenderedResource]:
    return [r for r in rendering.resources if (r.options["provider"] or "").endswith(GKE_PROVIDER)]


def destroyed_before(rendering: Rendering) -> dict[str, set[str]]:
    """urn -> every resource that `pulumi destroy` removes only after it (dependencies, parent, provider, closed)."""
    edges = {r.urn: {*r.options["dependsOn"], *filter(None, [r.parent, r.options["provider"]])} for r in rendering.resources}
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


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_no_mandatory_policy_fails_on_a_gcp_resource(request, stack):
    rendering = request.getfixturevalue(stack)
    findings = [str(f) for f in blocking(run_policies(rendering, stack)) if "gcp:" in f.resource]
    assert findings == []


def test_outputs_use_the_shared_names_and_hide_the_kubeconfig(prod):
    outputs = prod.outputs
    assert {"clusterName", "kubeconfig", "artifactBucket", "payloadBucket", "databaseEndpoint"} <= outputs.keys()
    assert outputs["cloud"] == "gcp"
    assert outputs["clusterName"] == "mlops-prod"
    assert outputs["kubeconfig"] == SECRET
    assert outputs["databaseEndpoint"] == "10.60.0.3"
    assert outputs["workloadIdentityPool"] == "mlops-platform-prod.svc.id.goog"
    assert outputs["project"] == "mlops-platform-prod" and outputs["region"] == "us-central1"
    assert sorted(outputs["workloadServiceAccounts"]) == ["batch-job", "drift-job", "mlflow", "payload-collector", "storage-initializer", "training-job"]
    assert outputs["nodeServiceAccount"] == "mlops-prod-nodes@mock-project.iam.gserviceaccount.com"


def test_every_gcp_resource_goes_through_the_project_provider(prod):
    """Every GCP resource but the API enablements, which precede the provider (configured after them)."""
    providers = {p.name: p for p in prod.by_type("pulumi:providers:gcp")}
    assert sorted(providers) == ["gcp", "gcp-apis"]
    provider = providers["gcp"]
    assert providers["gcp-apis"].inputs["project"] == "mlops-platform-prod"
    assert provider.inputs["project"] == "mlops-platform-prod"
    assert provider.inputs["region"] == "us-central1"
    # Provider inputs reach the engine as strings; objects as JSON text.
    assert json.loads(provider.inputs["defaultLabels"]) == {
        "mlops-platform-stack": "mlops-prod",
        "mlops-platform-environment": "prod",
    }
    for resource in prod.resources:
        if resource.custom and resource.type.startswith("gcp:"):
            expected = providers["gcp-apis"] if resource.type == "gcp:projects/service:Service" else provider
            assert resource.options["provider"] == expected.urn, resource.name


def test_kubernetes_provider_is_built_from_the_cluster_alone(prod):
    """Its only input is the token-free kubeconfig of the cluster, a secret."""
    (provider,) = prod.by_type("pulumi:providers:kubernetes")
    (cluster,) = prod.by_type("gcp:container/cluster:Cluster")
    assert provider.name == "gke-cluster"
    assert provider.inputs == {"kubeconfig": SECRET}
    assert provider.options["dependsOn"] == [cluster.urn]


def test_every_in_cluster_object_uses_the_gke_provider(prod):
    objects = [r for r in prod.resources if r.custom and r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes"]
    assert objects
    assert {r.urn for r in objects} <= {r.urn for r in in_cluster(prod)}


def test_every_component_child_is_parented(prod):
    """Only the providers sit at the top; everything else hangs under the component that owns it."""
    top_level = {r.type for r in prod.resources if r.custom and r.parent.endswith("pulumi:pulumi:Stack::mlops-prod")}
    assert top_level == {"pulumi:providers:gcp", "pulumi:providers:kubernetes"}


def test_mlflow_stores_artifacts_in_gcs_with_no_endpoint_or_static_credentials(prod):
    (deployment,) = [d for d in prod.by_type("kubernetes:apps/v1:Deployment") if d.name == "mlflow-server"]
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--artifacts-destination") + 1] == f"gs://{prod.outputs['artifactBucket']}"
    env = {e["name"] for e in container["env"]}
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS"}


def test_destroy_removes_cluster_objects_then_node_pools_then_the_cluster_then_the_network(prod):
    """Walk the rendered graph: each layer is destroyed before the one it stands on, in one pass."""
    after = destroyed_before(prod)
    pools = {p.urn for p in prod.by_type("gcp:container/nodePool:NodePool")}
    (cluster,) = prod.by_type("gcp:container/cluster:Cluster")
    network = {r.urn for r in prod.resources if r.parent and r.parent.endswith("mlops:gcp:Network::network")}
    objects = [r for r in in_cluster(prod) if r.custom]
    assert len(objects) > 5 and len(pools) == 3 and len(network) == 6
    for resource in objects:
        assert pools <= after[resource.urn], resource.name
    for pool in pools:
        assert cluster.urn in after[pool]
    nat = {urn for urn in network if "RouterNat" in urn}
    assert nat <= after[cluster.urn]
    for urn in network:
        assert cluster.urn not in after[urn] and not pools & after[urn]


def identity_workloads(rendering: Rendering) -> list[str]:
    """Workloads with a Google service account: the platform's, and cert-manager when the gateway's
    certificate comes from ACME (it answers DNS-01 in Cloud DNS)."""
    gateway = json.loads(rendering.config.get("mlops:gateway") or "{}")
    acme = gateway.get("enabled") and (gateway.get("tls") or {}).get("issuer") == "acme"
    return [*WORKLOADS, *(["cert-manager"] if acme else [])]


def test_workload_identity_bindings_outlive_the_pods_using_them(prod):
    after = destroyed_before(prod)
    bindings = {b.urn for b in prod.by_type("gcp:serviceaccount/iAMMember:IAMMember")}
    assert len(bindings) == len(identity_workloads(prod))
    for resource in (r for r in in_cluster(prod) if r.custom):
        assert bindings <= after[resource.urn], resource.name


def test_prod_stateful_resources_are_protected_and_retained(prod):
    stateful = [r for t in STATEFUL_TYPES for r in prod.by_type(t)]
    # Two buckets, the database, and a key with its ring for buckets and for Secrets.
    assert len(stateful) == 7
    for resource in stateful:
        assert resource.options["protect"] is True and resource.options["retainOnDelete"] is True, resource.name


def test_nothing_else_is_protected(prod):
    """Protection is for data; the network, cluster and nodes must stay destroyable."""
    assert {r.type for r in prod.resources if r.options["protect"]} <= set(STATEFUL_TYPES)


def test_dev_on_gcp_renders_a_zonal_cluster_with_the_cheaper_choices(dev):
    """A zonal control plane and node pools in its zone, a zonal database, no CMEK, nothing protected."""
    (cluster,) = dev.by_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["location"] == "us-central1-a"
    assert {tuple(p.inputs["nodeLocations"]) for p in dev.by_type("gcp:container/nodePool:NodePool")} == {("us-central1-a",)}
    (database,) = dev.by_type("gcp:sql/databaseInstance:DatabaseInstance")
    assert database.inputs["settings"]["availabilityType"] == "ZONAL"
    assert dev.by_type("gcp:kms/cryptoKey:CryptoKey") == []
    assert not [r.name for r in dev.resources if r.options["protect"]]


def test_dev_stack_file_renders_on_a_zonal_gcp_cluster():
    """The dev stack itself (one system pool) renders and validates on GCP with a zonal cluster."""
    rendering = render(
        PROJECT_DIR, "dev", {**ON_GCP, "mlops:gcp.clusterLocation": "zonal", "mlops:cluster.runnerCidrs": '["10.100.0.0/24"]'}
    )
    (cluster,) = rendering.by_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["location"] == "us-central1-a"
    assert [p.name for p in rendering.by_type("gcp:container/nodePool:NodePool")] == ["nodes-system"]
    assert validate_rendering(rendering, ReferenceData(REFERENCE_DIR), "1.35") == []


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
        store = foundation.object_store
        pulumi.export(
            "probe:objectStore",
            {"scheme": store.scheme, "endpoint": store.endpoint, "credentialsSecret": store.credentials_secret, "region": store.region},
        )
        pulumi.export("probe:clusterReady", [r.urn for r in foundation.cluster_ready])
        return real(config, foundation, namespaces)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "build_platform", exporting)
        outputs = render(PROJECT_DIR, "prod", ON_GCP).outputs
    return {k.removeprefix("probe:"): v for k, v in outputs.items() if k.startswith("probe:")}


def test_each_platform_workload_gets_its_google_service_account_annotation(foundation_fields, prod):
    annotations = dict(foundation_fields["identityAnnotations"])
    # cert-manager has an account of its own when the gateway's certificate comes from ACME (test_gcp_gateway_lb.py).
    annotations.pop("cert-manager", None)
    assert annotations == {
        workload: {"iam.gke.io/gcp-service-account": email} for workload, email in prod.outputs["workloadServiceAccounts"].items()
    }


def test_gpu_placements_name_each_gpu_pool(foundation_fields):
    assert foundation_fields["gpuPlacements"] == {
        "gpu-l4": {
            "nodeSelector": {"mlops.platform/pool": "gpu-l4"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        }
    }


def test_object_store_is_gcs_without_endpoint_or_credentials(foundation_fields):
    assert foundation_fields["objectStore"] == {"scheme": "gs", "endpoint": None, "credentialsSecret": None, "region": "us-central1"}


def test_cluster_ready_holds_the_node_pools_and_workload_identity_bindings(foundation_fields, prod):
    assert sorted(urn.rsplit("::", 1)[1] for urn in foundation_fields["clusterReady"]) == sorted(
        ["nodes-system", "nodes-cpu-serving", "nodes-gpu-l4"]
        + [f"workload-identity-{workload}-workload-identity" for workload in identity_workloads(prod)]
    )


def test_zonal_prod_cluster_fails_before_any_resource_is_declared(monkeypatch):
    """Config the foundation cannot honour stops the program with nothing half-declared."""
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:gcp\.clusterLocation: prod clusters are regional"):
        render(PROJECT_DIR, "prod", {**ON_GCP, "mlops:gcp.clusterLocation": "zonal"})
    assert monitors and monitors[0].recorded == []
