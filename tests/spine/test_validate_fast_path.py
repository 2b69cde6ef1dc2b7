"""The compiled fast path (jsonschema-rs) and python-jsonschema agree on every rendered object.

`mlops validate` asks jsonschema-rs whether an object is valid and python-jsonschema, whose wording
the findings use, only why not; so the two must give the same verdict: on every object the
committed stacks render, and on each of them broken in the ways a config or code mistake breaks them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops.offline.render import Rendering, render
from mlops.offline.validate import ReferenceData, SchemaCheck, kubernetes_version, schema_checks
from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="module")
def gcp_prod_rendering() -> Rendering:
    return render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})


def checks_of(rendering: Rendering, reference: ReferenceData) -> list[tuple[str, list[tuple[SchemaCheck, Any]], dict[str, Any]]]:
    """Per rendered object: its URN, the compiled checks with the part of the object each checks, the object."""
    version = kubernetes_version(rendering)
    found = []
    for resource, manifest in rendering.manifests():
        checks = schema_checks(manifest, reference, version)
        assert checks, f"no schema for {manifest['apiVersion']} {manifest['kind']}"
        found.append((resource.urn, checks, manifest))
    return found


def verdicts(checks: list, document: dict[str, Any]) -> tuple[bool, bool]:
    """(jsonschema-rs says valid, python-jsonschema says valid) over every check of one object."""
    parts = [(check, document if prefix == "" else document.get(prefix)) for _, prefix, check, _ in checks]
    return all(c.is_valid(part) for c, part in parts), all(not c.python_errors(part) for c, part in parts)


def breakages(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The object with an unknown field, a wrongly typed name, and an unknown field one level into its spec."""
    unknown = copy.deepcopy(manifest)
    unknown["metadata"]["labelz"] = {"team": "a"}
    wrong_type = copy.deepcopy(manifest)
    wrong_type["metadata"]["name"] = 5
    broken = [("unknown metadata field", unknown), ("name is a number", wrong_type)]
    if isinstance(manifest.get("spec"), dict) and manifest["spec"]:
        nested = copy.deepcopy(manifest)
        first = sorted(nested["spec"])[0]
        if isinstance(nested["spec"][first], dict):
            nested["spec"][first]["notAField"] = True
            broken.append((f"unknown field in spec.{first}", nested))
    return broken


@pytest.mark.parametrize("stack", ["dev_rendering", "prod_rendering", "gcp_prod_rendering"])
def test_both_validators_give_the_same_verdict_on_every_rendered_object(stack, request, reference) -> None:
    rendering = request.getfixturevalue(stack)
    checked = checks_of(rendering, reference)
    assert len(checked) > 50
    disagreements, broken_but_valid = [], []
    for urn, checks, manifest in checked:
        for label, document in [("as rendered", manifest), *breakages(manifest)]:
            fast, wording = verdicts(checks, document)
            if fast != wording:
                disagreements.append(f"{urn} {label}: jsonschema-rs {fast}, python-jsonschema {wording}")
            if label in ("unknown metadata field", "name is a number") and fast:
                broken_but_valid.append(f"{urn} {label}")
    assert disagreements == []
    assert broken_but_valid == [], "metadata is strict in every schema: these breakages must be refused"


def test_a_broken_object_is_worded_by_python_jsonschema(prod_rendering, reference) -> None:
    urn, checks, manifest = next(c for c in checks_of(prod_rendering, reference) if c[2]["kind"] == "InferenceService")
    check = checks[0][2]
    broken = copy.deepcopy(manifest)
    broken["spec"]["predictor"]["minReplica"] = 1
    assert check.errors(manifest) == []
    assert check.errors(broken) == [("spec.predictor", "Additional properties are not allowed ('minReplica' was unexpected)")]
