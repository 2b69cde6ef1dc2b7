"""The Pulumi program: read the stack config once, build the foundation, then the platform."""

from __future__ import annotations

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components.interfaces import Foundation
from components.namespaces import Flow, PlatformNamespaces, PlatformNamespacesArgs
from components.teams import TeamNamespaces, TeamNamespacesArgs
from stacks.config import StackConfig, load_stack_config
from stacks.local import build_local_foundation, local_provider
from stacks.models import ModelShard, build_models
from stacks.platform import build_platform


def stack_config() -> StackConfig:
    """Every config key Pulumi passed to the program, validated before any resource exists."""
    return load_stack_config({**get_config_env(), **CONFIG.get()})


def build_foundation(config: StackConfig) -> tuple[Foundation, PlatformNamespaces]:
    if config.cloud == "local":
        provider = local_provider(config)
        namespaces = PlatformNamespaces("namespaces", PlatformNamespacesArgs(), pulumi.ResourceOptions(provider=provider))
        _team_namespaces(config, namespaces, ())
        return build_local_foundation(config, namespaces, provider), namespaces
    if config.cloud == "aws":
        from stacks.aws import build_aws_foundation as build_cloud_foundation
    else:
        from stacks.gcp import build_gcp_foundation as build_cloud_foundation
    foundation = build_cloud_foundation(config)
    namespaces = PlatformNamespaces(
        "namespaces",
        PlatformNamespacesArgs(cloud_flows=foundation.namespace_flows),
        pulumi.ResourceOptions(provider=foundation.provider, depends_on=foundation.cluster_ready),
    )
    _team_namespaces(config, namespaces, foundation.namespace_flows)
    return foundation, namespaces


def _team_namespaces(config: StackConfig, namespaces: PlatformNamespaces, cloud_flows: tuple[Flow, ...]) -> None:
    """Team namespaces are children of the platform's, so whatever waits for those waits for them too."""
    if config.teams:
        TeamNamespaces("teams", TeamNamespacesArgs(teams=config.teams, cloud_flows=cloud_flows), pulumi.ResourceOptions(parent=namespaces))


def main(model_shard: ModelShard | None = None) -> None:
    """The program; `model_shard` is only for the offline render, which may split models across processes."""
    config = stack_config()
    foundation, namespaces = build_foundation(config)
    services = build_platform(config, foundation, namespaces)
    outputs = {**foundation.outputs, **services.outputs, **build_models(config, foundation, services, model_shard)}
    pulumi.export("cloud", config.cloud)
    pulumi.export("environment", config.environment)
    for key, value in sorted(outputs.items()):
        pulumi.export(key, value)
