"""Rendering runs the real program under mocks and captures exactly what the engine would get."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest

from mlops.offline.render import SECRET, Rendering, RenderShardConflict, merge_shards, render, write_rendering
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR
from tests.render_monitors import record_monitors


def test_render_is_byte_identical_across_runs(tmp_path, dev_rendering):
    """Two renders of the same commit write the same bytes, file for file."""
    first, second = tmp_path / "first", tmp_path / "second"
    write_rendering(dev_rendering, first)
    write_rendering(render(PROJECT_DIR, "dev"), second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) > 10
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_resources_carry_type_name_parent_inputs_and_options(dev_rendering):
    (deployment,) = [r for r in dev_rendering.by_type("kubernetes:apps/v1:Deployment") if r.name == "mlflow-server"]
    assert deployment.parent.endswith("mlops:platform:Mlflow::mlflow")
    assert deployment.options["provider"].endswith("pulumi:providers:kubernetes::local-cluster")
    assert any(d.endswith("kubernetes:core/v1:Secret::mlflow-backend-store") for d in deployment.options["dependsOn"])
    assert deployment.inputs["metadata"]["namespace"] == "mlops-platform"


def test_integers_survive_the_mocks_as_integers(dev_rendering):
    """Mocks turn 1 into 1.0; manifests must say `replicas: 1` and `port: 5000`."""
    (service,) = [r for r in dev_rendering.by_type("kubernetes:core/v1:Service") if r.name == "mlflow-service"]
    port = service.inputs["spec"]["ports"][0]["port"]
    assert port == 5000 and isinstance(port, int)


def test_secrets_never_reach_the_rendering(tmp_path, dev_rendering):
    """Generated passwords are Pulumi secrets: the state file shows only the placeholder."""
    write_rendering(dev_rendering, tmp_path)
    state = (tmp_path / "state.json").read_text()
    assert "mock-password" not in state
    (secret,) = [r for r in dev_rendering.by_type("kubernetes:core/v1:Secret") if r.name == "mlflow-backend-store"]
    assert secret.inputs["stringData"] == {"MLFLOW_BACKEND_STORE_URI": SECRET}


def test_every_kubernetes_object_is_written_as_a_manifest(tmp_path, dev_rendering):
    written = write_rendering(dev_rendering, tmp_path)
    manifests = [p for p in written if p.suffix == ".yaml"]
    assert len(manifests) == len(dev_rendering.manifests())
    document = json.loads((tmp_path / "state.json").read_text())
    assert {"project", "stack", "config", "outputs", "resources"} <= document.keys()
    assert document["outputs"]["cloud"] == "local"


def test_bad_config_stops_the_program_before_any_resource(monkeypatch):
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:cloud: Input should be 'aws', 'gcp' or 'local' \(got 'azure'\)"):
        render(PROJECT_DIR, "dev", {"mlops:cloud": "azure"})
    assert monitors and monitors[0].recorded == []


def test_overrides_use_pulumi_config_path_syntax(dev_rendering):
    changed = render(PROJECT_DIR, "dev", {"mlops:mlflow.replicas": "2"})
    (deployment,) = [r for r in changed.by_type("kubernetes:apps/v1:Deployment") if r.name == "mlflow-server"]
    assert deployment.inputs["spec"]["replicas"] == 2


@pytest.mark.parametrize(("stack", "overrides"), [("dev", {}), ("prod", {}), ("prod", {"mlops:cloud": "gcp"})])
def test_a_render_split_across_processes_is_the_single_process_render(stack, overrides) -> None:
    """Each process declares the foundation, the platform and a share of the models; merged by URN it is the same state."""
    single = render(PROJECT_DIR, stack, overrides, processes=1)
    split = render(PROJECT_DIR, stack, overrides, processes=2)
    assert json.dumps(split.document(), sort_keys=True) == json.dumps(single.document(), sort_keys=True)


def test_shards_that_declare_one_urn_differently_fail_loudly(dev_rendering) -> None:
    first = dev_rendering
    changed = copy.deepcopy(first.resources[0])
    changed.inputs["drifted"] = True
    other = Rendering(first.project, first.stack, first.config, [changed, *first.resources[1:]], first.outputs)
    with pytest.raises(RenderShardConflict, match=re.escape(changed.urn)):
        merge_shards([first, other])


def test_the_command_forks_its_share_processes_with_the_same_result(tmp_path) -> None:
    """`mlops render --processes 2` forks from a process the SDK has not run in yet: the path a CLI run takes."""
    for processes in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-m", "mlops", "render", "--stack", "prod", "--processes", processes, "--out", str(tmp_path / processes)],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "2" / "state.json").read_bytes() == (tmp_path / "1" / "state.json").read_bytes()
