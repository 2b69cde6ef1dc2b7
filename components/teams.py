"""Per-team boundaries: a namespace per team, its quota, its people's access, its isolation.

A team's namespace `team-<name>` runs its models exactly as the shared serving namespace runs the
others: Pod Security `restricted`, default-deny with the serving namespace's flows (Knative, Kourier
and Prometheus in; platform services, the Pushgateway and cloud APIs out), and the
MODEL_NAMESPACE_LABEL the platform's flows to model pods select. No flow names another team's
namespace, so team A's pods and team B's never reach each other.

The ResourceQuota caps requests (the TeamQuota is declared in requests), always including
`requests.nvidia.com/gpu` so a team without GPUs cannot take any. Limits are not capped: the
platform's sidecars burst above their requests (the queue-proxy 25m CPU up to 1 CPU, KServe's storage
initializer 100Mi up to 1Gi), so a limits quota equal to the declared requests would refuse pods that
fit. No LimitRange is needed for the quota to admit the platform's pods, because every container
they run sets requests: the model server (`components.model.serving.pod_resources`), the drift,
training and batch Jobs (`workloads.resources`), the queue-proxy (`components.platform.knative`
QUEUE_PROXY_RESOURCES), KServe's storage initializer (kserve-resources chart values
`kserve.storage.resources`, v0.20.0) and its logger agent (`inferenceservice-config` `agent`:
cpuRequest 100m, memoryRequest 100Mi, config/configmap/inferenceservice.yaml at v0.20.0). A pod a
team member creates by hand without requests is refused by the quota, with a message naming the
missing request.

The team's groups get the built-in ClusterRole `edit` in their namespace only. `edit` reads but cannot
change the ResourceQuota; it can add NetworkPolicies, which open only the team's own side: another
team's default-deny still refuses the traffic, so no team alone can undo the isolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.declarations import Team, team_namespace
from components.namespaces import GATEWAY_ROUTES_LABEL, MODEL_NAMESPACE_LABEL, SERVING, SERVING_FLOWS, Flow, NamespaceSpec, declare_namespace

GPU_QUOTA = "requests.nvidia.com/gpu"
TEAM_LABEL = "mlops-platform/team"
EDIT_ROLE = "edit"


def per_namespace_name(name: str, namespace: str) -> str:
    """Pulumi name of an object repeated in every model namespace: the shared serving namespace's keeps
    the name it had before teams existed, so adding teams replaces nothing."""
    return name if namespace == SERVING else f"{name}-{namespace}"


def quota_hard(team: Team) -> dict[str, str]:
    quota = team.quota
    return {
        "requests.cpu": quota.cpu,
        "requests.memory": quota.memory,
        GPU_QUOTA: str(quota.gpus),
        "pods": str(quota.pods),
    }


def team_namespace_spec(team: Team) -> NamespaceSpec:
    return NamespaceSpec(
        team_namespace(team.name),
        flows=SERVING_FLOWS,
        cloud_identity=True,
        labels=(MODEL_NAMESPACE_LABEL, GATEWAY_ROUTES_LABEL, (TEAM_LABEL, team.name)),
    )


@dataclass(frozen=True)
class TeamNamespacesArgs:
    teams: Sequence[Team]
    # Flows the cloud adds to namespaces whose pods use its workload identity (GKE: its metadata server).
    cloud_flows: tuple[Flow, ...] = ()


class TeamNamespaces(pulumi.ComponentResource):
    """One namespace per team with its ResourceQuota, its groups' RoleBinding and its NetworkPolicies."""

    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: TeamNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:TeamNamespaces", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespaces = {}
        for team in args.teams:
            spec = team_namespace_spec(team)
            resource_name = f"{name}-{team.name}"
            namespace = declare_namespace(resource_name, spec, args.cloud_flows, child)
            self.namespaces[team.name] = namespace
            labels = {"app.kubernetes.io/part-of": "mlops-platform", TEAM_LABEL: team.name}
            k8s.core.v1.ResourceQuota(
                f"{resource_name}-quota",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="team-quota", namespace=namespace.metadata.name, labels=labels),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(team)),
                opts=child,
            )
            k8s.rbac.v1.RoleBinding(
                f"{resource_name}-edit",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="team-edit", namespace=namespace.metadata.name, labels=labels),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=EDIT_ROLE),
                subjects=[
                    k8s.rbac.v1.SubjectArgs(api_group="rbac.authorization.k8s.io", kind="Group", name=group) for group in team.groups
                ],
                opts=child,
            )
        self.register_outputs({"namespaces": {team: team_namespace(team) for team in self.namespaces}})
