"""The project carries its own upstream reference data: hashes verified offline, refreshed from
upstream over HTTP (here a local server standing in for GitHub and the Helm repositories), and
nothing in the project reads data from outside the clone."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.platform import cert_manager
from mlops.cli import main
from mlops.offline.reference import Manifest, ReferenceError, check, sha256_of, update, url_fetcher
from mlops.offline.render import render
from mlops.offline.validate import ReferenceData, validate_chart
from mlops.project import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.conftest import PROJECT_DIR, REFERENCE_DIR


@pytest.fixture
def reference_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, copy)
    return copy


def test_mlops_reference_check_passes_on_the_projects_reference_data(capsys):
    assert main(["reference", "check", "--project-dir", str(PROJECT_DIR)]) == EXIT_OK
    listed = len(yaml.safe_load((REFERENCE_DIR / "manifest.yaml").read_text())["files"])
    assert listed == len([p for p in REFERENCE_DIR.rglob("*") if p.is_file() and p.parent != REFERENCE_DIR])
    assert capsys.readouterr().out == f"{listed} reference files match {REFERENCE_DIR / 'manifest.yaml'}\n"


def test_mlops_reference_check_exits_1_naming_an_edited_file(reference_copy: Path, capsys):
    with (reference_copy / "chart-values" / "cert-manager.values.yaml").open("a") as values:
        values.write("extra: true\n")
    assert main(["reference", "check", "--reference", str(reference_copy)]) == EXIT_FAILED
    assert capsys.readouterr().err.startswith("mlops reference check: chart-values/cert-manager.values.yaml: sha256 ")


def test_a_chart_pin_moved_in_the_code_but_not_in_the_manifest_is_a_validate_error(monkeypatch):
    """cert-manager ships no Chart.yaml in the reference data: only the manifest knows its version."""
    monkeypatch.setattr(cert_manager, "CHART_VERSION", "v1.22.0")
    [chart] = [r for r in render(PROJECT_DIR, "dev").resources if r.inputs.get("chart") == "cert-manager"]
    findings = [f for f in validate_chart(chart, ReferenceData(REFERENCE_DIR)) if f.check == "chart-version"]
    assert [f.message for f in findings] == [
        "the code pins chart version 'v1.22.0' but reference/manifest.yaml has 'v1.21.0'; "
        "refresh the reference data: `mlops reference update cert-manager=v1.22.0`"
    ]


def test_every_chart_the_manifest_pins_has_a_reference_chart_file_of_that_version():
    """The manifest's pin and the Chart.yaml it vouches for agree (cert-manager ships none)."""
    manifest = Manifest.load(REFERENCE_DIR)
    for chart, (version, _source) in manifest.chart_versions().items():
        chart_file = REFERENCE_DIR / "chart-values" / f"{chart}.Chart.yaml"
        if chart_file.is_file():
            assert str(yaml.safe_load(chart_file.read_text())["version"]) == version, chart


def test_check_names_an_edited_a_missing_and_an_unlisted_file(reference_copy: Path):
    with (reference_copy / "crds" / "monitoring.coreos.com_podmonitors.yaml").open("a") as crd:
        crd.write("# local edit\n")
    (reference_copy / "chart-values" / "mlflow.values.schema.json").unlink()
    (reference_copy / "crds" / "gateway.networking.k8s.io_grpcroutes.yaml").write_text("kind: CustomResourceDefinition\n")
    problems = check(reference_copy)
    assert len(problems) == 3
    assert problems[0].startswith("crds/monitoring.coreos.com_podmonitors.yaml: sha256 ")
    assert problems[1] == "chart-values/mlflow.values.schema.json: listed in manifest.yaml but missing"
    assert problems[2].startswith("crds/gateway.networking.k8s.io_grpcroutes.yaml: not in manifest.yaml")


def test_check_without_a_manifest_says_where_it_looked(tmp_path: Path):
    with pytest.raises(ReferenceError, match=f"reference data at {re.escape(str(tmp_path))} has no manifest.yaml"):
        check(tmp_path)


# The local upstream: one directory per host, as `url_fetcher(upstream_base)` maps https://HOST/PATH.
# Its bodies are the real upstream files (the project's own copies, which the manifest ties to
# upstream commits); a Helm repository index is {apiVersion, entries: {chart: [{version, urls}]}}
# (helm/helm pkg/repo/index.go at v3.19.0, IndexFile/ChartVersion); the GitHub API answers
# GET /repos/OWNER/REPO/commits/REF with `Accept: application/vnd.github.sha` by the bare SHA.


def _publish_upstream(upstream: Path, manifest: Manifest, versions: dict[str, str]) -> None:
    """Serve every manifest file at each source's tag for `versions` (default: the current pins)."""
    helm_indexes: dict[str, dict] = {}
    for source in manifest.sources.values():
        version = versions.get(source.name, source.version)
        tag = source.tag_format.format(version=version)
        commit_file = upstream / "api.github.com" / "repos" / source.repository / "commits" / tag
        commit_file.parent.mkdir(parents=True, exist_ok=True)
        commit_file.write_text(hashlib.sha1(tag.encode()).hexdigest() + "\n")
        if source.helm_repository.startswith("https://"):
            index = helm_indexes.setdefault(source.helm_repository, {"apiVersion": "v1", "entries": {}})
            for chart in source.charts:
                index["entries"].setdefault(chart, []).append({"name": chart, "version": version, "urls": [f"{chart}-{version}.tgz"]})
        for file in manifest.files.values():
            if file.source != source.name:
                continue
            content = (REFERENCE_DIR / file.path).read_bytes()
            if file.path.endswith(".Chart.yaml"):
                content = content.replace(f"version: {source.version}\n".encode(), f"version: {version}\n".encode(), 1)
            target = upstream / "raw.githubusercontent.com" / source.repository / tag / file.upstream_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    for repository, index in helm_indexes.items():
        target = upstream / repository.removeprefix("https://") / "index.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(index))


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "upstream"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_update_moves_a_pin_and_records_the_tag_commit_url_and_hash(reference_copy: Path, upstream, capsys):
    root, base = upstream
    _publish_upstream(root, Manifest.load(reference_copy), {"kube-prometheus-stack": "88.6.0"})

    code = main(["reference", "update", "kube-prometheus-stack=88.6.0", "--upstream-base", base, "--reference", str(reference_copy)])

    assert code == EXIT_OK, capsys.readouterr().err
    after = Manifest.load(reference_copy)
    assert after.sources["kube-prometheus-stack"].version == "88.6.0"
    chart = after.files["chart-values/kube-prometheus-stack.Chart.yaml"]
    assert chart.ref == "kube-prometheus-stack-88.6.0"
    assert chart.url == (
        "https://raw.githubusercontent.com/prometheus-community/helm-charts/kube-prometheus-stack-88.6.0/charts/kube-prometheus-stack/Chart.yaml"
    )
    assert chart.commit == (root / "api.github.com/repos/prometheus-community/helm-charts/commits/kube-prometheus-stack-88.6.0").read_text().strip()
    assert yaml.safe_load((reference_copy / chart.path).read_text())["version"] == "88.6.0"
    # Files taken from a commit after their tag come back at the tag.
    assert after.files["crds/serving.kserve.io_servingruntimes.yaml"].ref == "v0.20.0"
    assert check(reference_copy) == []


def test_update_fails_naming_the_pin_when_upstream_has_no_such_file_and_writes_nothing(reference_copy: Path, upstream):
    root, base = upstream
    manifest = Manifest.load(reference_copy)
    _publish_upstream(root, manifest, {})
    (root / "raw.githubusercontent.com/cert-manager/cert-manager/v1.21.0/deploy/charts/cert-manager/values.schema.json").unlink()
    manifest_before = (reference_copy / "manifest.yaml").read_bytes()
    hashes_before = {name: sha256_of(reference_copy / name) for name in manifest.files}

    with pytest.raises(ReferenceError) as raised:
        update(reference_copy, url_fetcher(base), progress=lambda _line: None)

    assert str(raised.value) == (
        "cert-manager v1.21.0: cert-manager/cert-manager has no deploy/charts/cert-manager/values.schema.json "
        "at tag v1.21.0 (for chart-values/cert-manager.values.schema.json)"
    )
    assert (reference_copy / "manifest.yaml").read_bytes() == manifest_before
    assert {name: sha256_of(reference_copy / name) for name in manifest.files} == hashes_before


def test_update_fails_naming_the_pin_when_the_helm_repository_has_no_such_version(reference_copy: Path, upstream, capsys):
    root, base = upstream
    _publish_upstream(root, Manifest.load(reference_copy), {})
    code = main(["reference", "update", "prometheus-pushgateway=9.9.9", "--upstream-base", base, "--reference", str(reference_copy)])
    assert code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "mlops: prometheus-pushgateway 9.9.9: chart prometheus-pushgateway has no version 9.9.9 "
        "in https://prometheus-community.github.io/helm-charts/index.yaml"
    )


def test_update_fails_naming_the_pin_when_the_repository_has_no_such_tag(reference_copy: Path, upstream):
    """KServe's charts live in an OCI registry (no index.yaml): the missing tag is what says so."""
    root, base = upstream
    _publish_upstream(root, Manifest.load(reference_copy), {})
    with pytest.raises(ReferenceError, match=r"^kserve v0\.99\.0: kserve/kserve has no tag v0\.99\.0$"):
        update(reference_copy, url_fetcher(base), {"kserve": "v0.99.0"}, progress=lambda _line: None)


# Spelt in pieces so that this file does not match its own search.
_OUTSIDE_DATA = re.compile("|".join([r"\.\./" + "shared", r"/\s*[\"']" + "shared" + r"[\"']", "/work/" + "shared", r"MLOPS_REFERENCE_DIR\s*=\s*\.\."]))


def _project_text_files() -> Iterator[Path]:
    """What a clone holds: tracked files and new ones git does not ignore (no venvs, builds, egg-info)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in listed:
        relative = Path(name)
        if relative.parts[0] == "reference" and relative.name not in ("README.md", "manifest.yaml"):
            continue  # upstream data, not the project's code
        path = PROJECT_DIR / relative
        if path.is_file():
            yield path


def test_nothing_in_the_project_reads_data_from_beside_the_clone():
    offenders = []
    for path in _project_text_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, PermissionError):
            continue
        offenders += [f"{path.relative_to(PROJECT_DIR)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in _OUTSIDE_DATA.finditer(text)]
    assert offenders == []
