"""Run guardrails on rendered resources, whole or with one property changed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mlops.offline.policy_runner import PolicyFinding, run_policies
from mlops.offline.render import Rendering, RenderedResource, render
from stacks.config.schema import Limits
from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="session")
def prod_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod")


@pytest.fixture(scope="session")
def dev_rendering() -> Rendering:
    return render(PROJECT_DIR, "dev")


def resource(rendering: Rendering, type_token: str, name: str) -> RenderedResource:
    """A deep copy of one rendered resource, safe to mutate."""
    matches = [r for r in rendering.resources if r.type == type_token and r.name == name]
    assert matches, f"{type_token} {name} not rendered; rendered: {sorted((r.type, r.name) for r in rendering.resources)}"
    return copy.deepcopy(matches[0])


def made(type_token: str, name: str, inputs: dict[str, Any], depends_on: list[str] | None = None) -> RenderedResource:
    """A hand-built resource, for types no stack renders yet (GKE, Cloud SQL, InferenceService...)."""
    urn = f"urn:pulumi:test::mlops::{type_token}::{name}"
    options = {"protect": False, "retainOnDelete": False, "deleteBeforeReplace": False, "dependsOn": depends_on or [],
               "provider": None, "ignoreChanges": []}
    return RenderedResource(urn, type_token, name, None, True, inputs, options)


def verdicts(
    rule: str,
    resources: list[RenderedResource],
    environment: str = "prod",
    limits: Limits | None = None,
) -> list[PolicyFinding]:
    """Findings of one rule on a stack made of `resources`."""
    rendering = Rendering("mlops", environment, {}, resources)
    return [f for f in run_policies(rendering, environment, limits or Limits()) if f.policy == rule]


def mutated(original: RenderedResource, change: Callable[[dict[str, Any]], None]) -> RenderedResource:
    copied = copy.deepcopy(original)
    change(copied.inputs)
    return copied
