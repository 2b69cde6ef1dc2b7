"""The declared model deployments, composed on the foundation and the platform's services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.platform.collector import PAYLOAD_PREFIX
from components.model.observability import DRIFT_REPORT_PREFIX
from components.interfaces import Foundation, PlatformServices
from components.platform.kserve import SERVICE_ACCOUNT as MODEL_SERVER_ACCOUNT
from components.model.deployment import ModelDeployment, ModelDeploymentArgs
from components.model.serving_access import ModelServingAccess, ModelServingAccessArgs
from components.namespaces import MONITORING, SERVING
from stacks.config import ConfigError, Problem, StackConfig
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
    access = ModelServingAccess(
        "model-serving",
        ModelServingAccessArgs(
            namespace=SERVING,
            identity_annotations=foundation.identity_annotations,
        ),
        opts,
    )
    store = foundation.object_store
    # Built once and shared: the same Outputs for every model, not two new Output chains per model.
    payload_root, report_root = store.uri(store.payload_bucket, PAYLOAD_PREFIX), store.uri(store.payload_bucket, DRIFT_REPORT_PREFIX)
    deployments = {
        model.name: ModelDeployment(
            f"model-{model.name}",
            ModelDeploymentArgs(
                model=model,
                deployment_mode=config.kserve.deployment_mode,
                namespace=SERVING,
                dashboard_namespace=MONITORING,
                server_account=MODEL_SERVER_ACCOUNT,
                drift_account=access.drift_account_name,
                training_account=access.training_account_name,
                batch_account=access.batch_account_name,
                collector_url=services.collector_url,
                tracking_uri=services.tracking_uri,
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
        }
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
