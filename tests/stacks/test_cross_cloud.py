"""One stack config on AWS and on GCP: the in-cluster layer is the same, bar the expected places.

`Pulumi.prod.yaml` is rendered as it is (AWS) and with `mlops:cloud=gcp`. Every Kubernetes object
the platform declares (every `kubernetes:*` resource except the provider and what a cloud
foundation component owns itself) must exist on both clouds with the same inputs and options,
once two things are set aside: the object store's URIs (`s3://<bucket>` vs `gs://<bucket>`) and
the annotations binding a ServiceAccount to its cloud identity (IRSA role vs Google service
account), which must name the same workload on both sides. The gateway's exposure is the cloud's
by design and set aside too: Envoy's Service stays ClusterIP on AWS (the NLB binds its pods through a
TargetGroupBinding the foundation owns) and is a LoadBalancer pinned to the stack's address on GCP,
and cert-manager answers DNS-01 in Route 53 or in Cloud DNS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
FOUNDATION_COMPONENTS = ("mlops:aws:", "mlops:gcp:")
IDENTITY_ANNOTATIONS = {
    "aws": {"eks.amazonaws.com/role-arn", "eks.amazonaws.com/sts-regional-endpoints"},
    "gcp": {"iam.gke.io/gcp-service-account"},
}
CLUSTER_PROVIDERS = {"aws": "pulumi:providers:kubernetes::eks-cluster", "gcp": "pulumi:providers:kubernetes::gke-cluster"}
SCHEMES = {"aws": "s3", "gcp": "gs"}


# The gateway's inputs each cloud fills differently by design (path in the object's inputs, by kind).
GATEWAY_EXPOSURE = {
    "EnvoyProxy": ("spec", "provider", "kubernetes", "envoyService"),
    "ClusterIssuer": ("spec", "acme", "solvers", 0, "dns01"),
}


@pytest.fixture(scope="module")
def renderings() -> dict[str, Rendering]:
    return {"aws": render(PROJECT_DIR, "prod"), "gcp": render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})}


def type_chain(resource: RenderedResource) -> str:
    """The `parent$child` type path of a URN (urn:pulumi:<stack>::<project>::<types>::<name>)."""
    return resource.urn.split("::")[2]


def kubernetes_objects(rendering: Rendering, *, owned_by_foundation: bool) -> dict[str, RenderedResource]:
    return {
        r.urn: r
        for r in rendering.resources
        if r.type.startswith("kubernetes:")
        and r.type != "pulumi:providers:kubernetes"
        and any(c in type_chain(r) for c in FOUNDATION_COMPONENTS) == owned_by_foundation
    }


class Normaliser:
    """Rewrites one cloud's rendering into cloud-neutral form, recording what it rewrote."""

    def __init__(self, cloud: str, rendering: Rendering):
        self.cloud = cloud
        scheme = SCHEMES[cloud]
        artifacts, payloads = rendering.outputs["artifactBucket"], rendering.outputs["payloadBucket"]
        # Each cloud pulls the same configured image from its own registry.
        self.replacements = [(pulled, f"<image {configured}>") for configured, pulled in rendering.outputs["images"].items()]
        self.replacements += [
            (f"{scheme}://{artifacts}", "<object-store>://<artifact-bucket>"),
            (f"{scheme}://{payloads}", "<object-store>://<payload-bucket>"),
            (artifacts, "<artifact-bucket>"),
            (payloads, "<payload-bucket>"),
        ]
        self.bucket_rewrites = 0
        # urn -> the identity annotations removed from it
        self.identities: dict[str, dict[str, str]] = {}
        # kind -> the gateway exposure taken out of it
        self.exposure: dict[str, Any] = {}

    def inputs(self, resource: RenderedResource) -> Any:
        inputs = self._value(resource.urn, resource.inputs)
        kind = resource.type.rsplit(":", 1)[-1]
        if kind in GATEWAY_EXPOSURE:
            *parent, leaf = GATEWAY_EXPOSURE[kind]
            holder = inputs
            for key in parent:
                holder = holder[key]
            self.exposure[kind] = holder.pop(leaf)
        return inputs

    def _value(self, urn: str, value: Any) -> Any:
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                if key == "annotations" and isinstance(item, dict):
                    item = self._without_identity(urn, item)
                result[key] = self._value(urn, item)
            return result
        if isinstance(value, list):
            return [self._value(urn, item) for item in value]
        if isinstance(value, str):
            for old, new in self.replacements:
                if old in value:
                    self.bucket_rewrites += 1
                    value = value.replace(old, new)
        return value

    def _without_identity(self, urn: str, annotations: dict[str, Any]) -> dict[str, Any]:
        identity = {k: v for k, v in annotations.items() if k in IDENTITY_ANNOTATIONS[self.cloud]}
        if identity:
            self.identities[urn] = identity
        return {k: v for k, v in annotations.items() if k not in identity}


def neutral_options(resource: RenderedResource, in_cluster: set[str]) -> dict[str, Any]:
    """Options with dependencies on cloud resources dropped (those differ by construction)."""
    options = dict(resource.options)
    options["dependsOn"] = [urn for urn in options["dependsOn"] if urn in in_cluster]
    options.pop("provider")
    return options


# NetworkPolicies a cloud's workload identity needs in every default-deny namespace.
CLOUD_FLOW_POLICIES = {"aws": set(), "gcp": {"allow-gke-metadata-server", "allow-gke-metadata-server-dataplane-v2"}}


def is_cloud_flow(cloud: str, resource: RenderedResource) -> bool:
    return resource.type.endswith(":NetworkPolicy") and resource.inputs["metadata"]["name"] in CLOUD_FLOW_POLICIES[cloud]


@pytest.fixture(scope="module")
def layers(renderings):
    return {
        cloud: {urn: r for urn, r in kubernetes_objects(rendering, owned_by_foundation=False).items() if not is_cloud_flow(cloud, r)}
        for cloud, rendering in renderings.items()
    }


def test_the_only_cloud_specific_in_cluster_objects_are_identity_flows(renderings):
    for cloud, rendering in renderings.items():
        flows = {r.inputs["metadata"]["name"] for r in kubernetes_objects(rendering, owned_by_foundation=False).values() if is_cloud_flow(cloud, r)}
        assert flows == CLOUD_FLOW_POLICIES[cloud]


@pytest.fixture(scope="module")
def normalised(renderings, layers):
    normalisers = {cloud: Normaliser(cloud, renderings[cloud]) for cloud in renderings}
    inputs = {cloud: {urn: normalisers[cloud].inputs(r) for urn, r in layers[cloud].items()} for cloud in layers}
    return normalisers, inputs


def test_both_clouds_declare_the_same_in_cluster_objects(layers):
    assert len(layers["aws"]) > 10
    assert sorted(layers["aws"]) == sorted(layers["gcp"])


def test_in_cluster_objects_have_the_same_inputs_once_buckets_and_identities_are_set_aside(normalised, layers):
    normalisers, inputs = normalised
    different = sorted(urn for urn in inputs["aws"] if inputs["aws"][urn] != inputs["gcp"].get(urn))
    assert different == []
    # The set-aside places were really there: bucket URIs in MLflow, identity annotations on ServiceAccounts.
    assert normalisers["aws"].bucket_rewrites > 0 and normalisers["gcp"].bucket_rewrites == normalisers["aws"].bucket_rewrites
    # ... and the gateway's exposure, each cloud's own.
    aws, gcp = normalisers["aws"].exposure, normalisers["gcp"].exposure
    assert aws["EnvoyProxy"] == {"name": "mlops-gateway", "type": "ClusterIP"}
    assert gcp["EnvoyProxy"]["type"] == "LoadBalancer" and gcp["EnvoyProxy"]["loadBalancerIP"]
    assert list(aws["ClusterIssuer"]) == ["route53"] and list(gcp["ClusterIssuer"]) == ["cloudDNS"]


def test_identity_annotations_differ_only_in_naming_the_same_workload_on_each_cloud(renderings, normalised):
    normalisers, _ = normalised
    aws, gcp = normalisers["aws"].identities, normalisers["gcp"].identities
    assert aws and sorted(aws) == sorted(gcp)
    role_arns, account_emails = renderings["aws"].outputs["workloadRoleArns"], renderings["gcp"].outputs["workloadServiceAccounts"]
    # cert-manager's identity (prod's ACME DNS-01 solver) is no exported workload: it is named like them.
    role_arns = {**role_arns, "cert-manager": role_arns["mlflow"].replace("/irsa-mlflow", "/irsa-cert-manager")}
    account_emails = {**account_emails, "cert-manager": account_emails["mlflow"].replace("-mlflow@", "-cert-manager@")}
    roles = {arn: workload for workload, arn in role_arns.items()}
    accounts = {email: workload for workload, email in account_emails.items()}
    assert {roles[a["eks.amazonaws.com/role-arn"]] for a in aws.values()} == set(role_arns)
    for urn in aws:
        assert set(aws[urn]) == IDENTITY_ANNOTATIONS["aws"] and set(gcp[urn]) == IDENTITY_ANNOTATIONS["gcp"]
        assert roles[aws[urn]["eks.amazonaws.com/role-arn"]] == accounts[gcp[urn]["iam.gke.io/gcp-service-account"]], urn


def test_in_cluster_objects_have_the_same_options_and_their_own_clouds_cluster_provider(layers):
    in_cluster = set(layers["aws"])
    for urn, resource in layers["aws"].items():
        other = layers["gcp"][urn]
        assert neutral_options(resource, in_cluster) == neutral_options(other, in_cluster), urn
        assert resource.options["provider"].endswith(CLUSTER_PROVIDERS["aws"]), urn
        assert other.options["provider"].endswith(CLUSTER_PROVIDERS["gcp"]), urn


def test_only_aws_installs_a_device_plugin_an_autoscaler_and_a_default_storage_class_in_its_foundation(renderings):
    """GKE installs the NVIDIA driver and device plugin on GPU nodes itself, autoscales its node
    pools and has a default StorageClass; EKS needs the chart, the Cluster Autoscaler, and has had
    no default class since 1.30."""
    assert kubernetes_objects(renderings["gcp"], owned_by_foundation=True) == {}
    aws = kubernetes_objects(renderings["aws"], owned_by_foundation=True).values()
    assert sorted((r.type, r.inputs.get("chart") or r.inputs["metadata"]["name"]) for r in aws) == [
        ("kubernetes:apps/v1:Deployment", "cluster-autoscaler"),
        ("kubernetes:core/v1:ServiceAccount", "cluster-autoscaler"),
        # Prod's gateway on AWS: the controller binding the NLB's target group to Envoy's pods.
        ("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "mlops-gateway"),
        ("kubernetes:helm.sh/v3:Release", "aws-load-balancer-controller"),
        ("kubernetes:helm.sh/v4:Chart", "nvidia-device-plugin"),
        ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "cluster-autoscaler"),
        ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "cluster-autoscaler"),
        ("kubernetes:rbac.authorization.k8s.io/v1:Role", "cluster-autoscaler"),
        ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "cluster-autoscaler"),
        ("kubernetes:storage.k8s.io/v1:StorageClass", "gp3-encrypted"),
    ]
