"""Monthly cost of what a rendered stack declares, at minimum and maximum scale.

Priced from `policies/prices.yaml` (dated, sourced list prices): node pools by instance/machine
type and node count (GPU pools included: their min is usually 0), the cluster fee, databases,
NAT gateways, load balancers (cloud ones, Kubernetes Services of type LoadBalancer, the Envoy Service an
EnvoyProxy asks for) and the public IPv4 addresses of internet-facing ones, interface
endpoints, KMS keys and block storage (node disks, PersistentVolumeClaims). Works on rendering
documents (`Rendering.document()`), so a base rendered at another git ref can be priced too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRICES_FILE = Path(__file__).resolve().parents[2] / "policies" / "prices.yaml"
# Envoy Gateway's proxy settings (api/v1alpha1 EnvoyProxy at v1.9.0): its Service is a LoadBalancer,
# which the cloud builds a load balancer for, unless spec.provider.kubernetes.envoyService.type says
# otherwise (kubebuilder default LoadBalancer on KubernetesServiceSpec.Type, api/v1alpha1/shared_types.go).
ENVOY_PROXY_TYPE = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1.0, "Ti": 2**10, "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30}


class PriceError(ValueError):
    """A quantity in the rendering cannot be priced (the table is read as given)."""


@dataclass(frozen=True)
class Provenance:
    """Where a region's figures came from and when: the file's `sources`/`as_of`, unless the region
    carries its own (as `mlops prices refresh` writes them)."""

    source: str
    as_of: str


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    hours_per_month: float
    regions: dict[str, dict[str, dict[str, Any]]]
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = PRICES_FILE, overlay_dir: Path | None = None) -> "PriceTable":
        """prices.yaml, with each `mlops prices refresh` file (prices.d/<cloud>-<region>.yaml) laid over
        its region: refreshed keys replace the curated ones, the rest keep the file's provenance."""
        raw = yaml.safe_load(path.read_text())
        sources = {cloud: " ".join(str(text).split()) for cloud, text in (raw.get("sources") or {}).items()}
        regions: dict[str, dict[str, dict[str, Any]]] = {"aws": dict(raw.get("aws") or {}), "gcp": dict(raw.get("gcp") or {})}
        for refreshed_file in sorted((overlay_dir or path.parent / "prices.d").glob("*.yaml")):
            refreshed = yaml.safe_load(refreshed_file.read_text())
            cloud, region = refreshed.pop("cloud"), refreshed.pop("region")
            curated = regions[cloud].get(region)
            if curated is not None:
                refreshed["source"] = (
                    f"{refreshed['source']} as of {refreshed['as_of']} for machine types; "
                    f"the rest {curated.get('source') or sources.get(cloud, 'unknown')}"
                )
                refreshed["as_of"] = f"{refreshed['as_of']} / {curated.get('as_of') or raw['as_of']}"
            merged = dict(curated or {})
            for key, value in refreshed.items():
                merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
            regions[cloud][region] = merged
        return cls(str(raw["as_of"]), float(raw["hours_per_month"]), regions, sources)

    def region(self, cloud: str, region: str) -> dict[str, Any] | None:
        return self.regions.get(cloud, {}).get(region)

    def provenance(self, cloud: str, region: str) -> Provenance:
        table = self.region(cloud, region) or {}
        return Provenance(str(table.get("source") or self.sources.get(cloud, "unknown")), str(table.get("as_of") or self.as_of))


@dataclass(frozen=True)
class CostLine:
    """One priced thing: its monthly cost at the stack's minimum and maximum scale."""

    item: str
    resource: str
    monthly_min: float
    monthly_max: float


@dataclass(frozen=True)
class Unpriced:
    """A resource that costs money but has no figure in the table, and why."""

    resource: str
    item: str
    reason: str


@dataclass
class CostEstimate:
    stack: str
    cloud: str
    region: str
    as_of: str
    lines: list[CostLine] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    source: str = ""

    @property
    def partial(self) -> bool:
        return bool(self.unpriced)

    @property
    def monthly_min(self) -> float:
        return round(sum(line.monthly_min for line in self.lines), 2)

    @property
    def monthly_max(self) -> float:
        return round(sum(line.monthly_max for line in self.lines), 2)

    def to_markdown(self) -> str:
        if self.cloud == "local":
            return f"Stack `{self.stack}` runs on an existing local cluster: no cloud cost.\n"
        partial = f" (partial: {len(self.unpriced)} resource(s) unpriced, listed below)" if self.partial else ""
        lines = [
            f"Monthly cost of `{self.stack}` ({self.cloud} {self.region}, on-demand list prices as of {self.as_of}): "
            f"**${self.monthly_min:,.2f}** at minimum scale, **${self.monthly_max:,.2f}** at maximum scale{partial}.",
            "",
            f"Prices for {self.cloud} {self.region}: {self.source}, as of {self.as_of}.",
            "",
            "| item | resource | min $/month | max $/month |",
            "|---|---|---:|---:|",
        ]
        lines += [f"| {c.item} | `{c.resource}` | {c.monthly_min:,.2f} | {c.monthly_max:,.2f} |" for c in self.lines]
        if self.unpriced:
            lines += ["", "Not priced (the total above leaves them out):", ""]
            lines += [f"- `{u.resource}` ({u.item}): {u.reason}" for u in self.unpriced]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CostDelta:
    base: CostEstimate | None
    head: CostEstimate

    @property
    def monthly_min(self) -> float:
        return round(self.head.monthly_min - (self.base.monthly_min if self.base else 0.0), 2)

    @property
    def monthly_max(self) -> float:
        return round(self.head.monthly_max - (self.base.monthly_max if self.base else 0.0), 2)

    def to_markdown(self) -> str:
        base = f"${self.base.monthly_min:,.2f} – ${self.base.monthly_max:,.2f}" if self.base else "nothing (new stack)"
        unpriced = len(self.head.unpriced) + (len(self.base.unpriced) if self.base else 0)
        partial = f" Partial: {unpriced} resource(s) have no price (see below); the change leaves them out.\n" if unpriced else ""
        return partial + (
            f"Cost change: **{self.monthly_min:+,.2f} $/month** at minimum scale, **{self.monthly_max:+,.2f} $/month** at maximum scale "
            f"(base {base}; head ${self.head.monthly_min:,.2f} – ${self.head.monthly_max:,.2f}).\n"
        )


def cost_delta(base: Mapping[str, Any] | None, head: Mapping[str, Any], prices: PriceTable) -> CostDelta:
    return CostDelta(estimate(base, prices) if base is not None else None, estimate(head, prices))


def estimate(document: Mapping[str, Any], prices: PriceTable) -> CostEstimate:
    """Price a rendering document (the `state.json` of `mlops render`)."""
    config = document.get("config") or {}
    cloud = str(config.get("mlops:cloud", "local"))
    if cloud == "local":
        return CostEstimate(str(document.get("stack")), cloud, "", prices.as_of)
    region = str(config_object(config, f"mlops:{cloud}").get("region") or ("us-east-1" if cloud == "aws" else "us-central1"))
    provenance = prices.provenance(cloud, region)
    result = CostEstimate(str(document.get("stack")), cloud, region, provenance.as_of, source=provenance.source)
    table = prices.region(cloud, region)
    monthly = prices.hours_per_month
    for resource in document.get("resources") or []:
        if not resource.get("custom"):
            continue
        try:
            _price(resource, cloud, table or {}, monthly, result)
        except KeyError as missing:
            reason = (
                f"{PRICES_FILE.name} has no {cloud} region {region!r} (priced: {', '.join(sorted(prices.regions.get(cloud, {})))}; "
                "run `mlops prices refresh`)"
                if table is None
                else f"{PRICES_FILE.name} has no {missing.args[0]!r} for {cloud} {region}"
            )
            item = resource["type"] if table is None else str(missing.args[0])
            result.unpriced.append(Unpriced(resource["name"], item, reason))
    result.lines.sort(key=lambda line: (line.item, line.resource))
    return result


def _price(resource: Mapping[str, Any], cloud: str, table: dict[str, Any], monthly: float, result: CostEstimate) -> None:
    kind, name, inputs = resource["type"], resource["name"], resource.get("inputs") or {}

    def add(item: str, low: float, high: float | None = None) -> None:
        result.lines.append(CostLine(item, name, round(low, 2), round(low if high is None else high, 2)))

    if kind == "aws:eks/nodeGroup:NodeGroup":
        instance = (inputs.get("instanceTypes") or ["?"])[0]
        scaling = inputs.get("scalingConfig") or {}
        low, high = int(scaling.get("minSize", 0)), int(scaling.get("maxSize", 0))
        hourly = table["instance_hour"].get(instance)
        if hourly is None:
            result.unpriced.append(Unpriced(name, instance, f"no price for instance type {instance!r}"))
        else:
            add(f"nodes {instance}", hourly * monthly * low, hourly * monthly * high)
        disk = float(inputs.get("diskSize") or 20) * table["block_storage_gb_month"]
        add("node disks", disk * low, disk * high)
    elif kind == "gcp:container/nodePool:NodePool":
        _price_gke_pool(name, inputs, table, monthly, add, result)
    elif kind in ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster"):
        add("cluster fee", table["cluster_hour"] * monthly)
    elif kind == "aws:ec2/natGateway:NatGateway" or kind == "gcp:compute/routerNat:RouterNat":
        add("NAT gateway", table["nat_gateway_hour"] * monthly)
    elif kind in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer") and inputs.get("loadBalancerType") == "network":
        add("network load balancer (hourly; NLCUs, billed by traffic, not priced)", table["load_balancer_hour"] * monthly)
        if not inputs.get("internal"):
            # An internet-facing load balancer holds one public IPv4 address in each of its subnets' zones.
            add("public IPv4 addresses", table["public_ipv4_hour"] * monthly * max(1, len(inputs.get("subnets") or [])))
    elif kind in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "gcp:compute/forwardingRule:ForwardingRule", "gcp:compute/globalForwardingRule:GlobalForwardingRule"):
        add("load balancer", table["load_balancer_hour"] * monthly)
    elif kind == ENVOY_PROXY_TYPE and _envoy_service_type(inputs) == "LoadBalancer":
        add("load balancer (the gateway's Envoy Service; forwarding rule)", table["load_balancer_hour"] * monthly)
    elif kind == "gcp:compute/address:Address" and inputs.get("addressType") != "INTERNAL":
        result.unpriced.append(
            Unpriced(name, "static external address", "Google bills an external address by what it is attached to; prices.yaml has no figure for it")
        )
    elif kind == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        add("load balancer (Service)", table["load_balancer_hour"] * monthly)
    elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Interface":
        add("VPC interface endpoint", table["interface_endpoint_az_hour"] * monthly * max(1, len(inputs.get("subnetIds") or [])))
    elif kind in ("aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey"):
        add("KMS key", table["kms_key_month"])
    elif kind == "aws:rds/instance:Instance":
        copies = 2 if inputs.get("multiAz") else 1
        instance = str(inputs.get("instanceClass"))
        hourly = table["database_instance_hour"].get(instance)
        if hourly is None:
            result.unpriced.append(Unpriced(name, instance, f"no price for database instance class {instance!r}"))
        else:
            add(f"database {instance}{' multi-AZ' if copies == 2 else ''}", hourly * monthly * copies)
        add("database storage", float(inputs.get("allocatedStorage") or 0) * table["database_storage_gb_month"] * copies)
    elif kind == "gcp:sql/databaseInstance:DatabaseInstance":
        _price_cloud_sql(name, inputs, table, monthly, add, result)
    elif kind == "kubernetes:core/v1:PersistentVolumeClaim":
        add("volume", _gib((((inputs.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")) * table["block_storage_gb_month"])
    elif kind == "kubernetes:apps/v1:StatefulSet":
        for claim in (inputs.get("spec") or {}).get("volumeClaimTemplates") or []:
            replicas = int((inputs.get("spec") or {}).get("replicas", 1))
            size = _gib((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"))
            add("volume", size * replicas * table["block_storage_gb_month"])


def _envoy_service_type(inputs: Mapping[str, Any]) -> str:
    """The type of the Service Envoy Gateway creates for the proxies (LoadBalancer when unset)."""
    service = (((inputs.get("spec") or {}).get("provider") or {}).get("kubernetes") or {}).get("envoyService") or {}
    return str(service.get("type") or "LoadBalancer")


def _price_gke_pool(name: str, inputs: Mapping[str, Any], table: dict[str, Any], monthly: float, add: Any, result: CostEstimate) -> None:
    node_config = inputs.get("nodeConfig") or {}
    machine = str(node_config.get("machineType"))
    autoscaling = inputs.get("autoscaling") or {}
    zones = max(1, len(inputs.get("nodeLocations") or []))
    if "totalMinNodeCount" in autoscaling or "totalMaxNodeCount" in autoscaling:
        low, high = int(autoscaling.get("totalMinNodeCount", 0)), int(autoscaling.get("totalMaxNodeCount", 0))
    elif autoscaling:
        low, high = int(autoscaling.get("minNodeCount", 0)) * zones, int(autoscaling.get("maxNodeCount", 0)) * zones
    else:
        low = high = int(inputs.get("nodeCount", inputs.get("initialNodeCount", 1))) * zones
    hourly = table["instance_hour"].get(machine)
    if hourly is None:
        result.unpriced.append(Unpriced(name, machine, f"no price for machine type {machine!r}"))
        return
    for accelerator in node_config.get("guestAccelerators") or []:
        gpu_price = table["gpu_hour"].get(accelerator.get("type"))
        if gpu_price is None:
            result.unpriced.append(Unpriced(name, str(accelerator.get("type")), "no price for this accelerator; the nodes are priced without it"))
        else:
            hourly += gpu_price * int(accelerator.get("count", 1))
    add(f"nodes {machine}", hourly * monthly * low, hourly * monthly * high)
    disk = float(node_config.get("diskSizeGb") or 100) * table["block_storage_gb_month"]
    add("node disks", disk * low, disk * high)


def _price_cloud_sql(name: str, inputs: Mapping[str, Any], table: dict[str, Any], monthly: float, add: Any, result: CostEstimate) -> None:
    settings = inputs.get("settings") or {}
    tier = str(settings.get("tier"))
    copies = 2 if settings.get("availabilityType") == "REGIONAL" else 1
    custom = re.match(r"^db-custom-([0-9]+)-([0-9]+)$", tier)
    if custom is None:
        result.unpriced.append(Unpriced(name, tier, f"no price for Cloud SQL tier {tier!r} (only db-custom-<vCPU>-<MiB>)"))
    else:
        vcpus, memory_gb = int(custom.group(1)), int(custom.group(2)) / 1024
        hourly = vcpus * table["database_vcpu_hour"] + memory_gb * table["database_memory_gb_hour"]
        add(f"database {tier}{' regional' if copies == 2 else ''}", hourly * monthly * copies)
    add("database storage", float(settings.get("diskSize") or 10) * table["database_storage_gb_month"] * copies)


def _gib(quantity: Any) -> float:
    match = _QUANTITY.match(str(quantity or "0"))
    if match is None:
        raise PriceError(f"storage quantity {quantity!r} is not a Kubernetes quantity like 20Gi")
    return float(match.group(1)) * _GIB[match.group(2)]


def config_object(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}
