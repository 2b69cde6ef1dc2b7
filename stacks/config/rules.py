"""Rules that span config sections; each returns problems with the exact key path they concern."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from access.mlflow_teams import SHARED_TEAM
from components import formats
from components.catalog import (
    MAX_POOL_NODES,
    REGIONS,
    CatalogError,
    accelerator_offer,
    gpu_machine_type,
    node_allocatable,
    pool_machine_type,
)
from components.foundation.aws.subnet_plan import plan_subnets
from components.declarations import SHARED_MODEL_NAMESPACE, ModelResources, NodePool, Team
from components.pod_requests import DRIFT_JOB_RESOURCES, LOGGER_AGENT_REQUESTS, QUEUE_PROXY_RESOURCES
from stacks.config.schema import ModelDeployment, StackConfig

KNATIVE_METRICS = ("concurrency", "rps")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the stack config: where, what was given, and what is allowed."""

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (got {self.value!r})"


def cross_section_problems(config: StackConfig) -> list[Problem]:
    return [
        *_duplicate_names(config),
        *_gpu_pools_fit_cloud(config),
        *_gpu_pool_limits(config),
        *_model_placement(config),
        *_model_rollout(config),
        *_canary_fits_serving_mode(config),
        *_gpu_canary_capacity(config),
        *_prod_safety(config),
        *_image_source(config),
        *_system_pool_on_aws(config),
        *_alert_routing(config),
        *_model_teams(config),
        *_team_quotas(config),
        *_deployer_reaches_the_api(config),
        *_gateway(config),
        *refused_by_the_platform(config),
        *_endpoint_exposure(config),
    ]


def _gateway(config: StackConfig) -> list[Problem]:
    """The gateway gets what its cloud can give it (hosts on it: `_endpoint_exposure`)."""
    gateway, key = config.gateway, "mlops:gateway"
    problems = []
    for index, cidr in enumerate(gateway.source_cidrs):
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            problems.append(Problem(f"{key}.sourceCidrs[{index}]", cidr, "not a CIDR with its host bits unset (e.g. 203.0.113.0/24)"))
    if gateway.enabled and config.cloud in DNS_ZONES:
        problems += _gateway_zone(config)
    if config.cloud == "aws":
        # The NLB is IPv4-only and its security group takes IPv4 ranges: an IPv6 range could never match.
        problems += [
            Problem(f"{key}.sourceCidrs[{index}]", cidr, "on AWS an IPv4 range (the gateway's load balancer is IPv4-only)")
            for index, cidr in enumerate(gateway.source_cidrs)
            if _network_version(cidr) == 6
        ]
    if gateway.enabled and config.cloud == "local":
        if gateway.tls is not None and gateway.tls.issuer == "acme":
            problems.append(
                Problem(
                    f"{key}.tls.issuer",
                    "acme",
                    "a local cluster has no cloud DNS zone to answer the ACME DNS-01 challenge in; use 'provided' (a certificate in config)",
                )
            )
        if gateway.load_balancer == "internet-facing":
            problems.append(
                Problem(
                    f"{key}.loadBalancer",
                    gateway.load_balancer,
                    "a local cluster has no cloud load balancer; use 'internal' and reach the gateway with kubectl port-forward",
                )
            )
        if gateway.source_cidrs:
            problems.append(
                Problem(f"{key}.sourceCidrs", gateway.source_cidrs, "a local cluster has no load balancer to admit client ranges; remove sourceCidrs")
            )
    return problems


# Where each cloud keeps the gateway's DNS zone, and what its zone identifiers look like: a Route 53
# hosted zone id as `aws route53 list-hosted-zones` prints it without the /hostedzone/ prefix; a Cloud
# DNS managed zone's name (not its DNS name).
DNS_ZONES = {
    "aws": (
        "mlops:aws.hostedZoneId",
        "Route 53 hosted zone",
        re.compile(r"^Z[0-9A-Z]{1,31}$"),
        "a Route 53 hosted zone id: Z followed by capital letters and digits, e.g. Z0123456789ABCDEFGHIJ",
    ),
    "gcp": (
        "mlops:gcp.dnsZone",
        "Cloud DNS managed zone",
        re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"),
        "a Cloud DNS managed zone name: lowercase letters, digits and dashes, starting with a letter (e.g. mlops-prod)",
    ),
}


def _gateway_zone(config: StackConfig) -> list[Problem]:
    """ACME's DNS-01 challenge needs the domain's zone; a zone given must be one the cloud could name."""
    key, what, pattern, allowed = DNS_ZONES[config.cloud]
    zone, tls = config.gateway_dns_zone, config.gateway.tls
    if zone is None and tls is not None and tls.issuer == "acme":
        return [Problem(key, None, f"the {what} of mlops:gateway.domain: tls.issuer acme answers DNS-01 challenges there")]
    if zone is not None and not pattern.match(zone):
        return [Problem(key, zone, allowed)]
    return []


def _network_version(cidr: str) -> int | None:
    try:
        return ipaddress.ip_network(cidr, strict=False).version
    except ValueError:
        return None  # not a range at all: _gateway names it


def _deployer_reaches_the_api(config: StackConfig) -> list[Problem]:
    """A private-only endpoint with no declared way in: `pulumi up` creates the cluster, then cannot create one object in it."""
    cluster = config.cluster
    if config.cloud == "local" or not cluster.private_endpoint or cluster.runner_cidrs:
        return []
    return [
        Problem(
            "mlops:cluster.runnerCidrs",
            [],
            "the API endpoint is private-only (privateEndpoint: true) and no way in is declared; list the CIDRs of the "
            "in-VPC runner or tunnel bastion that runs `pulumi up`, or set privateEndpoint: false with publicAccessCidrs "
            "(the runner's egress, the office)",
        )
    ]


def _duplicate_names(config: StackConfig) -> list[Problem]:
    problems = []
    for key, names in (
        ("mlops:models", [m.name for m in config.models]),
        ("mlops:nodePools", [p.name for p in config.node_pools]),
        ("mlops:teams", [t.name for t in config.teams]),
    ):
        for name, count in Counter(names).items():
            if count > 1:
                index = [i for i, n in enumerate(names) if n == name][1]
                problems.append(
                    Problem(f"{key}[{index}].name", name, f"name is used by {count} entries; names must be unique")
                )
    return problems


def _region(config: StackConfig) -> str:
    return config.aws.region if config.cloud == "aws" else config.gcp.region


def _gpu_pools_fit_cloud(config: StackConfig) -> list[Problem]:
    if config.cloud == "local":
        return []
    problems = []
    for index, pool in enumerate(config.node_pools):
        if pool.accelerator is None:
            continue
        path = f"mlops:nodePools[{index}]"
        try:
            accelerator_offer(config.cloud, pool.accelerator)
        except CatalogError as error:
            problems.append(Problem(f"{path}.accelerator", pool.accelerator, str(error)))
            continue
        try:
            gpu_machine_type(config.cloud, pool.accelerator, pool.accelerator_count, pool.size, _region(config))
        except CatalogError as error:
            problems.append(Problem(path, f"{pool.accelerator_count} x {pool.accelerator} {pool.size}", str(error)))
    return problems


def _gpu_pool_limits(config: StackConfig) -> list[Problem]:
    return [
        Problem(
            f"mlops:nodePools[{index}].maxSize",
            pool.max_size,
            f"GPU pools are capped at mlops:limits.maxGpuPoolSize = {config.limits.max_gpu_pool_size}",
        )
        for index, pool in enumerate(config.node_pools)
        if pool.role == "gpu" and pool.max_size > config.limits.max_gpu_pool_size
    ]


def model_pods(model: ModelDeployment, path: str) -> list[tuple[str, ModelResources]]:
    """(key path, resources) of every pod a model runs: serving, its training Job, its batch scoring."""
    pods = [(f"{path}.resources", model.resources)]
    if model.retraining is not None and model.retraining.job is not None:
        pods.append((f"{path}.retraining.job.resources", model.retraining.job.resources))
    if model.batch is not None:
        pods.append((f"{path}.batch.resources", model.batch.resources))
    return pods


def _model_placement(config: StackConfig) -> list[Problem]:
    """Serving, training and batch pods pass the same GPU checks: capped per pod, on a declared GPU
    pool whose nodes carry enough GPUs."""
    problems = []
    gpu_pools = {p.name: p for p in config.node_pools if p.role == "gpu"}
    for index, model in enumerate(config.models):
        for path, resources in model_pods(model, f"mlops:models[{index}]"):
            problems += _pod_placement(config, gpu_pools, path, resources)
    return problems


def _pod_placement(config: StackConfig, gpu_pools: dict[str, NodePool], path: str, resources: ModelResources) -> list[Problem]:
    problems = []
    if resources.gpus > config.limits.max_gpus_per_model:
        problems.append(
            Problem(f"{path}.gpus", resources.gpus, f"models are capped at mlops:limits.maxGpusPerModel = {config.limits.max_gpus_per_model}")
        )
    if resources.gpu_pool is None:
        return problems
    pool = gpu_pools.get(resources.gpu_pool)
    if pool is None:
        return [
            *problems,
            Problem(f"{path}.gpuPool", resources.gpu_pool, f"no GPU pool of that name; GPU pools: {', '.join(sorted(gpu_pools)) or 'none declared'}"),
        ]
    if resources.gpus > pool.accelerator_count:
        problems.append(
            Problem(f"{path}.gpus", resources.gpus, f"pool {pool.name!r} nodes carry {pool.accelerator_count} GPU(s); a replica cannot span nodes")
        )
    return problems


def _model_rollout(config: StackConfig) -> list[Problem]:
    problems = []
    for index, model in enumerate(config.models):
        path = f"mlops:models[{index}]"
        reference = model.model
        if reference.artifact_uri is None:
            selector = f"--version {reference.version}" if reference.version else f"--alias {reference.alias}"
            problems.append(
                Problem(
                    f"{path}.model.artifactUri",
                    None,
                    f"not resolved; run `mlops models resolve {model.name} --stack <stack> {selector}` so the stack "
                    "records exactly which artifact it serves",
                )
            )
        canary = model.canary
        if canary is not None and canary.previous_artifact_uri is not None and canary.previous_artifact_uri == reference.artifact_uri:
            problems.append(
                Problem(
                    f"{path}.canary.previousArtifactUri",
                    canary.previous_artifact_uri,
                    "is the artifact the canary serves; a canary compares a new artifact with the stable one",
                )
            )
    return problems


def _canary_fits_serving_mode(config: StackConfig) -> list[Problem]:
    """RawDeployment ignores `canaryTrafficPercent` (kserve #5335, #4074) and Knative-only settings.

    In that mode the component renders the canary as `spec.canary` next to a named stable
    predictor, which needs to know what stable serves; anything it could only express through a
    field the mode ignores is refused here rather than silently dropped by the controller.
    """
    if config.kserve.deployment_mode != "RawDeployment":
        return []
    problems = []
    for index, model in enumerate(config.models):
        path = f"mlops:models[{index}]"
        canary = model.canary
        # At 100 % the model is promoted: one predictor, no stable side to name.
        if canary is not None and canary.traffic_percent < 100:
            for key, value in (("previousArtifactUri", canary.previous_artifact_uri), ("previousVersion", canary.previous_version)):
                if value is None:
                    problems.append(
                        Problem(
                            f"{path}.canary.{key}",
                            None,
                            "RawDeployment mode ignores canaryTrafficPercent; the canary is rendered as spec.canary next to a "
                            "stable predictor, which needs canary.previousArtifactUri and canary.previousVersion "
                            "(or use mlops:kserve.deploymentMode Serverless)",
                        )
                    )
            if canary.previous_version is not None and canary.previous_version == model.model.deployed_version:
                problems.append(
                    Problem(
                        f"{path}.canary.previousVersion",
                        canary.previous_version,
                        "equals the canary's version; stable and canary predictors are named after their versions and must differ",
                    )
                )
        if model.autoscaling.min_replicas == 0:
            problems.append(
                Problem(
                    f"{path}.autoscaling.minReplicas",
                    0,
                    "scale to zero needs Serverless (Knative) mode; use minReplicas >= 1 in RawDeployment mode",
                )
            )
        if model.autoscaling.metric in KNATIVE_METRICS:
            problems.append(
                Problem(
                    f"{path}.autoscaling.metric",
                    model.autoscaling.metric,
                    "concurrency and rps are Knative metrics that RawDeployment mode ignores; use cpu or memory",
                )
            )
    return problems


def canary_replicas(model: ModelDeployment) -> int:
    """Replicas the canary may run next to stable: its traffic share of maxReplicas, at least one
    and at least minReplicas (each Knative revision keeps its own minimum)."""
    if model.canary is None or model.canary.traffic_percent == 100:
        # Promoted: one revision serves everything.
        return 0
    share = math.ceil(model.autoscaling.max_replicas * model.canary.traffic_percent / 100)
    return max(1, model.autoscaling.min_replicas, share)


def _gpu_canary_capacity(config: StackConfig) -> list[Problem]:
    """A canary doubles GPU demand for its replicas (kserve #4748): it must fit next to stable."""
    problems = []
    for index, model in enumerate(config.models):
        pool = config.pool(model.resources.gpu_pool) if model.resources.gpu_pool else None
        if model.canary is None or pool is None or pool.role != "gpu":
            continue
        capacity = pool.max_size * pool.accelerator_count
        neighbours = sum(
            (other.autoscaling.max_replicas + canary_replicas(other)) * other.resources.gpus
            for other in config.models
            if other is not model and other.resources.gpu_pool == pool.name
        )
        # Training and batch Jobs of any model on the pool take their GPUs while they run.
        neighbours += sum(
            resources.gpus for other in config.models for _, resources in model_pods(other, "")[1:] if resources.gpu_pool == pool.name
        )
        stable = model.autoscaling.max_replicas * model.resources.gpus
        canary = canary_replicas(model) * model.resources.gpus
        if stable + canary + neighbours > capacity:
            problems.append(
                Problem(
                    f"mlops:models[{index}].canary",
                    f"{model.canary.traffic_percent}%",
                    f"GPU pool {pool.name!r} holds {capacity} GPU(s) (maxSize {pool.max_size} x {pool.accelerator_count}); "
                    f"stable needs up to {stable} (maxReplicas {model.autoscaling.max_replicas} x {model.resources.gpus}), "
                    f"the canary {canary} more ({canary_replicas(model)} replica(s)), other models and training/batch Jobs on the pool {neighbours}: "
                    f"{stable + canary + neighbours} in all; raise the pool's maxSize or lower autoscaling.maxReplicas",
                )
            )
    return problems


def _image_source(config: StackConfig) -> list[Problem]:
    if config.images.source == "stackRegistry" and config.cloud == "local":
        return [
            Problem(
                "mlops:images.source",
                config.images.source,
                "a local cluster has no stack registry; use 'reference' (images as configured)",
            )
        ]
    return []


def _system_pool_on_aws(config: StackConfig) -> list[Problem]:
    """The foundation's own controllers (EKS: the cluster autoscaler) are pinned to the system pool."""
    if config.cloud == "aws" and not any(pool.role == "system" for pool in config.node_pools):
        return [
            Problem(
                "mlops:nodePools",
                [pool.name for pool in config.node_pools],
                "an aws stack needs a pool with role 'system': the cluster autoscaler runs there",
            )
        ]
    return []


def _prod_safety(config: StackConfig) -> list[Problem]:
    if not config.is_prod:
        return []
    problems = []
    if "0.0.0.0/0" in config.cluster.public_access_cidrs:
        problems.append(
            Problem(
                "mlops:cluster.publicAccessCidrs",
                config.cluster.public_access_cidrs,
                "prod clusters may not open the API to 0.0.0.0/0; list your office/VPN CIDRs",
            )
        )
    for index, model in enumerate(config.models):
        if model.canary is None:
            problems.append(
                Problem(
                    f"mlops:models[{index}].canary",
                    None,
                    "prod models roll out behind a canary: declare canary (gates, steps; trafficPercent 100 while "
                    "no new version is being rolled out)",
                )
            )
    if config.cloud == "aws" and len(config.aws.zones) < 3:
        problems.append(Problem("mlops:aws.zones", config.aws.zones, "prod spans 3 availability zones"))
    return problems


def _alert_routing(config: StackConfig) -> list[Problem]:
    """Every route leads to a declared receiver, and a prod stack pages someone for critical alerts. (A
    team may list a model the stack does not serve yet or any more: its route then matches nothing.)"""
    alerting, key = config.alerting, "mlops:alerting"
    declared = alerting.receiver_names()
    allowed = f"declared receivers: {', '.join(declared) or '(none)'}"
    problems = [
        Problem(f"{key}.receivers[{index}].name", name, "receiver names must be unique")
        for index, name in enumerate(declared)
        if name in declared[:index]
    ]
    if alerting.receivers and alerting.default_receiver is None:
        problems.append(Problem(f"{key}.defaultReceiver", None, f"name the receiver of alerts no other route takes ({allowed})"))
    references = [("defaultReceiver", alerting.default_receiver), ("criticalReceiver", alerting.critical_receiver)]
    for index, team in enumerate(alerting.teams):
        references += [(f"teams[{index}].receiver", team.receiver), (f"teams[{index}].criticalReceiver", team.critical_receiver)]
    for path, name in references:
        if name is not None and name not in declared:
            problems.append(Problem(f"{key}.{path}", name, f"unknown receiver; {allowed}"))
    if config.is_prod and alerting.critical_receiver is None:
        problems.append(
            Problem(f"{key}.criticalReceiver", None, f"a prod stack must page someone for critical alerts; name a receiver ({allowed})")
        )
    return problems


# --- Teams -------------------------------------------------------------------------------------


def _model_teams(config: StackConfig) -> list[Problem]:
    """A model's team, and an alert route's team once teams are declared, names a declared team; no
    team takes the name of the MLflow sync job's built-in team."""
    declared = [team.name for team in config.teams]
    allowed = f"declared teams (mlops:teams): {', '.join(declared) or '(none)'}"
    problems = [
        Problem(f"mlops:models[{index}].team", model.team, f"unknown team; {allowed}")
        for index, model in enumerate(config.models)
        if model.team is not None and model.team not in declared
    ]
    problems += [
        Problem(
            f"mlops:teams[{index}].name",
            name,
            f"reserved: MLflow role mlops-team-{SHARED_TEAM} belongs to the models without a team (namespace {SHARED_MODEL_NAMESPACE}); choose another name",
        )
        for index, name in enumerate(declared)
        if name == SHARED_TEAM
    ]
    if declared:
        problems += [
            Problem(f"mlops:alerting.teams[{index}].team", route.team, f"unknown team; {allowed}")
            for index, route in enumerate(config.alerting.teams)
            if route.team not in declared
        ]
    return problems


@dataclass(frozen=True)
class Requests:
    """Resource requests summed over containers: CPU in cores, memory in bytes, GPUs, and the pods."""

    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    gpus: int = 0
    pods: int = 0

    @classmethod
    def container(cls, cpu: str, memory: str, gpus: int = 0) -> "Requests":
        return cls(formats.quantity_value(cpu), formats.quantity_value(memory), gpus)

    def __add__(self, other: "Requests") -> "Requests":
        return Requests(self.cpu + other.cpu, self.memory + other.memory, self.gpus + other.gpus, self.pods + other.pods)

    def times(self, count: int) -> "Requests":
        return Requests(self.cpu * count, self.memory * count, self.gpus * count, self.pods * count)


def _pod(resources: ModelResources) -> Requests:
    return Requests.container(resources.cpu, resources.memory, resources.gpus) + Requests(pods=1)


def model_requests(model: ModelDeployment, deployment_mode: str) -> Requests:
    """What a model's pods request at their peak, as its namespace's ResourceQuota counts them: every
    replica at maxReplicas plus the canary's, each with the logger agent KServe adds (and Knative's
    queue-proxy in Serverless mode), and one run of each of its Jobs (drift, training, batch)."""
    replica = _pod(model.resources) + Requests.container(LOGGER_AGENT_REQUESTS["cpu"], LOGGER_AGENT_REQUESTS["memory"])
    if deployment_mode == "Serverless":
        queue_proxy = QUEUE_PROXY_RESOURCES
        replica += Requests.container(queue_proxy["queue-sidecar-cpu-request"], queue_proxy["queue-sidecar-memory-request"])
    total = replica.times(model.autoscaling.max_replicas + canary_replicas(model))
    drift = DRIFT_JOB_RESOURCES["requests"]
    total += Requests.container(drift["cpu"], drift["memory"]) + Requests(pods=1)
    for _, resources in model_pods(model, "")[1:]:
        total += _pod(resources)
    return total


def _team_quotas(config: StackConfig) -> list[Problem]:
    """A team's quota holds its models at their peak; the quota would otherwise refuse their pods at run time."""
    problems = []
    for index, team in enumerate(config.teams):
        models = [model for model in config.models if model.team == team.name]
        if not models:
            continue
        need = sum((model_requests(model, config.kserve.deployment_mode) for model in models), Requests())
        problems += _quota_short(index, team, [model.name for model in models], need)
    return problems


def _quota_short(index: int, team: Team, models: list[str], need: Requests) -> list[Problem]:
    path = f"mlops:teams[{index}].quota"
    why = (
        f"the team's models ({', '.join(models)}) request up to {{need}} at maxReplicas plus canary replicas, with their "
        "sidecars and one run of each Job (drift, training, batch); raise the quota to at least that or lower the models' "
        "autoscaling.maxReplicas or resources"
    )
    problems = []
    if need.gpus > team.quota.gpus:
        problems.append(Problem(f"{path}.gpus", team.quota.gpus, why.format(need=f"{need.gpus} GPU(s)")))
    if need.cpu > formats.quantity_value(team.quota.cpu):
        problems.append(Problem(f"{path}.cpu", team.quota.cpu, why.format(need=f"{math.ceil(need.cpu * 1000)}m CPU")))
    if need.memory > formats.quantity_value(team.quota.memory):
        problems.append(Problem(f"{path}.memory", team.quota.memory, why.format(need=f"{math.ceil(need.memory / 2**20)}Mi memory")))
    if need.pods > team.quota.pods:
        problems.append(Problem(f"{path}.pods", team.quota.pods, why.format(need=f"{need.pods} pods")))
    return problems


# --- What a cloud or the API server would refuse (issue 13) ---------------------------------------


def refused_by_the_platform(config: StackConfig) -> list[Problem]:
    return [
        *_regions_exist(config),
        *_prod_gke_spans_zones(config),
        *_networks_parse_and_fit(config),
        *_pool_sizes_within_cloud_limits(config),
        *_models_fit_one_node(config),
        *_gpu_models_need_a_cloud(config),
        *_local_cluster_named(config),
        *_host_names(config),
        *_cloud_identifiers(config),
    ]


def _regions_exist(config: StackConfig) -> list[Problem]:
    if config.cloud == "local":
        return []
    settings = config.aws if config.cloud == "aws" else config.gcp
    problems = []
    if settings.region not in REGIONS[config.cloud]:
        problems.append(
            Problem(
                f"mlops:{config.cloud}.region",
                settings.region,
                f"{config.cloud} has no such region; regions: {', '.join(sorted(REGIONS[config.cloud]))}",
            )
        )
    separator = "" if config.cloud == "aws" else "-"
    for index, zone in enumerate(settings.zones):
        suffix = zone.removeprefix(settings.region + separator)
        if not re.fullmatch(r"[a-z]", suffix):
            problems.append(
                Problem(f"mlops:{config.cloud}.zones[{index}]", zone, f"a zone is the region followed by {separator or ''}one letter")
            )
    for zone, count in Counter(settings.zones).items():
        if count > 1:
            problems.append(Problem(f"mlops:{config.cloud}.zones", settings.zones, f"zone {zone!r} is listed {count} times"))
    return problems


def _prod_gke_spans_zones(config: StackConfig) -> list[Problem]:
    if config.cloud != "gcp" or not config.is_prod or len(config.gcp.zones) >= 3:
        return []
    return [Problem("mlops:gcp.zones", config.gcp.zones, "prod spans 3 zones (a single-zone cluster goes down with its zone)")]


def _network(path: str, text: str, problems: list[Problem]) -> ipaddress.IPv4Network | None:
    try:
        network = ipaddress.ip_network(text)
    except ValueError as error:
        problems.append(Problem(path, text, f"not a CIDR with its host bits zero ({error}); e.g. 10.40.0.0/16"))
        return None
    if network.version != 4:
        problems.append(Problem(path, text, "an IPv4 CIDR is required"))
        return None
    return network


def _networks_parse_and_fit(config: StackConfig) -> list[Problem]:
    problems: list[Problem] = []
    for index, cidr in enumerate(config.cluster.public_access_cidrs):
        _network(f"mlops:cluster.publicAccessCidrs[{index}]", cidr, problems)
    if config.cloud == "aws":
        vpc = _network("mlops:aws.vpcCidr", config.aws.vpc_cidr, problems)
        if vpc is not None and vpc.prefixlen < 16:
            problems.append(Problem("mlops:aws.vpcCidr", config.aws.vpc_cidr, "AWS VPCs are /16 to /28; use a /16 to /20"))
        elif vpc is not None:
            try:
                plan_subnets(config.aws.vpc_cidr, config.aws.zones)
            except ValueError as error:
                problems.append(Problem("mlops:aws.vpcCidr", config.aws.vpc_cidr, str(error)))
    if config.cloud == "gcp":
        problems += _gcp_ranges(config)
    return problems


def _gcp_ranges(config: StackConfig) -> list[Problem]:
    problems: list[Problem] = []
    keys = {
        "networkCidr": config.gcp.network_cidr,
        "podsCidr": config.gcp.pods_cidr,
        "servicesCidr": config.gcp.services_cidr,
        "controlPlaneCidr": config.gcp.control_plane_cidr,
    }
    ranges = {key: _network(f"mlops:gcp.{key}", text, problems) for key, text in keys.items()}
    parsed = {key: network for key, network in ranges.items() if network is not None}
    names = list(parsed)
    for position, first in enumerate(names):
        for second in names[position + 1 :]:
            if parsed[first].overlaps(parsed[second]):
                problems.append(
                    Problem(f"mlops:gcp.{second}", keys[second], f"overlaps mlops:gcp.{first} ({keys[first]}); GKE ranges must be disjoint")
                )
    plane = parsed.get("controlPlaneCidr")
    if plane is not None and plane.prefixlen != 28:
        problems.append(Problem("mlops:gcp.controlPlaneCidr", keys["controlPlaneCidr"], "GKE's private control plane takes exactly a /28"))
    # GKE gives every node a /24 of the Pod range (110 pods per node) and one address of the subnet;
    # pool sizes are totals across zones (total_max_node_count).
    nodes = sum(pool.max_size for pool in config.node_pools)
    pods = parsed.get("podsCidr")
    if pods is not None and (pods.prefixlen > 24 or 2 ** (24 - pods.prefixlen) < nodes):
        problems.append(
            Problem(
                "mlops:gcp.podsCidr",
                keys["podsCidr"],
                f"holds {2 ** max(24 - pods.prefixlen, 0)} node /24 block(s) but the pools may grow to {nodes} nodes "
                "(sum of maxSize)",
            )
        )
    subnet = parsed.get("networkCidr")
    if subnet is not None and subnet.num_addresses - 4 < nodes:
        problems.append(
            Problem("mlops:gcp.networkCidr", keys["networkCidr"], f"has {subnet.num_addresses - 4} usable addresses for up to {nodes} nodes")
        )
    return problems


def _pool_sizes_within_cloud_limits(config: StackConfig) -> list[Problem]:
    limit = MAX_POOL_NODES.get(config.cloud)
    if limit is None:
        return []
    if config.cloud == "gcp":
        limit *= len(config.gcp.zones)  # GKE's limit is per zone; maxSize is the pool's total
    return [
        Problem(f"mlops:nodePools[{index}].maxSize", pool.max_size, f"{config.cloud} allows at most {limit} nodes in this pool")
        for index, pool in enumerate(config.node_pools)
        if pool.max_size > limit
    ]


def _models_fit_one_node(config: StackConfig) -> list[Problem]:
    """A replica (stable or canary: both have the model's resources) must fit one node's allocatable.

    GPU models are pinned to their pool; other models land on any untainted pool, so they must fit
    the largest one. On `local` the nodes are whatever the cluster has, unknown here."""
    if config.cloud == "local":
        return []
    region = _region(config)
    problems = []
    for index, model in enumerate(config.models):
        if model.resources.gpu_pool:
            pinned = config.pool(model.resources.gpu_pool)
            candidates = [pinned] if pinned is not None else []  # a missing pool is _model_placement's
        else:
            candidates = [pool for pool in config.node_pools if pool.role != "gpu"]
        try:
            nodes = [
                (pool, node_allocatable(config.cloud, pool_machine_type(config.cloud, pool.size, pool.accelerator, pool.accelerator_count, region)))
                for pool in candidates
            ]
        except CatalogError:
            continue  # the pool itself is refused by _gpu_pools_fit_cloud
        if not nodes:
            continue
        cpu = formats.quantity_value(model.resources.cpu) * 1000
        memory = formats.quantity_value(model.resources.memory) / 2**20
        pool, node = max(nodes, key=lambda item: (item[1].memory_mib, item[1].millicpu))
        where = f"pool {pool.name!r} ({node.machine_type})"
        if cpu > node.millicpu:
            problems.append(
                Problem(
                    f"mlops:models[{index}].resources.cpu",
                    model.resources.cpu,
                    f"one replica needs more CPU than a node of {where} can give: {node.millicpu}m allocatable",
                )
            )
        if memory > node.memory_mib:
            problems.append(
                Problem(
                    f"mlops:models[{index}].resources.memory",
                    model.resources.memory,
                    f"one replica needs more memory than a node of {where} can give: {node.memory_mib}Mi allocatable "
                    "(capacity minus kube-reserved and the eviction threshold)",
                )
            )
    return problems


def _gpu_models_need_a_cloud(config: StackConfig) -> list[Problem]:
    """The local foundation knows no GPU placement (labels, taints) for any pool."""
    if config.cloud != "local":
        return []
    return [
        Problem(
            f"mlops:models[{index}].resources.gpus",
            model.resources.gpus,
            "GPU models need a cloud stack (aws or gcp): the local foundation places no pods on GPU pools",
        )
        for index, model in enumerate(config.models)
        if model.resources.gpus
    ]


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _local_cluster_named(config: StackConfig) -> list[Problem]:
    if config.cloud != "local":
        return []
    problems = []
    if not config.local.kube_context.strip():
        problems.append(
            Problem(
                "mlops:local.kubeContext",
                config.local.kube_context,
                "empty: the provider would use whatever context kubectl points at; name the cluster's context",
            )
        )
    if not _DNS_SUBDOMAIN.match(config.local.storage_class) or len(config.local.storage_class) > 253:
        problems.append(
            Problem("mlops:local.storageClass", config.local.storage_class, "a StorageClass name is a DNS subdomain (lowercase, digits, '-', '.')")
        )
    return problems


def _public_hosts(config: StackConfig) -> tuple[tuple[str, str | None], ...]:
    return (("mlops:mlflow.hostname", config.mlflow.hostname), ("mlops:monitoring.grafanaHostname", config.monitoring.grafana_hostname))


def _is_host_name(host: str) -> bool:
    return len(host) <= 253 and bool(_DNS_SUBDOMAIN.match(host)) and "." in host


def _host_names(config: StackConfig) -> list[Problem]:
    return [
        Problem(path, host, "a host name is a lowercase DNS name (letters, digits, '-', '.'), at most 253 characters")
        for path, host in _public_hosts(config)
        if host is not None and not _is_host_name(host)
    ]


# GCP project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter
# (Resource Manager "Creating and managing projects"); IAM role ARNs: arn:<partition>:iam::<12 digits>:role/<path+name>.
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")


def _cloud_identifiers(config: StackConfig) -> list[Problem]:
    problems = []
    if config.cloud == "gcp" and not _GCP_PROJECT.match(config.gcp.project):
        problems.append(
            Problem("mlops:gcp.project", config.gcp.project, "a GCP project id is 6-30 lowercase letters, digits and hyphens, starting with a letter")
        )
    if config.cloud == "aws":
        problems += [
            Problem(f"mlops:aws.adminRoleArns[{index}]", arn, "not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
            for index, arn in enumerate(config.aws.admin_role_arns)
            if not _ROLE_ARN.match(arn)
        ]
    return problems


# A Secret data key (API keys are stored under the consumer's client id): the API server's rule.
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# Envoy Gateway v1.9.0 CRD limits: JWTProvider.audiences MaxItems 8 (jwt_types.go), JWTClaim.values
# MaxItems 128 (authorization_types.go).
MAX_JWT_AUDIENCES = 8
MAX_CLAIM_VALUES = 128


def _external_hosts(config: StackConfig) -> list[tuple[str, str]]:
    """(config path, host) of everything the gateway serves: public models, MLflow, Grafana."""
    domain = config.gateway.domain or ""
    hosts = [
        (f"mlops:models[{index}].endpoint.host", model.endpoint.host or f"{model.name}.{domain}")
        for index, model in enumerate(config.models)
        if model.endpoint.public
    ]
    # A host that is no DNS name is reported by _host_names alone.
    hosts += [
        (path, host)
        for path, host in _public_hosts(config)
        if host is not None and _is_host_name(host)
    ]
    return hosts


def _endpoint_exposure(config: StackConfig) -> list[Problem]:
    """Public endpoints need the gateway, its token issuer for JWT, and a host its wildcard certificate covers."""
    gateway = config.gateway
    hosts = _external_hosts(config)
    if not gateway.enabled:
        off = "is served through the platform gateway, which is off: set mlops:gateway.enabled (with domain and tls)"
        return [
            *(Problem(f"mlops:models[{index}].endpoint.public", True, f"{off}, or make the model private")
              for index, model in enumerate(config.models) if model.endpoint.public),
            *(Problem(path, host, f"{off}, or remove the host") for path, host in hosts if not path.startswith("mlops:models")),
        ]
    problems = [
        Problem(path, host, f"the gateway's certificate covers {gateway.domain} and *.{gateway.domain}: use <name>.{gateway.domain}")
        for path, host in hosts
        if host.partition(".")[2] != gateway.domain
    ]
    seen: dict[str, str] = {}
    for path, host in hosts:
        if host in seen:
            problems.append(Problem(path, host, f"also the host of {seen[host]}; each external host serves one thing"))
        seen.setdefault(host, path)
    for index, model in enumerate(config.models):
        problems += _model_endpoint_problems(config, index, model)
    if gateway.jwt is not None and len(gateway.jwt.audiences) > MAX_JWT_AUDIENCES:
        problems.append(Problem("mlops:gateway.jwt.audiences", gateway.jwt.audiences, f"Envoy Gateway accepts at most {MAX_JWT_AUDIENCES} audiences"))
    login = gateway.oidc
    if login is not None and login.allowed_groups:
        if gateway.jwt is None or gateway.jwt.issuer != login.issuer:
            problems.append(
                Problem("mlops:gateway.oidc.allowedGroups", login.allowed_groups,
                        "groups are read from the verified ID token, whose keys come from mlops:gateway.jwt.jwksUri: "
                        f"set mlops:gateway.jwt with issuer {login.issuer!r}, or remove allowedGroups")
            )
        if len(login.allowed_groups) > MAX_CLAIM_VALUES:
            problems.append(Problem("mlops:gateway.oidc.allowedGroups", len(login.allowed_groups), f"at most {MAX_CLAIM_VALUES} groups"))
    return problems


def _model_endpoint_problems(config: StackConfig, index: int, model: ModelDeployment) -> list[Problem]:
    endpoint, path = model.endpoint, f"mlops:models[{index}].endpoint"
    if not endpoint.public:
        return []
    if endpoint.auth == "jwt":
        problems = []
        if config.gateway.jwt is None:
            problems.append(Problem(f"{path}.auth", "jwt", "needs the token issuer in mlops:gateway.jwt (issuer, audiences, jwksUri), or use apiKey"))
        if len(endpoint.consumers) > MAX_CLAIM_VALUES:
            problems.append(Problem(f"{path}.consumers", len(endpoint.consumers), f"at most {MAX_CLAIM_VALUES} consumers per model"))
        return problems
    return [
        Problem(f"{path}.consumers[{number}].name", consumer.name,
                "an API key consumer is a Secret key: letters, digits, '-', '_' and '.' only")
        for number, consumer in enumerate(endpoint.consumers)
        if not _SECRET_KEY.match(consumer.name)
    ]
