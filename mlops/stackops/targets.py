"""The URNs a model's targeted `pulumi up` names: its ModelDeployment component and everything under it.

They come from an offline render of the stack (the real program under mocks). The mock monitor's
own URNs put `pulumi:pulumi:Stack` into the type chain of the stack's direct children, which the
engine does not, so each URN is rebuilt from type, name and parent chain as the engine builds it
(pulumi/pulumi pkg/resource/deploy/deployment.go, `generateURN`, v3.272: the parent's qualified
type is prefixed unless the parent is the root stack).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.offline.render import RenderedResource, render
from mlops.stackfiles import StackFileError
from mlops.stackops.stack_models import MODELS_KEY

MODEL_COMPONENT = "mlops:serving:ModelDeployment"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
ROOT_STACK = "pulumi:pulumi:Stack"


def model_targets(project_dir: Path, stack: str, name: str, declarations: list[list[dict[str, Any]]]) -> list[str]:
    """URNs of model `name`'s resources under each list of declarations (before and after a change:
    a resource only one of them declares is created or deleted by the targeted update)."""
    urns: set[str] = set()
    for models in declarations:
        rendering = render(project_dir, stack, {MODELS_KEY: json.dumps(models)})
        urns.update(_model_urns(rendering.resources, rendering.project, stack, name))
    return sorted(urns)


def _model_urns(resources: list[RenderedResource], project: str, stack: str, name: str) -> list[str]:
    by_urn = {r.urn: r for r in resources}
    component = next(
        (
            by_urn[r.parent]
            for r in resources
            if r.type == INFERENCE_SERVICE
            and (r.inputs.get("metadata") or {}).get("name") == name
            and r.parent in by_urn
            and by_urn[r.parent].type == MODEL_COMPONENT
        ),
        None,
    )
    if component is None:
        raise StackFileError(f"the rendered stack {stack!r} has no {MODEL_COMPONENT} serving model {name!r}")
    members = [component]
    for resource in resources:
        if _descends_from(resource, component.urn, by_urn):
            members.append(resource)
    return [engine_urn(member, by_urn, project, stack) for member in members]


def _descends_from(resource: RenderedResource, ancestor: str, by_urn: dict[str, RenderedResource]) -> bool:
    parent = resource.parent
    while parent is not None:
        if parent == ancestor:
            return True
        parent = by_urn[parent].parent if parent in by_urn else None
    return False


def engine_urn(resource: RenderedResource, by_urn: dict[str, RenderedResource], project: str, stack: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{_qualified_type(resource, by_urn)}::{resource.name}"


def _qualified_type(resource: RenderedResource, by_urn: dict[str, RenderedResource]) -> str:
    parent = by_urn.get(resource.parent) if resource.parent else None
    if parent is None or parent.type == ROOT_STACK:
        return resource.type
    return f"{_qualified_type(parent, by_urn)}${resource.type}"
