"""The AWS Load Balancer Controller, used only to keep Envoy's pod IPs registered in the gateway's
target group (a TargetGroupBinding); the load balancer itself is declared by the stack.

Upstream's Helm chart at the pinned version, installed as a Helm release (not a client-side
template): the chart generates its webhook's serving certificate with `genCA`, and a release with
`keepTLSSecret` reuses the one it generated at install instead of issuing a new certificate (and a
diff) on every run. Everything that would let it create load balancers of its own is off: no
IngressClass, no Service mutator webhook (which would hand every new LoadBalancer Service to it),
no Gateway API controllers (Envoy Gateway implements the platform's Gateway).

Its IRSA role gets upstream's IAM policy for that version, read from `reference/iam/` unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.foundation.aws.identity import service_account_annotations

CHART = "aws-load-balancer-controller"
CHART_VERSION = "3.5.0"
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
IMAGE_REPOSITORY = "public.ecr.aws/eks/aws-load-balancer-controller"
IMAGE_TAG = f"v{CHART_VERSION}"
IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
# Beside the cluster autoscaler: kube-system exists before the platform's namespaces and has no
# default-deny policy, so the controller reaches the API server, AWS APIs and receives webhook calls.
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = CHART
IAM_POLICY_FILE = Path(__file__).resolve().parents[3] / "reference" / "iam" / "aws-load-balancer-controller.iam_policy.json"
TARGET_GROUP_BINDING_API = "elbv2.k8s.aws/v1beta1"


def load_balancer_controller_policy(path: Path = IAM_POLICY_FILE) -> dict[str, Any]:
    """Upstream's IAM policy for the pinned controller version (docs/install/iam_policy.json)."""
    return json.loads(path.read_text())


def chart_image_parts(reference: str) -> tuple[str, str]:
    """(`image.repository`, `image.tag`) for the chart, which writes `<repository>:<tag>`.

    A registry-resolved reference (`<repository>@sha256:...`) keeps the pinned tag in front of the
    digest (`<repository>:<tag>@sha256:...`), so the pod still names exact bytes.
    """
    named, _, digest = reference.partition("@")
    repository, tag = named, IMAGE_TAG
    if ":" in named.rsplit("/", 1)[-1]:
        repository, tag = named.rsplit(":", 1)
    return repository, f"{tag}@{digest}" if digest else tag


def chart_image(resolved: pulumi.Input[str]) -> dict[str, pulumi.Output[str]]:
    parts = pulumi.Output.from_input(resolved).apply(chart_image_parts)
    return {"repository": parts[0], "tag": parts[1]}


def controller_values(
    cluster_name: str, region: str, vpc_id: pulumi.Input[str], role_arn: pulumi.Input[str], image: pulumi.Input[str], node_selector: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "clusterName": cluster_name,
        # Given here, the controller never asks the instance metadata service for them.
        "region": region,
        "vpcId": vpc_id,
        "image": chart_image(image),
        "replicaCount": 2,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": service_account_annotations(role_arn)},
        "nodeSelector": dict(node_selector),
        "resources": workloads.resources("50m", "128Mi", cpu_limit="500m"),
        "createIngressClassResource": False,
        "ingressClassParams": {"create": False},
        "enableServiceMutatorWebhook": False,
        "controllerConfig": {"featureGates": {"ALBGatewayAPI": False, "NLBGatewayAPI": False}},
        "keepTLSSecret": True,
    }


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    # IRSA role allowed `load_balancer_controller_policy()`.
    role_arn: pulumi.Input[str]
    image: pulumi.Input[str]
    # Labels of the nodes it runs on (the system pool).
    node_selector: Mapping[str, str]
    # The node groups: it is removed before them on destroy, after every binding it serves.
    wait_for: Sequence[pulumi.Resource] = field(default_factory=tuple)


class LoadBalancerController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:LoadBalancerController", name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=controller_values(args.cluster_name, args.region, args.vpc_id, args.role_arn, args.image, args.node_selector),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        self.register_outputs({"release": self.release.name})


def target_group_binding_spec(
    target_group_arn: pulumi.Input[str], service: str, service_port: int, security_group_id: pulumi.Input[str], pod_port: int
) -> dict[str, Any]:
    """Envoy's Service's pods as IP targets, reachable from the load balancer's security group only
    (the controller adds that rule to the pods' security group)."""
    return {
        "targetGroupARN": target_group_arn,
        "targetType": "ip",
        "serviceRef": {"name": service, "port": service_port},
        "networking": {
            "ingress": [{"from": [{"securityGroup": {"groupID": security_group_id}}], "ports": [{"protocol": "TCP", "port": pod_port}]}]
        },
    }


@dataclass(frozen=True)
class TargetGroupBindingArgs:
    namespace: str
    service: str
    service_port: int
    pod_port: int
    target_group_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    # The controller release (its webhook validates the binding; its finalizer deregisters the
    # targets, so it must outlive the binding) and whatever creates the namespace.
    wait_for: Sequence[pulumi.Resource] = field(default_factory=tuple)


class GatewayTargetBinding(pulumi.ComponentResource):
    binding: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: TargetGroupBindingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:GatewayTargetBinding", name, None, opts)
        self.binding = k8s.apiextensions.CustomResource(
            f"{name}-binding",
            api_version=TARGET_GROUP_BINDING_API,
            kind="TargetGroupBinding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.service, namespace=args.namespace, labels=workloads.labels(args.service, "gateway")),
            spec=target_group_binding_spec(
                args.target_group_arn, args.service, args.service_port, args.security_group_id, args.pod_port
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        self.register_outputs({"binding": self.binding.metadata})
