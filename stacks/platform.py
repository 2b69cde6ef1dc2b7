"""The cloud-agnostic in-cluster layer, composed on whatever foundation the cloud produced."""

from __future__ import annotations

import pulumi

from components.platform.cert_manager import CertManager, CertManagerArgs
from components.platform.gateway import Gateway, GatewayArgs
from components.platform.collector import CollectorModel, PayloadCollector, PayloadCollectorArgs
from components.interfaces import Foundation, PlatformServices
from components.platform.knative import KnativeServing, KnativeServingArgs
from components.platform.kserve import KServe, KServeArgs
from components.platform.mlflow import APP as MLFLOW_SERVICE
from components.platform.mlflow import MlflowServer, MlflowServerArgs
from components.platform.mlflow_server import default_permission_for
from components.platform.mlflow_teams import MlflowTeams, MlflowTeamsArgs
from components.model.serving import READY_TIMEOUT_SECONDS
from components.platform.canary_guard import CanaryGuard, CanaryGuardArgs
from components.platform.gpu_metrics import GpuMetrics, GpuMetricsArgs
from components.platform.monitoring import GRAFANA_SERVICE, GRAFANA_SERVICE_PORT, Monitoring, MonitoringArgs, sizing
from components.platform.mlflow_server import PORT as MLFLOW_PORT
from components.platform.ui_routes import UiRoute, UiRouteArgs
from components.namespaces import MONITORING, PLATFORM, PlatformNamespaces
from components.declarations import model_namespaces
from stacks.config import StackConfig
from stacks.config.schema import ModelDeployment


def build_platform(config: StackConfig, foundation: Foundation, namespaces: PlatformNamespaces) -> PlatformServices:
    opts = pulumi.ResourceOptions(provider=foundation.provider, depends_on=[namespaces, *foundation.cluster_ready])
    # Local clusters name their StorageClass; clouds use the cluster default.
    storage_class = config.local.storage_class if config.cloud == "local" else None
    images = {reference: foundation.resolve_image(reference) for reference in config.platform_images}
    model_homes = model_namespaces(config.teams)
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            size=sizing(config.monitoring.retention, config.monitoring.storage_gib, config.is_prod),
            prod=config.is_prod,
            alerting=config.alerting,
            storage_class=storage_class,
        ),
        opts,
    )
    cert_manager = CertManager(
        "cert-manager", CertManagerArgs(service_account_annotations=foundation.identity_annotations.get("cert-manager", {})), opts
    )
    knative = (
        KnativeServing("knative", KnativeServingArgs(progress_deadline_seconds=READY_TIMEOUT_SECONDS), opts)
        if config.kserve.deployment_mode == "Serverless"
        else None
    )
    kserve = KServe(
        "kserve",
        KServeArgs(
            deployment_mode=config.kserve.deployment_mode,
            object_store=foundation.object_store,
            mlserver_image=images[config.kserve.mlserver_image],
            sklearn_image=images[config.kserve.sklearn_image],
            xgboost_image=images[config.kserve.xgboost_image],
            storage_identity=foundation.identity_annotations.get("storage-initializer", {}),
            cert_manager=[cert_manager.chart],
            knative=knative.ready if knative else (),
            model_namespaces=model_homes,
        ),
        opts,
    )
    monitoring_crds: list[pulumi.Resource] = [monitoring.stack_chart]
    gateway = build_gateway(config, foundation, images, cert_manager, knative, monitoring_crds, opts) if config.gateway.enabled else None
    CanaryGuard(
        "canary-guard",
        CanaryGuardArgs(
            image=images[config.images.runtime],
            models=config.models,
            mode=config.kserve.deployment_mode,
            monitoring_crds=monitoring_crds,
            model_namespaces=model_homes,
        ),
        opts,
    )
    if foundation.gpu_placements:
        GpuMetrics(
            "gpu-metrics",
            GpuMetricsArgs(
                placements=[foundation.gpu_placements[pool] for pool in sorted(foundation.gpu_placements)],
                monitoring_crds=monitoring_crds,
            ),
            opts,
        )
    mlflow = MlflowServer(
        "mlflow",
        MlflowServerArgs(
            namespace=PLATFORM,
            image=images[config.mlflow.image],
            database=foundation.database,
            object_store=foundation.object_store,
            replicas=config.mlflow.replicas,
            service_account_annotations=foundation.identity_annotations.get("mlflow", {}),
            hostname=config.mlflow.hostname,
            client_namespaces=(*model_homes, MONITORING),
            monitoring_crds=monitoring_crds,
            default_permission=default_permission_for(teams_declared=bool(config.teams)),
        ),
        opts,
    )
    # Always: the models without a team are the sync job's built-in team (machine user mlops-serving).
    MlflowTeams(
        "mlflow-teams",
        MlflowTeamsArgs(
            teams=config.teams,
            models=config.models,
            image=images[config.images.runtime],
            tracking_uri=mlflow.tracking_uri,
            admin_secret=mlflow.admin_secret_name,
            server=[mlflow],
        ),
        opts,
    )
    # The routes and their SecurityPolicies are custom resources of the gateway's chart.
    build_ui_routes(config, opts if gateway is None else pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=gateway.ready)))
    collector = PayloadCollector(
        "payload-collector",
        PayloadCollectorArgs(
            namespace=PLATFORM,
            image=images[config.images.runtime],
            object_store=foundation.object_store,
            models=[collector_model(model) for model in config.models],
            service_account_annotations=foundation.identity_annotations.get("payload-collector", {}),
            storage_class=storage_class,
            client_namespaces=(*model_homes, MONITORING),
            monitoring_crds=monitoring_crds,
        ),
        opts,
    )
    return PlatformServices(
        tracking_uri=mlflow.tracking_uri,
        collector_url=collector.url,
        pushgateway_url=monitoring.pushgateway_url,
        runtime_image=images[config.images.runtime],
        crds_ready=[kserve.crd_chart, kserve.controller_chart, *monitoring_crds, *(gateway.ready if gateway else ())],
        outputs={
            "mlflowTrackingUri": mlflow.tracking_uri,
            "mlflowAdminPassword": mlflow.admin_password,
            "collectorUrl": collector.url,
            "pushgatewayUrl": monitoring.pushgateway_url,
            "servingRuntimes": kserve.runtime_names,
            "modelServiceAccount": kserve.service_account_name,
            "images": images,
            **(gateway_outputs(gateway) if gateway else {}),
        },
    )


def build_gateway(
    config: StackConfig,
    foundation: Foundation,
    images: dict[str, pulumi.Input[str]],
    cert_manager: CertManager,
    knative: KnativeServing | None,
    monitoring_crds: list[pulumi.Resource],
    opts: pulumi.ResourceOptions,
) -> Gateway:
    exposure, domain, tls = foundation.gateway_exposure, config.gateway.domain, config.gateway.tls
    if exposure is None or domain is None or tls is None:
        raise ValueError(f"mlops:gateway.enabled is true but the {config.cloud} foundation declares no load balancer for the gateway")
    return Gateway(
        "gateway",
        GatewayArgs(
            domain=domain,
            tls=tls,
            exposure=exposure,
            controller_image=images[config.gateway.controller_image],
            proxy_image=images[config.gateway.proxy_image],
            replicas=2 if config.is_prod else 1,
            deployment_mode=config.kserve.deployment_mode,
            model_namespaces=model_namespaces(config.teams),
            cert_manager=[cert_manager.chart],
            knative=knative.ready if knative else (),
            monitoring_crds=monitoring_crds,
        ),
        opts,
    )


def gateway_outputs(gateway: Gateway) -> dict[str, pulumi.Input[object]]:
    """The gateway's domain, and what it resolves to where the cloud has a load balancer (local: a port-forward)."""
    return {"gatewayDomain": gateway.domain, **({"gatewayAddress": gateway.address} if gateway.address is not None else {})}


def build_ui_routes(config: StackConfig, opts: pulumi.ResourceOptions) -> None:
    """MLflow and Grafana on the gateway at their configured hosts (the config rules require the
    gateway for a host), behind the gateway's OIDC login when one is configured."""
    if not config.gateway.enabled:
        return
    jwks_uri = config.gateway.jwt.jwks_uri if config.gateway.jwt is not None else None
    uis = (
        ("mlflow", config.mlflow.hostname, PLATFORM, MLFLOW_SERVICE, MLFLOW_PORT),
        ("grafana", config.monitoring.grafana_hostname, MONITORING, GRAFANA_SERVICE, GRAFANA_SERVICE_PORT),
    )
    for ui, host, namespace, service, port in uis:
        if host is not None:
            UiRoute(
                f"{ui}-ui",
                UiRouteArgs(ui, host, namespace, service, port, config.gateway.oidc, jwks_uri),
                opts,
            )


def collector_model(model: ModelDeployment) -> CollectorModel:
    """What the collector needs to know of a model deployment to name its payload columns."""
    signature = model.model.signature
    inputs = [column.name for column in signature.inputs] if signature else []
    outputs = [column.name for column in signature.outputs] if signature else []
    return CollectorModel(
        inference_service=model.name,
        version=model.model.deployed_version,
        input_names=[str(n) for n in inputs] if inputs and all(inputs) else None,
        output_names=[str(n) for n in outputs] if outputs and all(outputs) else None,
        sample_rate=model.monitoring.payload_sample_rate if model.monitoring else 1.0,
    )
