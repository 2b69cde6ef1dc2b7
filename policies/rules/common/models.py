"""How a model deployment shows up in a stack: its InferenceService and what serves it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .kubernetes import MODEL_LABEL, dig

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# The declared rollout policy (canary gates) of the model, JSON.
CANARY_GATES_ANNOTATION = "mlops.platform/canary-gates"
# Modes in which KServe ignores `canaryTrafficPercent` (kserve #5335, #4074).
RAW_MODES = ("RawDeployment", "Standard")


def model_name(props: Mapping[str, Any], fallback: str) -> str:
    """The platform's model name: the predictor's `mlops.platform/model` label, else the object name."""
    for labels in (dig(props, "spec", "predictor", "labels"), dig(props, "metadata", "labels")):
        if isinstance(labels, Mapping) and labels.get(MODEL_LABEL):
            return str(labels[MODEL_LABEL])
    return str(dig(props, "metadata", "name") or fallback)


def predictor_labels(props: Mapping[str, Any]) -> dict[str, str]:
    """Labels the predictor pods carry (KServe copies metadata labels and predictor labels to pods)."""
    return {**(dig(props, "metadata", "labels") or {}), **(dig(props, "spec", "predictor", "labels") or {})}


def namespace(props: Mapping[str, Any]) -> str | None:
    return dig(props, "metadata", "namespace")


def storage_uri(props: Mapping[str, Any]) -> str | None:
    return dig(props, "spec", "predictor", "model", "storageUri") or dig(props, "spec", "predictor", "storageUri")


def deployment_mode(props: Mapping[str, Any]) -> str:
    return str((dig(props, "metadata", "annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION, "Serverless"))


def canary_percent(props: Mapping[str, Any]) -> Any:
    return dig(props, "spec", "predictor", "canaryTrafficPercent")


def raw_canaries(props: Mapping[str, Any]) -> list[Any]:
    """KServe >= 0.20 `spec.canary` entries (the RawDeployment/Standard canary API)."""
    return list(dig(props, "spec", "canary") or [])


def canary_in_progress(props: Mapping[str, Any]) -> bool:
    """A new version is taking part of the traffic while the previous one still serves the rest.

    `canaryTrafficPercent: 100` is a promoted model: one revision, nothing to roll back to in-cluster.
    """
    percent = canary_percent(props)
    if isinstance(percent, (int, float)) and 0 <= percent < 100:
        return True
    return bool(raw_canaries(props))


def declares_canary_policy(props: Mapping[str, Any]) -> bool:
    return CANARY_GATES_ANNOTATION in (dig(props, "metadata", "annotations") or {})
