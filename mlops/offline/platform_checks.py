"""Checks of a rendered stack against how the clouds behave on the day `mlops validate` runs.

Schemas and policies say whether the objects are well-formed; these say whether the cloud would
still create and run them: a Kubernetes minor still offered (the dated support calendar).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from components.foundation.kubernetes_support import support_verdict
from mlops.offline.render import Rendering


@dataclass(frozen=True)
class PlatformCheck:
    severity: str  # "warning" or "failure"
    check: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.key}: {self.message}"


def kubernetes_support(rendering: Rendering, version: str, today: date) -> list[PlatformCheck]:
    cloud = str(rendering.outputs.get("cloud") or "local")
    prod = rendering.outputs.get("environment") == "prod"
    verdict = support_verdict(cloud, version, today, prod=prod)
    if verdict is None:
        return []
    return [PlatformCheck(verdict.severity, "kubernetes-support", "mlops:cluster.kubernetesVersion", verdict.message)]


def platform_checks(rendering: Rendering, version: str, today: date) -> list[PlatformCheck]:
    """Every platform check of a rendering; `today` is passed in so tests can freeze it."""
    return kubernetes_support(rendering, version, today)
