"""Rules that span config sections; each returns problems with the exact key path they concern."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from stacks.config.catalog import CatalogError, accelerator_offer, gpu_machine_type
from stacks.config.schema import StackConfig


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
        *_prod_safety(config),
    ]


def _duplicate_names(config: StackConfig) -> list[Problem]:
    problems = []
    for key, names in (
        ("mlops:models", [m.name for m in config.models]),
        ("mlops:nodePools", [p.name for p in config.node_pools]),
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


def _model_placement(config: StackConfig) -> list[Problem]:
    problems = []
    gpu_pools = {p.name: p for p in config.node_pools if p.role == "gpu"}
    for index, model in enumerate(config.models):
        path = f"mlops:models[{index}]"
        resources = model.resources
        if resources.gpus > config.limits.max_gpus_per_model:
            problems.append(
                Problem(
                    f"{path}.resources.gpus",
                    resources.gpus,
                    f"models are capped at mlops:limits.maxGpusPerModel = {config.limits.max_gpus_per_model}",
                )
            )
        if resources.gpu_pool is None:
            continue
        pool = gpu_pools.get(resources.gpu_pool)
        if pool is None:
            problems.append(
                Problem(
                    f"{path}.resources.gpuPool",
                    resources.gpu_pool,
                    f"no GPU pool of that name; GPU pools: {', '.join(sorted(gpu_pools)) or 'none declared'}",
                )
            )
            continue
        if resources.gpus > pool.accelerator_count:
            problems.append(
                Problem(
                    f"{path}.resources.gpus",
                    resources.gpus,
                    f"pool {pool.name!r} nodes carry {pool.accelerator_count} GPU(s); a replica cannot span nodes",
                )
            )
    return problems


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
    if config.cloud == "aws" and len(config.aws.zones) < 3:
        problems.append(Problem("mlops:aws.zones", config.aws.zones, "prod spans 3 availability zones"))
    return problems
