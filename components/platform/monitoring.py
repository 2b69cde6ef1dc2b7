"""Prometheus, Alertmanager, Grafana and the Pushgateway, with the platform's dashboards and rules.

- kube-prometheus-stack: Prometheus selects every ServiceMonitor, PodMonitor and PrometheusRule in
  the cluster (not only those labelled with the release), so the per-model monitors other
  components render are picked up. Retention and volume size come from the stack config.
- Dashboards: one ConfigMap per `monitoring/dashboards/*.json`, labelled for Grafana's sidecar.
- Alert rules: one PrometheusRule per `monitoring/rules/*.yaml` (the `groups` of a Prometheus rule
  file, the same file `promtool` checks and tests).
- Alertmanager: receivers, routes and inhibitions from `mlops:alerting` (components/platform/alertmanager.py)
  in the chart's `alertmanager.config`; receiver credentials in one Secret of Pulumi secrets, mounted
  through `alertmanagerSpec.secrets` and read by the `*_file` fields of the configuration.
- Pushgateway: where batch jobs (the drift job) push their results; Prometheus scrapes it with
  `honorLabels` so the pushed `job`/`model`/`version` labels survive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import workloads
from components.platform.alertmanager import CREDENTIALS_SECRET, AlertmanagerFiles, alertmanager_files
from components.namespaces import KSERVE, MONITORING
from components.declarations import AlertingSettings

STACK_CHART = "kube-prometheus-stack"
STACK_CHART_VERSION = "88.5.3"
PUSHGATEWAY_CHART = "prometheus-pushgateway"
PUSHGATEWAY_CHART_VERSION = "3.8.0"
CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
PUSHGATEWAY_PORT = 9091
DASHBOARD_LABEL = "grafana_dashboard"
GRAFANA_ADMIN_SECRET = "grafana-admin"
# Grafana's Service as the chart names it: `<release>-grafana`, port 80 in front of the server's 3000
# (grafana chart 12.11.1 defaults service.port / service.targetPort, pulled in by kube-prometheus-stack).
GRAFANA_SERVICE = f"{STACK_CHART}-grafana"
GRAFANA_SERVICE_PORT = 80
# ConfigMaps hold at most 1 MiB.
MAX_DASHBOARD_BYTES = 1024 * 1024
MONITORING_DIR = Path(__file__).resolve().parents[2] / "monitoring"


class MonitoringFileError(ValueError):
    """A dashboard or rules file cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class Dashboard:
    name: str  # file stem
    json_text: str


@dataclass(frozen=True)
class RuleFile:
    name: str  # file stem
    groups: list[dict[str, Any]]


def load_dashboards(directory: Path) -> list[Dashboard]:
    """Every `*.json` dashboard in `directory`, checked to be a Grafana dashboard object."""
    dashboards = []
    for path in sorted(directory.glob("*.json")):
        text = path.read_text()
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise MonitoringFileError(f"dashboard {path.name} is not valid JSON ({error.msg} at line {error.lineno})") from error
        if not isinstance(document, dict) or "panels" not in document:
            raise MonitoringFileError(f"dashboard {path.name} must be a Grafana dashboard object with a 'panels' list")
        if len(text.encode()) > MAX_DASHBOARD_BYTES:
            raise MonitoringFileError(f"dashboard {path.name} is {len(text.encode())} bytes; a ConfigMap holds at most {MAX_DASHBOARD_BYTES}")
        dashboards.append(Dashboard(path.stem, text))
    return dashboards


def load_rule_files(directory: Path) -> list[RuleFile]:
    """Every `*.yaml` Prometheus rule file directly in `directory` (its `tests/` are promtool's)."""
    rule_files = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise MonitoringFileError(f"rules file {path.name} is not valid YAML: {error}") from error
        groups = document.get("groups") if isinstance(document, dict) else None
        if not isinstance(groups, list) or not groups:
            raise MonitoringFileError(f"rules file {path.name} must hold a non-empty 'groups' list, as promtool expects")
        rule_files.append(RuleFile(path.stem, groups))
    return rule_files


@dataclass(frozen=True)
class MonitoringSizing:
    """What differs between environments: how long and how much Prometheus keeps, and replicas."""

    retention: str
    storage_gib: int
    replicas: int
    prometheus_resources: dict[str, Any]


def sizing(retention: str, storage_gib: int, prod: bool) -> MonitoringSizing:
    return MonitoringSizing(
        retention=retention,
        storage_gib=storage_gib,
        replicas=2 if prod else 1,
        prometheus_resources=workloads.resources("500m", "4Gi", cpu_limit="2") if prod else workloads.resources("200m", "1Gi", cpu_limit="1"),
    )


def stack_values(
    size: MonitoringSizing, storage_class: str | None, alertmanager: AlertmanagerFiles
) -> dict[str, Any]:
    """Values of the kube-prometheus-stack chart."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{size.storage_gib}Gi"}},
    }
    if storage_class is not None:
        claim["storageClassName"] = storage_class
    grafana: dict[str, Any] = {
        "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
        "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1", "searchNamespace": MONITORING}},
    }
    return {
        "prometheus": {
            "prometheusSpec": {
                "retention": size.retention,
                # Leave headroom on the volume: TSDB compaction needs free space.
                "retentionSize": f"{int(size.storage_gib * 0.85)}GB",
                "replicas": size.replicas,
                "resources": size.prometheus_resources,
                "storageSpec": {"volumeClaimTemplate": {"spec": claim}},
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
        "alertmanager": {
            # Helm merges this over the chart's default configuration key by key: every key set
            # here replaces the default's (global.resolve_timeout and templates stay).
            "config": alertmanager.config,
            "alertmanagerSpec": {
                "replicas": size.replicas,
                "resources": workloads.resources("50m", "128Mi", cpu_limit="250m"),
                "secrets": [CREDENTIALS_SECRET] if alertmanager.credentials else [],
            },
        },
        "prometheusOperator": {"resources": workloads.resources("100m", "256Mi", cpu_limit="500m")},
        "grafana": grafana,
    }


def pushgateway_values(prod: bool) -> dict[str, Any]:
    """Values of the prometheus-pushgateway chart: restricted pod, scraped by Prometheus."""
    return {
        "resources": workloads.resources("50m", "64Mi", cpu_limit="200m"),
        "containerSecurityContext": workloads.restricted_container_security(),
        "serviceMonitor": {"enabled": True, "namespace": MONITORING, "honorLabels": True},
        # Pushed results survive a restart in prod; dev re-pushes on the next drift run.
        "persistentVolume": {"enabled": prod, "size": "2Gi"},
    }


def kserve_controller_monitor_spec() -> dict[str, Any]:
    """ServiceMonitor spec for the KServe controller's metrics, served by its kube-rbac-proxy."""
    return {
        "namespaceSelector": {"matchNames": [KSERVE]},
        "selector": {"matchLabels": {"control-plane": "kserve-controller-manager"}},
        "endpoints": [
            {
                "port": "https",
                "scheme": "https",
                # kube-rbac-proxy authorises Prometheus's own token and serves a self-signed certificate.
                "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "tlsConfig": {"insecureSkipVerify": True},
                "interval": "30s",
            }
        ],
    }


@dataclass(frozen=True)
class MonitoringArgs:
    size: MonitoringSizing
    prod: bool
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    storage_class: str | None = None
    dashboards_dir: Path = MONITORING_DIR / "dashboards"
    rules_dir: Path = MONITORING_DIR / "rules"
    namespace: str = MONITORING


class Monitoring(pulumi.ComponentResource):
    stack_chart: k8s.helm.v4.Chart
    pushgateway_chart: k8s.helm.v4.Chart
    pushgateway_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dashboards = load_dashboards(args.dashboards_dir)
        rule_files = load_rule_files(args.rules_dir)
        password = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False, opts=child)
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=args.namespace),
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child,
        )
        alertmanager = alertmanager_files(args.alerting)
        chart_needs: list[pulumi.Resource] = [admin]
        if alertmanager.credentials:
            # The operator mounts it into the Alertmanager pods: it must exist before they start.
            chart_needs.append(
                k8s.core.v1.Secret(
                    f"{name}-alertmanager-credentials",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=CREDENTIALS_SECRET, namespace=args.namespace, labels=workloads.labels("alertmanager", "monitoring")
                    ),
                    string_data={key: pulumi.Output.secret(value) for key, value in alertmanager.credentials.items()},
                    opts=child,
                )
            )
        self.stack_chart = k8s.helm.v4.Chart(
            f"{name}-stack",
            name=STACK_CHART,
            chart=STACK_CHART,
            version=STACK_CHART_VERSION,
            namespace=args.namespace,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=stack_values(args.size, args.storage_class, alertmanager),
            opts=pulumi.ResourceOptions(parent=self, depends_on=chart_needs),
        )
        # Everything below is a monitoring.coreos.com object: its CRDs come with the stack chart.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.stack_chart])
        self.pushgateway_chart = k8s.helm.v4.Chart(
            f"{name}-pushgateway",
            name=PUSHGATEWAY_CHART,
            chart=PUSHGATEWAY_CHART,
            version=PUSHGATEWAY_CHART_VERSION,
            namespace=args.namespace,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=pushgateway_values(args.prod),
            opts=after_crds,
        )
        for dashboard in dashboards:
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"grafana-dashboard-{dashboard.name}",
                    namespace=args.namespace,
                    labels={**workloads.labels("grafana-dashboards", "monitoring"), DASHBOARD_LABEL: "1"},
                ),
                data={f"{dashboard.name}.json": dashboard.json_text},
                opts=child,
            )
        for rule_file in rule_files:
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{rule_file.name}",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"mlops-{rule_file.name}", namespace=args.namespace, labels=workloads.labels("mlops-alerts", "monitoring")
                ),
                spec={"groups": rule_file.groups},
                opts=after_crds,
            )
        k8s.apiextensions.CustomResource(
            f"{name}-kserve-controller",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kserve-controller", namespace=args.namespace, labels=workloads.labels("kserve-controller", "monitoring")
            ),
            spec=kserve_controller_monitor_spec(),
            opts=after_crds,
        )
        self.pushgateway_url = f"http://{PUSHGATEWAY_CHART}.{args.namespace}.svc:{PUSHGATEWAY_PORT}"
        self.register_outputs({"pushgatewayUrl": self.pushgateway_url, "grafanaAdminPassword": pulumi.Output.secret(password.result)})
