"""The JSON the model components build by hand is exactly what the standard builders give.

- The training Job template: one `Output.all` over its Output leaves (`json_of_manifest`) instead of
  `Output.json_dumps`, which lifts every nested dict and list into an Output of its own; both run
  side by side under the SDK with Outputs that carry resources and a secret: same string,
  dependencies and secrecy.
- Dashboards: `indented_json` instead of `json.dumps(indent=2, sort_keys=True)` (pure Python once
  indented); compared on every model dashboard of the committed stacks and on JSON's edge cases.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.model.observability import indented_json
from components.model.training import json_of_manifest
from mlops.offline.mocks import PlaceholderMocks
from mlops.offline.render import Rendering


def _what_the_engine_sees(output: pulumi.Output[str]) -> pulumi.Output[tuple[str, bool, list[str]]]:
    async def seen() -> tuple[str, bool, list[str]]:
        resources = await output.resources()
        return await output.future(), await output.is_secret(), sorted(r._name for r in resources)  # type: ignore[attr-defined]

    return pulumi.Output.from_input(seen())


@pytest.fixture(autouse=True)
def mocks() -> None:
    pulumi.runtime.set_mocks(PlaceholderMocks(), preview=False)


@pulumi.runtime.test
def test_json_of_a_manifest_with_outputs_is_the_sdks_json_dumps() -> pulumi.Output[None]:
    account = k8s.core.v1.ServiceAccount("training-job", metadata={"name": "training-job", "namespace": "serving"})
    secret = k8s.core.v1.Secret("registry", metadata={"name": "registry"})
    image = pulumi.Output.concat("registry.example/runtime@sha256:", secret.metadata.name)
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "fraud-training-", "labels": {"app": "fraud"}},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "serviceAccountName": account.metadata.name,
                    "containers": [
                        {
                            "image": image,
                            "args": ("--margin", 0.5),
                            "env": [{"name": "TOKEN", "value": pulumi.Output.secret("s3cr3t")}, {"name": "EMPTY", "value": None}],
                            "volumeMounts": [],
                        }
                    ],
                }
            },
        },
    }
    ours, sdks = _what_the_engine_sees(json_of_manifest(manifest)), _what_the_engine_sees(pulumi.Output.json_dumps(manifest))

    def check(both: list[tuple[str, bool, list[str]]]) -> None:
        ours_seen, sdks_seen = both
        assert ours_seen == sdks_seen
        assert ours_seen[1] is True and ours_seen[2] == ["registry", "training-job"]

    return pulumi.Output.all(ours, sdks).apply(check)



def _dashboards(rendering: Rendering) -> list[Any]:
    return [
        json.loads(text)
        for resource in rendering.by_type("kubernetes:core/v1:ConfigMap")
        if resource.name.endswith("-dashboard")
        for text in resource.inputs["data"].values()
    ]


def test_indented_json_is_json_dumps_on_every_model_dashboard(dev, prod):
    dashboards = _dashboards(dev) + _dashboards(prod)
    assert dashboards  # the committed stacks declare models
    for dashboard in dashboards:
        assert indented_json(dashboard) == json.dumps(dashboard, indent=2, sort_keys=True)


def test_indented_json_is_json_dumps_on_json_edge_cases():
    document = {
        "z": [1, -0.0, 1e-07, 1.5e300, 2**70, True, False, None, math.inf, -math.inf, math.nan],
        "a": {"": [], "empty": {}, "nested": [[{"b": 1, "a": (2, 3)}]]},
        "text": 'quote " backslash \\ newline \n tab \t unicode é 🚀 control \x01',
        "é": "non-ascii key",
    }
    assert indented_json(document) == json.dumps(document, indent=2, sort_keys=True)
    assert indented_json([]) == "[]" and indented_json("x") == '"x"'


@pytest.mark.parametrize("refused", [{1: "int key"}, {"set": {1}}, [object()]])
def test_indented_json_refuses_what_it_cannot_write_as_json_dumps_does(refused):
    with pytest.raises(TypeError):
        indented_json(refused)
