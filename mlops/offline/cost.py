"""Monthly cost of what a rendered stack declares, at minimum and maximum scale.

Priced from `policies/prices.yaml` (dated, sourced list prices): node pools by instance/machine
type and node count (GPU pools included: their min is usually 0), the cluster fee, databases,
NAT gateways, load balancers (cloud ones and Kubernetes Services of type LoadBalancer), interface
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
_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1.0, "Ti": 2**10, "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30}


class PriceError(ValueError):
    """The price table lacks the region or the table itself is malformed."""


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    hours_per_month: float
    regions: dict[str, dict[str, dict[str, Any]]]

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> "PriceTable":
        raw = yaml.safe_load(path.read_text())
        return cls(str(raw["as_of"]), float(raw["hours_per_month"]), {"aws": raw["aws"], "gcp": raw["gcp"]})

    def region(self, cloud: str, region: str) -> dict[str, Any]:
        offered = self.regions.get(cloud, {})
        if region not in offered:
            raise PriceError(f"no {cloud} prices for region {region!r} in {PRICES_FILE.name}; priced regions: {', '.join(sorted(offered))}")
        return offered[region]


@dataclass(frozen=True)
class CostLine:
    """One priced thing: its monthly cost at the stack's minimum and maximum scale."""

    item: str
    resource: str
    monthly_min: float
    monthly_max: float


@dataclass
class CostEstimate:
    stack: str
    cloud: str
    region: str
    as_of: str
    lines: list[CostLine] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def monthly_min(self) -> float:
        return round(sum(line.monthly_min for line in self.lines), 2)

    @property
    def monthly_max(self) -> float:
        return round(sum(line.monthly_max for line in self.lines), 2)

    def to_markdown(self) -> str:
        if self.cloud == "local":
            return f"Stack `{self.stack}` runs on an existing local cluster: no cloud cost.\n"
        lines = [
            f"Monthly cost of `{self.stack}` ({self.cloud} {self.region}, on-demand list prices as of {self.as_of}): "
            f"**${self.monthly_min:,.2f}** at minimum scale, **${self.monthly_max:,.2f}** at maximum scale.",
            "",
            "| item | resource | min $/month | max $/month |",
            "|---|---|---:|---:|",
        ]
        lines += [f"| {c.item} | `{c.resource}` | {c.monthly_min:,.2f} | {c.monthly_max:,.2f} |" for c in self.lines]
        if self.unpriced:
            lines += ["", "Not priced (missing from the price table): " + ", ".join(f"`{u}`" for u in self.unpriced)]
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
        return (
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
    region = str(_config_object(config, f"mlops:{cloud}").get("region") or ("us-east-1" if cloud == "aws" else "us-central1"))
    result = CostEstimate(str(document.get("stack")), cloud, region, prices.as_of)
    table = prices.region(cloud, region)
    monthly = prices.hours_per_month
    for resource in document.get("resources") or []:
        if resource.get("custom"):
            _price(resource, cloud, table, monthly, result)
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
            result.unpriced.append(instance)
        else:
            add(f"nodes {instance}", hourly * monthly * low, hourly * monthly * high)
        disk = float(inputs.get("diskSize") or 20) * table["block_storage_gb_month"]
        add("node disks", disk * low, disk * high)
    elif kind == "gcp:container/nodePool:NodePool":
        _price_gke_pool(inputs, table, monthly, add, result)
    elif kind in ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster"):
        add("cluster fee", table["cluster_hour"] * monthly)
    elif kind == "aws:ec2/natGateway:NatGateway" or kind == "gcp:compute/routerNat:RouterNat":
        add("NAT gateway", table["nat_gateway_hour"] * monthly)
    elif kind in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "gcp:compute/forwardingRule:ForwardingRule", "gcp:compute/globalForwardingRule:GlobalForwardingRule"):
        add("load balancer", table["load_balancer_hour"] * monthly)
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
            result.unpriced.append(instance)
        else:
            add(f"database {instance}{' multi-AZ' if copies == 2 else ''}", hourly * monthly * copies)
        add("database storage", float(inputs.get("allocatedStorage") or 0) * table["database_storage_gb_month"] * copies)
    elif kind == "gcp:sql/databaseInstance:DatabaseInstance":
        _price_cloud_sql(inputs, table, monthly, add, result)
    elif kind == "kubernetes:core/v1:PersistentVolumeClaim":
        add("volume", _gib((((inputs.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")) * table["block_storage_gb_month"])
    elif kind == "kubernetes:apps/v1:StatefulSet":
        for claim in (inputs.get("spec") or {}).get("volumeClaimTemplates") or []:
            replicas = int((inputs.get("spec") or {}).get("replicas", 1))
            size = _gib((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"))
            add("volume", size * replicas * table["block_storage_gb_month"])


def _price_gke_pool(inputs: Mapping[str, Any], table: dict[str, Any], monthly: float, add: Any, result: CostEstimate) -> None:
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
        result.unpriced.append(machine)
        return
    for accelerator in node_config.get("guestAccelerators") or []:
        gpu_price = table["gpu_hour"].get(accelerator.get("type"))
        if gpu_price is not None:
            hourly += gpu_price * int(accelerator.get("count", 1))
    add(f"nodes {machine}", hourly * monthly * low, hourly * monthly * high)
    disk = float(node_config.get("diskSizeGb") or 100) * table["block_storage_gb_month"]
    add("node disks", disk * low, disk * high)


def _price_cloud_sql(inputs: Mapping[str, Any], table: dict[str, Any], monthly: float, add: Any, result: CostEstimate) -> None:
    settings = inputs.get("settings") or {}
    tier = str(settings.get("tier"))
    copies = 2 if settings.get("availabilityType") == "REGIONAL" else 1
    custom = re.match(r"^db-custom-([0-9]+)-([0-9]+)$", tier)
    if custom is None:
        result.unpriced.append(tier)
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


def _config_object(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}
