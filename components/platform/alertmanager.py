"""Who is told when an alert fires: Alertmanager receivers, routes and inhibitions (declarations and
a pure builder of the Alertmanager configuration file).

The configuration is plain data, rendered into the kube-prometheus-stack values
(`alertmanager.config`), so diffs and previews show every route. Credentials (Slack webhook URLs,
PagerDuty routing keys, SMTP passwords, webhook bearer tokens) never enter it: they go into one
Kubernetes Secret, held as Pulumi secrets, which the operator mounts through
`alertmanagerSpec.secrets` at /etc/alertmanager/secrets/<secret>/<key>; the configuration points at
those files with the `*_file` fields (Alertmanager 0.25 and later: `api_url_file`,
`routing_key_file`, `auth_password_file`, `credentials_file`).

Routing: Watchdog-style heartbeats go to a receiver that drops them; a team's models (matched on
the `model` label every platform alert carries) go to the team's receiver, its critical alerts to
the team's pager or else the platform's; other critical alerts go to the platform's critical
receiver; everything else to the default receiver, so no alert is routed nowhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from components.declarations import NULL_RECEIVER, AlertingSettings, AlertReceiver
from monitoring.model_watch import PROMOTED_ALERT

CREDENTIALS_SECRET = "alertmanager-receiver-credentials"
# Where the Prometheus operator mounts each Secret listed in `alertmanagerSpec.secrets`.
SECRETS_MOUNT = "/etc/alertmanager/secrets"
HEARTBEAT_ALERTS = ("Watchdog", "InfoInhibitor")
CANARY_ALERTS = "MlopsModelCanary.+"
GROUP_BY = ["alertname", "namespace", "model"]
SEVERITIES = ("critical", "warning", "info")

# One line per alert: what fired, for which model and version, and what to do.
ALERT_LINES = (
    "{{ range .Alerts }}[{{ .Labels.severity }}] {{ .Annotations.summary }}\n"
    "model {{ .Labels.model }} version {{ or .Labels.model_version .Labels.version \"-\" }}\n"
    "runbook: {{ .Annotations.runbook }}\n{{ end }}"
)
TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.model }}"


@dataclass(frozen=True)
class AlertmanagerFiles:
    """The configuration file (plain) and the credentials it reads from files (secret)."""

    config: dict[str, Any]
    credentials: dict[str, str]


def credential_path(key: str) -> str:
    return f"{SECRETS_MOUNT}/{CREDENTIALS_SECRET}/{key}"


def _receiver(receiver: AlertReceiver, credentials: dict[str, str]) -> dict[str, Any]:
    def secret_file(suffix: str, value: str) -> str:
        key = f"{receiver.name}-{suffix}"
        credentials[key] = value
        return credential_path(key)

    entry: dict[str, Any] = {"name": receiver.name}
    resolved = receiver.send_resolved
    if receiver.webhook is not None:
        webhook: dict[str, Any] = {"url": receiver.webhook.url, "send_resolved": resolved}
        if receiver.webhook.bearer_token is not None:
            webhook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": secret_file("webhook-token", receiver.webhook.bearer_token)}
            }
        entry["webhook_configs"] = [webhook]
    if receiver.slack is not None:
        entry["slack_configs"] = [
            {
                "api_url_file": secret_file("slack-api-url", receiver.slack.api_url),
                "channel": receiver.slack.channel,
                "send_resolved": resolved,
                "title": TITLE,
                "text": ALERT_LINES,
            }
        ]
    if receiver.pagerduty is not None:
        entry["pagerduty_configs"] = [
            {
                "routing_key_file": secret_file("pagerduty-routing-key", receiver.pagerduty.routing_key),
                "send_resolved": resolved,
                "description": TITLE,
                "details": {"alerts": ALERT_LINES},
            }
        ]
    if receiver.email is not None:
        email = receiver.email
        mail: dict[str, Any] = {
            "to": ", ".join(email.to),
            "from": email.sender,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": resolved,
            "headers": {"Subject": TITLE},
            "text": ALERT_LINES,
        }
        if email.auth_username is not None:
            mail["auth_username"] = email.auth_username
        if email.auth_password is not None:
            mail["auth_password_file"] = secret_file("smtp-password", email.auth_password)
        entry["email_configs"] = [mail]
    return entry


def _models_matcher(models: list[str]) -> str:
    return 'model=~"' + "|".join(re.escape(model) for model in models) + '"'


def _routes(alerting: AlertingSettings) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = [
        {"receiver": NULL_RECEIVER, "matchers": [f'alertname=~"{"|".join(HEARTBEAT_ALERTS)}"']},
        # Only an inhibition source: nobody needs to be told a promotion is in effect.
        {"receiver": NULL_RECEIVER, "matchers": [f'alertname="{PROMOTED_ALERT}"']},
    ]
    for team in alerting.teams:
        route: dict[str, Any] = {"receiver": team.receiver, "matchers": [_models_matcher(team.models)]}
        pager = team.critical_receiver or alerting.critical_receiver
        if pager is not None and pager != team.receiver:
            route["routes"] = [{"receiver": pager, "matchers": ['severity="critical"']}]
        routes.append(route)
    if alerting.critical_receiver is not None:
        routes.append({"receiver": alerting.critical_receiver, "matchers": ['severity="critical"']})
    return routes


def _inhibitions() -> list[dict[str, Any]]:
    return [
        # A canary-gate alert after the config promoted the model is about a rollout that is over.
        {
            "source_matchers": [f'alertname="{PROMOTED_ALERT}"'],
            "target_matchers": [f'alertname=~"{CANARY_ALERTS}"'],
            "equal": ["namespace", "model"],
        },
        # The critical alert says it all: its warning twin for the same model adds nothing.
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["alertname", "namespace", "model"],
        },
    ]


def alertmanager_files(alerting: AlertingSettings) -> AlertmanagerFiles:
    """The Alertmanager configuration for `alerting`, and the credentials it reads from files.

    Without declared receivers, every alert goes to the heartbeat sink (the chart's own default):
    the stack rules refuse that in prod.
    """
    credentials: dict[str, str] = {}
    receivers = [{"name": NULL_RECEIVER}, *(_receiver(r, credentials) for r in alerting.receivers)]
    config = {
        "route": {
            "receiver": alerting.default_receiver or NULL_RECEIVER,
            "group_by": GROUP_BY,
            "group_wait": alerting.group_wait,
            "group_interval": "5m",
            "repeat_interval": alerting.repeat_interval,
            "routes": _routes(alerting),
        },
        "inhibit_rules": _inhibitions(),
        "receivers": receivers,
    }
    return AlertmanagerFiles(config=config, credentials=credentials)
