"""The project's copy of upstream reference data (reference/): verify it offline, refresh it.

`reference/manifest.yaml` lists, per upstream chart, the version the platform pins and, per file,
where it came from and its sha256. `check` needs no network. `update` downloads every file
again at the pinned versions: the chart version from the chart's Helm repository index (OCI
registries have no index; the git tag stands in), the tag's commit from the GitHub API, the file
from raw.githubusercontent.com at that tag. Nothing is written unless every download succeeded.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mlops.project import EXIT_FAILED, EXIT_OK, default_reference_dir, find_project_dir, progress

MANIFEST_NAME = "manifest.yaml"
# Files in reference/ that describe the data rather than being upstream data.
OWN_FILES = frozenset({MANIFEST_NAME, "README.md"})
MANIFEST_HEADER = """\
# Upstream data the offline checks read (see reference/README.md).
# sources: one per upstream chart the platform pins; `version` must equal the pin in the code
#   (`mlops validate` says so otherwise) and `tag_format` turns it into the upstream git tag.
# files: where each file came from (`ref` is the tag, or a commit when the file was taken from
#   a commit after it), the URL it is fetched from, and its sha256.
# Verify offline: `mlops reference check`. Refresh from upstream: `mlops reference update`
# (it rewrites this file).
"""
RAW_GITHUB = "https://raw.githubusercontent.com"
GITHUB_API = "https://api.github.com"
DOWNLOAD_TIMEOUT_SECONDS = 60


class ReferenceError(Exception):
    """Reference data that cannot be used or refreshed; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    """One upstream release the platform pins: a chart version and the git tag it was cut from."""

    name: str
    repository: str
    version: str
    tag_format: str
    charts: tuple[str, ...]
    helm_repository: str

    @property
    def tag(self) -> str:
        return self.tag_format.format(version=self.version)

    def as_yaml(self) -> dict[str, Any]:
        data = asdict(self)
        del data["name"]
        data["charts"] = list(self.charts)
        return data


@dataclass(frozen=True)
class ReferenceFile:
    """A file under reference/ and the upstream file it is a byte-identical copy of."""

    path: str
    source: str
    upstream_path: str
    ref: str
    commit: str
    url: str
    sha256: str

    def as_yaml(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"]
        return data


@dataclass
class Manifest:
    sources: dict[str, Source] = field(default_factory=dict)
    files: dict[str, ReferenceFile] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Manifest:
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise ReferenceError(f"reference data at {root} has no {MANIFEST_NAME} (expected the project's reference/ directory)")
        data = yaml.safe_load(path.read_text()) or {}
        try:
            sources = {
                name: Source(name=name, **{**entry, "charts": tuple(entry["charts"])}) for name, entry in data["sources"].items()
            }
            files = {name: ReferenceFile(path=name, **entry) for name, entry in data["files"].items()}
        except (KeyError, TypeError, AttributeError) as error:
            raise ReferenceError(f"{path}: malformed manifest ({error!r}); expected `sources` and `files` as written by `mlops reference update`") from error
        for file in files.values():
            if file.source not in sources:
                raise ReferenceError(f"{path}: file {file.path} names source {file.source!r}; known: {', '.join(sources)}")
        return cls(sources, files)

    def write(self, root: Path) -> None:
        document = {
            "sources": {name: source.as_yaml() for name, source in self.sources.items()},
            "files": {name: file.as_yaml() for name, file in self.files.items()},
        }
        (root / MANIFEST_NAME).write_text(MANIFEST_HEADER + yaml.safe_dump(document, sort_keys=False, width=200))

    def chart_versions(self) -> dict[str, tuple[str, str]]:
        """Chart name -> (pinned version, source name) for every chart the manifest covers."""
        return {chart: (source.version, source.name) for source in self.sources.values() for chart in source.charts}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(root: Path) -> list[str]:
    """Every way the files under `root` differ from the manifest, one line each; [] when intact."""
    manifest = Manifest.load(root)
    problems = []
    for name, file in manifest.files.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: listed in {MANIFEST_NAME} but missing")
        elif (actual := sha256_of(path)) != file.sha256:
            problems.append(f"{name}: sha256 {actual} differs from {MANIFEST_NAME}'s {file.sha256} (edited? refresh with `mlops reference update`)")
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    for name in on_disk:
        if name not in manifest.files and name not in OWN_FILES:
            problems.append(f"{name}: not in {MANIFEST_NAME} (no provenance; add it through `mlops reference update` or remove it)")
    return problems


def chart_pin_problem(manifest: Manifest, chart: str, pinned: str) -> str | None:
    """Why a chart version pinned in the code cannot be checked with this reference data, if so."""
    versions = manifest.chart_versions()
    if chart not in versions:
        return f"reference/{MANIFEST_NAME} pins no version of chart {chart!r}; add its upstream source there, then `mlops reference update`"
    reference_version, source = versions[chart]
    if str(pinned) == reference_version:
        return None
    return (
        f"the code pins chart version {pinned!r} but reference/{MANIFEST_NAME} has {reference_version!r}; "
        f"refresh the reference data: `mlops reference update {source}={pinned}`"
    )



Fetch = Callable[[str, Mapping[str, str]], bytes | None]


def url_fetcher(upstream_base: str | None = None) -> Fetch:
    """GET a URL and return its body, or None on 404.

    With `upstream_base`, https://HOST/PATH is fetched from UPSTREAM_BASE/HOST/PATH instead, so
    that a mirror (or a test's local server) can stand in for every upstream at once.
    """

    def fetch(url: str, headers: Mapping[str, str]) -> bytes | None:
        if upstream_base:
            parts = urlsplit(url)
            url = f"{upstream_base.rstrip('/')}/{parts.netloc}{parts.path}"
        request = urllib.request.Request(url, headers={"User-Agent": "mlops-reference-update", **headers})
        try:
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code in (404, 422):  # 422: the GitHub API's answer for an unknown ref
                return None
            raise ReferenceError(f"GET {url}: HTTP {error.code} {error.reason}") from error
        except urllib.error.URLError as error:
            raise ReferenceError(f"GET {url}: {error.reason} (is the network reachable?)") from error

    return fetch


def parse_pins(arguments: Iterable[str], manifest: Manifest) -> dict[str, str]:
    """`SOURCE=VERSION` arguments -> {source: version}, naming the allowed sources on a mistake."""
    pins = {}
    for argument in arguments:
        name, separator, version = argument.partition("=")
        if not separator or not version:
            raise ReferenceError(f"pin {argument!r} is not SOURCE=VERSION (e.g. kube-prometheus-stack=88.6.0)")
        if name not in manifest.sources:
            raise ReferenceError(f"pin {argument!r}: unknown source {name!r}; known: {', '.join(manifest.sources)}")
        pins[name] = version
    return pins


def update(root: Path, fetch: Fetch, pins: Mapping[str, str] | None = None, progress: Callable[[str], None] = print) -> Manifest:
    """Download every file at its source's pinned version, then write the files and the manifest."""
    manifest = Manifest.load(root)
    sources = {name: replace(source, version=(pins or {}).get(name, source.version)) for name, source in manifest.sources.items()}
    commits = {}
    for source in sources.values():
        _require_chart_versions(source, fetch)
        commits[source.name] = _tag_commit(source, fetch)
    downloads: dict[str, bytes] = {}
    files = {}
    for name, file in manifest.files.items():
        source = sources[file.source]
        url = f"{RAW_GITHUB}/{source.repository}/{source.tag}/{file.upstream_path}"
        progress(f"fetching {name} from {url}")
        content = fetch(url, {})
        if content is None:
            raise ReferenceError(f"{source.name} {source.version}: {source.repository} has no {file.upstream_path} at tag {source.tag} (for {name})")
        _require_chart_file_version(name, content, source)
        downloads[name] = content
        files[name] = replace(file, ref=source.tag, commit=commits[source.name], url=url, sha256=hashlib.sha256(content).hexdigest())
    for name, content in downloads.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    updated = Manifest(sources, files)
    updated.write(root)
    return updated


def _require_chart_versions(source: Source, fetch: Fetch) -> None:
    if not source.helm_repository.startswith(("https://", "http://")):
        return  # an OCI registry has no index.yaml; the tag and Chart.yaml checks cover it
    index_url = f"{source.helm_repository.rstrip('/')}/index.yaml"
    content = fetch(index_url, {})
    if content is None:
        raise ReferenceError(f"{source.name} {source.version}: no Helm repository index at {index_url}")
    entries = (yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("entries") or {}
    for chart in source.charts:
        versions = [str(entry.get("version")) for entry in entries.get(chart) or []]
        if source.version not in versions:
            raise ReferenceError(f"{source.name} {source.version}: chart {chart} has no version {source.version} in {index_url}")


def _tag_commit(source: Source, fetch: Fetch) -> str:
    url = f"{GITHUB_API}/repos/{source.repository}/commits/{source.tag}"
    content = fetch(url, {"Accept": "application/vnd.github.sha"})
    if content is None:
        raise ReferenceError(f"{source.name} {source.version}: {source.repository} has no tag {source.tag}")
    return content.decode().strip()


def _require_chart_file_version(name: str, content: bytes, source: Source) -> None:
    """A Chart.yaml fetched at the tag must describe the pinned version (a wrong tag_format would not)."""
    if not name.endswith(".Chart.yaml"):
        return
    version = str((yaml.safe_load(content) or {}).get("version"))
    if version != source.version:
        raise ReferenceError(f"{source.name} {source.version}: {name} at tag {source.tag} says chart version {version!r}")


def command_check(args: argparse.Namespace) -> int:
    root = _reference_root(args)
    problems = check(root)
    for problem in problems:
        print(f"mlops reference check: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILED
    print(f"{len(Manifest.load(root).files)} reference files match {root / MANIFEST_NAME}")
    return EXIT_OK


def command_update(args: argparse.Namespace) -> int:
    root = _reference_root(args)
    pins = parse_pins(args.pins, Manifest.load(root))
    updated = update(root, url_fetcher(args.upstream_base), pins, progress=progress)
    for source in updated.sources.values():
        print(f"{source.name} {source.version} ({source.repository} at {source.tag})")
    print(f"rewrote {root / MANIFEST_NAME}; review with `git diff {root.name}/`")
    return EXIT_OK


def _reference_root(args: argparse.Namespace) -> Path:
    return Path(args.reference) if args.reference else default_reference_dir(find_project_dir(Path(args.project_dir).resolve()))


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("reference", help="verify (offline) or refresh (online) the upstream reference data in reference/")
    actions = parser.add_subparsers(dest="reference_command", required=True)
    check_parser = actions.add_parser("check", help="verify every reference file against the sha256 in reference/manifest.yaml")
    update_parser = actions.add_parser("update", help="download every reference file at its pinned version and rewrite the manifest")
    update_parser.add_argument("pins", nargs="*", metavar="SOURCE=VERSION", help="move a pin first, e.g. kube-prometheus-stack=88.6.0")
    update_parser.add_argument(
        "--upstream-base", help="fetch https://HOST/PATH from UPSTREAM_BASE/HOST/PATH instead (a mirror, or a test server)"
    )
    for action_parser, command in ((check_parser, command_check), (update_parser, command_update)):
        action_parser.add_argument("--reference", help="reference data dir (default: the project's reference/ or $MLOPS_REFERENCE_DIR)")
        action_parser.add_argument("--project-dir", default=".", help="project directory (default: the one containing Pulumi.yaml)")
        action_parser.set_defaults(func=command)
