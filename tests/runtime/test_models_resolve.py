"""`mlops models resolve` against a real MLflow tracking server with a real registered scikit-learn model.

The server proxies artifacts (`--serve-artifacts`, as the platform's MLflow does), so the registry
answers with `mlflow-artifacts:/` URIs; the command must write the object-store URI KServe reads,
which this test checks by finding the model's MLmodel file at that location.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlops.stackfiles import config_strings
from mlops.stackops import models as models_cli
from stacks.config import load_stack_config
from tests.conftest import PROJECT_DIR
from tests.runtime.servers import free_port, wait_until_answering

pytestmark = pytest.mark.server

MLFLOW = Path(sys.executable).parent / "mlflow"
MODEL = "churn-classifier"
HANDWRITTEN_DEV = PROJECT_DIR / "tests" / "fixtures" / "stackfiles" / "Pulumi.dev.yaml"


@dataclass(frozen=True)
class Registry:
    url: str
    artifacts: Path


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    workdir = tmp_path_factory.mktemp("mlflow")
    artifacts = workdir / "artifacts"
    port = free_port()
    log_path = workdir / "mlflow.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                str(MLFLOW), "server",
                "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
                "--artifacts-destination", artifacts.as_uri(),
                "--serve-artifacts",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/health", process, log_path, 120)
        _register_two_versions(url)
        yield Registry(url, artifacts)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _register_two_versions(url: str) -> None:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("models-resolve")
    features = pd.DataFrame({"tenure": np.arange(40, dtype=float), "monthly_charges": np.linspace(20, 90, 40)})
    labels = (features["tenure"] < 20).astype(int)
    for c in (1.0, 0.5):
        model = LogisticRegression(C=c).fit(features, labels)
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model, name="model", registered_model_name=MODEL, signature=infer_signature(features, model.predict(features))
            )
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", "2")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path


def resolve(project: Path, registry: Registry, *argv: str, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["models", "resolve", MODEL, "--stack", "dev", "--tracking-uri", registry.url,
         "--artifacts-destination", registry.artifacts.as_uri(), "--project-dir", str(project), *argv]
    )
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def declared(project: Path) -> dict:
    return yaml.safe_load((project / "Pulumi.dev.yaml").read_text())["config"]["mlops:models"][0]


def local_path(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_version_is_pinned_with_its_artifact_and_signature(project, registry, capsys):
    """--version 1 writes version, the object-store artifact URI (its MLmodel is there) and the signature."""
    before = (project / "Pulumi.dev.yaml").read_text()
    code, out, err = resolve(project, registry, "--version", "1", capsys=capsys)
    assert code == 0, err
    reference = declared(project)["model"]
    assert reference["version"] == "1" and "alias" not in reference
    assert (local_path(reference["artifactUri"]) / "MLmodel").is_file()
    assert reference["signature"]["inputs"] == [{"name": "tenure", "type": "double"}, {"name": "monthly_charges", "type": "double"}]
    assert reference["signature"]["outputs"] == [{"type": "tensor:int64"}]  # a numpy prediction is an unnamed tensor
    assert (project / "Pulumi.dev.yaml").read_text().startswith(before[: before.index("  mlops:models:")])
    assert "version 1" in out


def test_a_handwritten_stack_file_changes_inside_the_resolved_model_only(tmp_path, registry, capsys):
    """Resolving version 2 into a hand-written dev stack (comments at column 0, flow and block styles, two
    models): the text before churn-classifier and from the next model's comment on is byte-identical,
    inside it only the version, artifact and signature change, and the file is a valid stack config."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(HANDWRITTEN_DEV, tmp_path / "Pulumi.dev.yaml")
    before = HANDWRITTEN_DEV.read_text()
    code, _, err = resolve(tmp_path, registry, "--version", "2", capsys=capsys)
    assert code == 0, err
    after = (tmp_path / "Pulumi.dev.yaml").read_text()
    head = before[: before.index("  - name: churn-classifier")]
    tail = before[before.index("# A second model that no command here touches.") :]
    assert after.startswith(head) and after.endswith(tail)
    changed = after[len(head) : len(after) - len(tail)]
    for kept in ("registeredModel: 'churn-classifier'\n", "resources: {cpu: 500m, memory: 1Gi}\n", "driftSchedule: '*/30 * * * *'\n"):
        assert kept in changed
    assert 'version: "2"' in changed and "# pinned by resolve" in changed
    config = yaml.safe_load(after)["config"]
    load_stack_config(config_strings(config))
    assert (local_path(config["mlops:models"][0]["model"]["artifactUri"]) / "MLmodel").is_file()


def test_alias_records_the_version_it_points_at(project, registry, capsys):
    """--alias champion writes the alias and the version (2) it resolved to."""
    code, _, err = resolve(project, registry, "--alias", "champion", capsys=capsys)
    assert code == 0, err
    reference = declared(project)["model"]
    assert (reference["alias"], reference["resolvedVersion"]) == ("champion", "2") and "version" not in reference
    assert (local_path(reference["artifactUri"]) / "MLmodel").is_file()


def test_canary_keeps_the_current_artifact_as_stable(project, registry, capsys):
    """Resolving version 2 with --canary 10 after version 1: v1 becomes the stable side of a 10 % canary."""
    assert resolve(project, registry, "--version", "1", capsys=capsys)[0] == 0
    first = declared(project)["model"]["artifactUri"]
    code, _, err = resolve(project, registry, "--version", "2", "--canary", "10", capsys=capsys)
    assert code == 0, err
    model = declared(project)
    assert model["canary"]["trafficPercent"] == 10
    assert (model["canary"]["previousArtifactUri"], model["canary"]["previousVersion"]) == (first, "1")
    assert model["model"]["artifactUri"] != first


def test_unknown_version_is_a_clear_error_and_changes_nothing(project, registry, capsys):
    """A version the registry does not have: exit 2 with MLflow's reason, file untouched."""
    before = (project / "Pulumi.dev.yaml").read_text()
    code, _, err = resolve(project, registry, "--version", "99", capsys=capsys)
    assert code == 2 and "RESOURCE_DOES_NOT_EXIST" in err and "version': '99'" in err
    assert (project / "Pulumi.dev.yaml").read_text() == before


def test_proxied_uri_without_destination_is_refused(project, registry, capsys):
    """Without --artifacts-destination the proxied URI cannot be served: the error says what to pass."""
    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["models", "resolve", MODEL, "--stack", "dev", "--tracking-uri", registry.url, "--version", "1", "--project-dir", str(project)]
    )
    args.artifacts_destination = None
    assert args.func(args) == 2
    assert "pass --artifacts-destination" in capsys.readouterr().err


def test_unreachable_registry_exits_3(project, capsys):
    """Nothing listening: exit 3 naming the URL."""
    unreachable = Registry(f"http://127.0.0.1:{free_port()}", project)
    code, _, err = resolve(project, unreachable, "--version", "1", capsys=capsys)
    assert code == 3 and "cannot reach MLflow" in err
