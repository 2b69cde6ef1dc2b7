"""The declared model deployments, composed on the foundation and the platform's services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.platform.collector import PAYLOAD_PREFIX
from components.model.observability import DRIFT_REPORT_PREFIX
from components.interfaces import Foundation, PlatformServices
from components.platform.kserve import SERVICE_ACCOUNT as MODEL_SERVER_ACCOUNT
from components.model.deployment import ModelDeployment, ModelDeploymentArgs
from components.model.endpoint import KourierRouteGrant, KourierRouteGrantArgs, ModelEndpoint, ModelEndpointArgs
from components.platform.mlflow_teams import TEAM_CREDENTIALS_SECRET
from components.model.serving_access import ModelServingAccess, ModelServingAccessArgs
from components.namespaces import MONITORING
from components.declarations import model_namespace, model_namespaces
from components.teams import per_namespace_name
from stacks.config import ConfigError, Problem, StackConfig
from stacks.config.schema import ModelDeployment as ModelDeclaration
from stacks.config.rules import model_pods
from stacks.locations import resolve_model_locations, stack_stores


@dataclass(frozen=True)
class ModelShard:
    """The share of the declared models one process declares: those at positions p with p % count == index.

    Only the offline render splits a stack across processes (`mlops.offline.render`); every shard
    declares the whole foundation and platform, and the shards' resources are merged by URN. A
    Pulumi deployment declares every model.
    """

    index: int
    count: int

    def declares(self, position: int) -> bool:
        return position % self.count == self.index


def build_models(
    config: StackConfig, foundation: Foundation, services: PlatformServices, shard: ModelShard | None = None
) -> dict[str, pulumi.Input[object]]:
    if not config.models:
        return {}
    _check_gpu_placements(config, foundation)
    models = resolve_model_locations(config.models, stack_stores(config))
    declared = [model for position, model in enumerate(models) if shard is None or shard.declares(position)]
    opts = pulumi.ResourceOptions(provider=foundation.provider, depends_on=foundation.cluster_ready)
    # The Jobs' service accounts in every namespace that may run models (each team's and the shared one).
    access = {
        namespace: ModelServingAccess(
            per_namespace_name("model-serving", namespace),
            ModelServingAccessArgs(namespace=namespace, identity_annotations=foundation.identity_annotations),
            opts,
        )
        for namespace in model_namespaces(config.teams)
    }
    store = foundation.object_store
    # Built once and shared: the same Outputs for every model, not two new Output chains per model.
    payload_root, report_root = store.uri(store.payload_bucket, PAYLOAD_PREFIX), store.uri(store.payload_bucket, DRIFT_REPORT_PREFIX)
    deployments = {
        model.name: ModelDeployment(
            f"model-{model.name}",
            ModelDeploymentArgs(
                model=model,
                deployment_mode=config.kserve.deployment_mode,
                namespace=model_namespace(model),
                dashboard_namespace=MONITORING,
                server_account=MODEL_SERVER_ACCOUNT,
                drift_account=access[model_namespace(model)].drift_account_name,
                training_account=access[model_namespace(model)].training_account_name,
                batch_account=access[model_namespace(model)].batch_account_name,
                collector_url=services.collector_url,
                tracking_uri=services.tracking_uri,
                mlflow_credentials=TEAM_CREDENTIALS_SECRET,
                pushgateway_url=services.pushgateway_url,
                runtime_image=services.runtime_image,
                payload_root=payload_root,
                report_root=report_root,
                object_store=store,
                gpu_placements=foundation.gpu_placements,
                crds_ready=services.crds_ready,
            ),
            opts,
        )
        for model in declared
    }
    return {
        "models": {
            model.name: {"url": deployments[model.name].url, "version": model.model.deployed_version}
            for model in declared
        },
        **build_endpoints(config, declared, services, opts),
    }


def build_endpoints(
    config: StackConfig, declared: list[ModelDeclaration], services: PlatformServices, opts: pulumi.ResourceOptions
) -> dict[str, pulumi.Input[object]]:
    """The declared public models on the gateway, and the grants their routes need (from every model of
    the config, so that each shard of a split render declares the same grants)."""
    public = [model for model in declared if model.endpoint.public]
    if config.gateway.domain is None or not any(model.endpoint.public for model in config.models):
        return {}
    crds = tuple(services.crds_ready)
    if config.kserve.deployment_mode == "Serverless":
        for namespace in sorted({model_namespace(model) for model in config.models if model.endpoint.public}):
            KourierRouteGrant(f"kourier-routes-{namespace}", KourierRouteGrantArgs(route_namespace=namespace, crds_ready=crds), opts)
    endpoints = {
        model.name: ModelEndpoint(
            f"model-{model.name}-endpoint",
            ModelEndpointArgs(
                model=model,
                namespace=model_namespace(model),
                deployment_mode=config.kserve.deployment_mode,
                domain=config.gateway.domain,
                jwt=config.gateway.jwt,
                crds_ready=crds,
            ),
            opts,
        )
        for model in public
    }
    keys = {name: endpoint.api_keys for name, endpoint in endpoints.items() if endpoint.api_keys}
    return {
        "modelEndpoints": {name: endpoint.url for name, endpoint in endpoints.items()},
        "modelApiKeys": pulumi.Output.secret(keys),
    }


def _check_gpu_placements(config: StackConfig, foundation: Foundation) -> None:
    """A GPU pod (serving, training, batch) needs the foundation to say how pods land on its pool
    (local clusters may not)."""
    problems = [
        Problem(
            f"{path}.gpuPool",
            resources.gpu_pool,
            f"the {config.cloud} foundation has no GPU placement for this pool; "
            f"pools with placements: {', '.join(sorted(foundation.gpu_placements)) or 'none'}",
        )
        for index, model in enumerate(config.models)
        for path, resources in model_pods(model, f"mlops:models[{index}]")
        if resources.gpu_pool and resources.gpu_pool not in foundation.gpu_placements
    ]
    if problems:
        raise ConfigError(problems)
