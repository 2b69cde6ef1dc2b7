"""Node pools as the clouds declare them: which are GPU pools, their labels, taints and size."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .kubernetes import GPU_RESOURCE, dig

EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
# EC2 families with NVIDIA GPUs (g4dn, g5, g6, p4d, p5, ...) and GKE machine families that come
# with GPUs attached (a2, a3, g2).
AWS_GPU_INSTANCE = re.compile(r"^(g[0-9]+[a-z]*|p[0-9]+[a-z]*)\.")
GCP_GPU_MACHINE = re.compile(r"^(a2|a3|g2)-")
# GKE taints every GPU node pool with nvidia.com/gpu=present:NoSchedule itself.
GKE_GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NO_SCHEDULE"}


@dataclass(frozen=True)
class Pool:
    name: str
    gpu: bool
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    max_size: int | None


def pool_of(resource_type: str, name: str, props: Mapping[str, Any]) -> Pool | None:
    if resource_type == EKS_NODE_GROUP:
        instance_types = props.get("instanceTypes") or []
        gpu = "NVIDIA" in str(props.get("amiType", "")).upper() or any(AWS_GPU_INSTANCE.match(t) for t in instance_types)
        labels = {**(props.get("labels") or {}), "eks.amazonaws.com/nodegroup": props.get("nodeGroupName") or name}
        return Pool(name, gpu, labels, tuple(props.get("taints") or []), _int(dig(props, "scalingConfig", "maxSize")))
    if resource_type == GKE_NODE_POOL:
        config = props.get("nodeConfig") or {}
        accelerators = [a for a in config.get("guestAccelerators") or [] if _int(a.get("count")) != 0]
        gpu = bool(accelerators) or bool(GCP_GPU_MACHINE.match(str(config.get("machineType", ""))))
        labels = {**(config.get("labels") or {}), "cloud.google.com/gke-nodepool": props.get("name") or name}
        for accelerator in accelerators:
            labels["cloud.google.com/gke-accelerator"] = accelerator.get("type", "")
        taints = tuple(config.get("taints") or []) + ((GKE_GPU_TAINT,) if gpu else ())
        return Pool(name, gpu, labels, taints, _gke_max_size(props))
    return None


def has_gpu_taint(pool: Pool) -> bool:
    return any(t.get("key") == GPU_RESOURCE and t.get("effect") in ("NO_SCHEDULE", "NoSchedule") for t in pool.taints)


def _gke_max_size(props: Mapping[str, Any]) -> int | None:
    autoscaling = props.get("autoscaling") or {}
    total = _int(autoscaling.get("totalMaxNodeCount"))
    if total is not None:
        return total
    zones = max(1, len(props.get("nodeLocations") or []))
    per_zone = _int(autoscaling.get("maxNodeCount"))
    if per_zone is not None:
        return per_zone * zones
    count = _int(props.get("nodeCount"))
    return count * zones if count is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
