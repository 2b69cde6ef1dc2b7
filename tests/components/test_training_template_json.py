"""The training Job template's JSON is what `Output.json_dumps` would give: string, dependencies, secrecy.

The template is built with one `Output.all` over its Output leaves (`json_of_manifest`) instead of
`Output.json_dumps`, which lifts every nested dict and list into an Output of its own; both run
here side by side under the SDK with Outputs that carry resources and a secret.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.model.training import json_of_manifest
from mlops.offline.mocks import PlaceholderMocks


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

