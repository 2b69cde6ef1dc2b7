"""Check a rendering against authoritative schemas, offline.

- Core Kubernetes objects: the strict JSON schemas shipped by `kubernetes-validate` (unknown
  fields are errors), for the cluster's Kubernetes version.
- CustomResources: the `openAPIV3Schema` of the upstream CRD in `reference/crds`, made
  strict the way the API server's pruning would make a typo vanish silently: an object that
  lists its properties accepts no others; then the CRD's CEL rules (mlops/offline/cel_rules.py).
- Helm charts: every key path set in `values` must exist in the chart's default values (or be
  allowed by its values.schema.json), and the chart version must be the one reference/manifest.yaml
  pins (the reference data was taken at that version).
- Manifests applied from a URL (Knative's release files): fetched over HTTPS from a path that
  names an exact release, so that the same declaration always applies the same objects.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import jsonschema_rs
import pydantic
import referencing
import yaml
from kubernetes_validate import utils as k8s_schemas

from components.declarations import CREDENTIAL, AlertingSettings, GatewaySettings
from mlops.offline.cel_rules import RuleCheck, rule_tree
from mlops.offline.reference import Manifest, chart_pin_problem
from mlops.offline.render import SECRET, RenderedResource, Rendering, manifest_of
from stacks.config.schema import ClusterSettings

# Same value as components.model.training.EMBEDDED_MANIFEST_ANNOTATION (tests/stacks/test_model_lifecycle.py checks).
EMBEDDED_MANIFEST_ANNOTATION = "mlops.platform/embedded-manifest"

# libyaml's loader: the KServe CRD alone is megabytes of YAML.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HELM_CHART_TYPES = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart")
MANIFEST_FILE_TYPES = ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml:ConfigFile")
EXACT_RELEASE = re.compile(r"(^|[-_])v?\d+\.\d+\.\d+$")
MOVING_REFERENCES = frozenset({"latest", "main", "master", "HEAD", "nightly", "stable"})


@dataclass(frozen=True)
class Finding:
    """One validation failure: which object, which check, where in it, and what is wrong."""

    resource: str
    check: str
    path: str
    message: str

    def __str__(self) -> str:
        location = f" at {self.path}" if self.path else ""
        return f"[{self.check}] {self.resource}{location}: {self.message}"


class ReferenceData:
    """The upstream CRDs and chart defaults in reference/ and their manifest (see reference/README.md).

    Parsing the KServe CRD takes about a second, so strict schemas are built only for the API
    groups a rendering uses and, given `cache_dir`, kept as JSON keyed by the CRD file's hash.
    """

    def __init__(self, root: Path, cache_dir: Path | None = None):
        if not (root / "crds").is_dir():
            raise FileNotFoundError(f"reference data not found at {root} (expected crds/ and chart-values/)")
        self.root = root
        self.manifest = Manifest.load(root)
        self.cache_dir = cache_dir
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._rule_trees: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._checks: dict[tuple[str, str], SchemaCheck] = {}
        self._loaded_groups: set[str] = set()

    def crd_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """Strict JSON schema of a version a reference CRD serves, or None when none serves it."""
        self._load_group(api_version.rpartition("/")[0])
        return self._schemas.get((api_version, kind))

    def served_versions(self, group: str, kind: str) -> list[str]:
        """The versions of `kind` its reference CRD serves (empty when no reference CRD defines it)."""
        self._load_group(group)
        return sorted(a.rpartition("/")[2] for a, k in self._schemas if k == kind and a.rpartition("/")[0] == group)

    def _load_group(self, group: str) -> None:
        if group and group not in self._loaded_groups:
            self._loaded_groups.add(group)
            for path in sorted((self.root / "crds").glob(f"{group}_*.yaml")):
                for api_version, kind, schema, rules in self._crd_file_schemas(path):
                    self._schemas[(api_version, kind)] = schema
                    self._rule_trees[(api_version, kind)] = rules

    def crd_check(self, api_version: str, kind: str) -> SchemaCheck | None:
        """The compiled check of a CRD version's strict schema, built once per kind."""
        key = (api_version, kind)
        if key not in self._checks:
            schema = self.crd_schema(api_version, kind)
            if schema is None:
                return None
            self._checks[key] = SchemaCheck(schema)
        return self._checks[key]

    def crd_rule_check(self, api_version: str, kind: str) -> RuleCheck | None:
        """The CEL rules of a served CRD version, or None when it has none."""
        self._load_group(api_version.rpartition("/")[0])
        tree = self._rule_trees.get((api_version, kind))
        return None if tree is None else RuleCheck(tree)

    def known_custom_kinds(self) -> list[str]:
        return sorted(p.name.removesuffix(".yaml") for p in (self.root / "crds").glob("*.yaml"))

    def _crd_file_schemas(self, path: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
        """(apiVersion, kind, strict schema, rule tree) of every version the CRD serves: the API
        server refuses an object of a version it does not serve."""
        content = path.read_bytes()
        cached = self.cache_dir / f"crd-rules-{hashlib.sha256(content).hexdigest()[:24]}.json" if self.cache_dir else None
        if cached is not None and cached.is_file():
            return [tuple(entry) for entry in json.loads(cached.read_text())]  # type: ignore[misc]
        crd = yaml.load(content, Loader=_YAML_LOADER)
        spec = crd["spec"]
        entries = [
            (
                f"{spec['group']}/{version['name']}",
                spec["names"]["kind"],
                strict_crd_schema(version["schema"]["openAPIV3Schema"]),
                rule_tree(version["schema"]["openAPIV3Schema"]),
            )
            for version in spec["versions"]
            if version["served"]
        ]
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(entries))
        return entries

    def chart(self, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None] | None:
        """(Chart.yaml, default values, values.schema.json or None) of a reference chart.

        A chart shipped without a values file (kserve-crd) takes no values: its defaults are
        None, so that any value set for it is reported.
        """
        base = self.root / "chart-values"
        values = base / f"{name}.values.yaml"
        chart_file = base / f"{name}.Chart.yaml"
        if not values.is_file() and not chart_file.is_file():
            return None
        chart = yaml.safe_load(chart_file.read_text()) if chart_file.is_file() else {}
        schema_file = base / f"{name}.values.schema.json"
        schema = json.loads(schema_file.read_text()) if schema_file.is_file() else None
        defaults = (yaml.load(values.read_text(), Loader=_YAML_LOADER) or {}) if values.is_file() else None
        return chart, defaults, schema

    def chart_names(self) -> list[str]:
        base = self.root / "chart-values"
        names = {p.name.removesuffix(".values.yaml") for p in base.glob("*.values.yaml")}
        names |= {p.name.removesuffix(".Chart.yaml") for p in base.glob("*.Chart.yaml")}
        return sorted(names)


def strict_crd_schema(schema: Any) -> Any:
    """Translate a CRD's OpenAPI v3 schema into JSON Schema that rejects unknown fields."""
    if isinstance(schema, list):
        return [strict_crd_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result = {k: strict_crd_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable"):
        if "type" in result:
            result["type"] = [result["type"], "null"]
        result.pop("nullable", None)
    preserves_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserves_unknown:
        result["additionalProperties"] = False
    return result


def validate_rendering(rendering: Rendering, reference: ReferenceData, kubernetes_version: str) -> list[Finding]:
    findings: list[Finding] = plain_credentials(rendering)
    for resource in rendering.resources:
        if resource.is_manifest:
            manifest = manifest_of(resource)
            findings += validate_manifest(resource, manifest, reference, kubernetes_version)
            findings += _embedded_manifest_findings(resource, manifest, reference, kubernetes_version)
        elif resource.type in HELM_CHART_TYPES:
            findings += validate_chart(resource, reference)
        elif resource.type in MANIFEST_FILE_TYPES:
            findings += validate_manifest_source(resource)
    return findings


def _embedded_manifest_findings(
    resource: RenderedResource, manifest: dict[str, Any], reference: ReferenceData, kubernetes_version: str
) -> list[Finding]:
    """A ConfigMap that carries a manifest the cluster is handed later (a training Job template the
    drift job creates) names its key in EMBEDDED_MANIFEST_ANNOTATION; that manifest is checked now."""
    key = ((manifest.get("metadata") or {}).get("annotations") or {}).get(EMBEDDED_MANIFEST_ANNOTATION)
    if manifest.get("kind") != "ConfigMap" or key is None:
        return []
    label = f"ConfigMap/{manifest['metadata'].get('name', resource.name)} ({resource.name})"
    try:
        embedded = json.loads((manifest.get("data") or {})[key])
    except (KeyError, TypeError, ValueError) as error:
        return [Finding(label, "embedded-manifest", f"data.{key}", f"no JSON manifest under the key its annotation names: {error}")]
    return validate_manifest(resource, embedded, reference, kubernetes_version)


# Config sections holding credentials, and the declaration that marks which fields are credentials.
CREDENTIAL_SECTIONS: dict[str, type[pydantic.BaseModel]] = {"mlops:alerting": AlertingSettings, "mlops:gateway": GatewaySettings}


def plain_credentials(rendering: Rendering) -> list[Finding]:
    """A credential written in plain text in Pulumi.<stack>.yaml is in git: it must be `secure:`,
    which the offline render reads as the secret marker (online the program only sees plain text)."""
    findings = []
    for key, section in CREDENTIAL_SECTIONS.items():
        text = rendering.config.get(key)
        if not text or text == SECRET:
            continue
        for path, value in _credentials(section, json.loads(text), key):
            if value != SECRET:
                findings.append(
                    Finding(
                        f"stack config Pulumi.{rendering.stack}.yaml",
                        "plain-credential",
                        path,
                        f"a credential in plain text; set it with `pulumi config set --secret --path '{path}' <value>`",
                    )
                )
    return findings


def _credentials(section: type[pydantic.BaseModel], document: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(key path, value) of every field marked CREDENTIAL in `document`, read as `section` declares it."""
    if not isinstance(document, dict):
        return
    for field in section.model_fields.values():
        key = field.alias or ""
        value = document.get(key)
        if value is None:
            continue
        if field.json_schema_extra == CREDENTIAL:
            yield f"{prefix}.{key}", value
            continue
        nested = next((t for t in _types(field.annotation) if isinstance(t, type) and issubclass(t, pydantic.BaseModel)), None)
        if nested is None:
            continue
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            yield from _credentials(nested, item, f"{prefix}.{key}" + (f"[{index}]" if index is not None else ""))


def _types(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in typing.get_args(annotation):
        yield from _types(argument)


def validate_manifest_source(resource: RenderedResource) -> list[Finding]:
    """A manifest file from the web must come over HTTPS from an exact, immutable release."""
    location = str(resource.inputs.get("file", ""))
    parsed = urlparse(location)
    if not parsed.scheme:
        return []
    label = f"manifest file {location} ({resource.name})"
    segments = [s for s in parsed.path.split("/") if s]
    if parsed.scheme != "https":
        return [Finding(label, "manifest-source", "file", f"fetched over {parsed.scheme}, not https")]
    moving = sorted(MOVING_REFERENCES.intersection(segments))
    if moving or not any(EXACT_RELEASE.search(s) for s in segments[:-1]):
        found = f"it follows {moving[0]!r}" if moving else "no path segment names a version"
        return [Finding(label, "manifest-source", "file", f"not pinned to an exact release ({found}, e.g. .../download/v1.2.3/...)")]
    return []


def validate_manifest(
    resource: RenderedResource, manifest: dict[str, Any], reference: ReferenceData, kubernetes_version: str
) -> list[Finding]:
    label = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name', resource.name)} ({resource.name})"
    checks = schema_checks(manifest, reference, kubernetes_version)
    group, _, version = str(manifest.get("apiVersion")).rpartition("/")
    if not checks and (served := reference.served_versions(group, str(manifest.get("kind")))):
        return [
            Finding(
                label,
                "crd-version",
                "apiVersion",
                f"{group}/{version} is not a version the {manifest.get('kind')} CRD serves; served: "
                + ", ".join(f"{group}/{v}" for v in served),
            )
        ]
    if not checks:
        known = ", ".join(reference.known_custom_kinds())
        return [
            Finding(
                label,
                "schema-missing",
                "",
                f"no schema for {manifest.get('apiVersion')} {manifest.get('kind')}: neither a Kubernetes "
                f"{kubernetes_version} kind nor a reference CRD ({known})",
            )
        ]
    findings = [
        Finding(label, check_name, ".".join(p for p in (prefix, path) if p), message)
        for check_name, prefix, check, document in checks
        for path, message in check.errors(document)
    ]
    rule_check = reference.crd_rule_check(str(manifest.get("apiVersion")), str(manifest.get("kind")))
    if rule_check is not None and not any(f.check == "crd-schema" for f in findings):
        # Rules read the structure the schema guarantees: on a broken structure that is the finding.
        findings += [Finding(label, "crd-rule", path, message) for path, message in rule_check.errors(manifest)]
    return findings


def schema_checks(manifest: dict[str, Any], reference: ReferenceData, kubernetes_version: str) -> list[tuple[str, str, SchemaCheck, Any]]:
    """(check name, path prefix, compiled schema, the part of the object it checks) for one object.

    A custom resource is checked against its CRD, whose schema leaves `metadata` open, and its
    metadata against Kubernetes' ObjectMeta, which the API server applies to every object.
    """
    key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
    crd_check = reference.crd_check(*key)
    if crd_check is not None:
        return [
            ("crd-schema", "", crd_check, manifest),
            ("kubernetes-schema", "metadata", object_meta_check(kubernetes_version), manifest.get("metadata")),
        ]
    check = kubernetes_check(kubernetes_version, *key)
    return [] if check is None else [("kubernetes-schema", "", check, manifest)]


class SchemaCheck:
    """One schema, compiled once: jsonschema-rs says whether a document is valid, python-jsonschema says why not.

    Nearly every rendered object is valid, so the compiled validator answers almost every question;
    the Python one, whose messages and paths the findings have always used, runs only on the few that
    fail. tests/spine/test_validate_fast_path.py holds the two to the same verdicts.
    """

    def __init__(self, schema: dict[str, Any], definitions: dict[str, Any] | None = None, registry: Any = None):
        """`definitions`: a schema resource `$ref`s point into (by its `$id`); `registry`: it, compiled once."""
        self.schema = schema
        self.definitions = definitions
        self.fast = jsonschema_rs.Draft202012Validator(schema, registry=registry)
        self._wording: Any = None

    def is_valid(self, document: Any) -> bool:
        return self.fast.is_valid(document)

    def errors(self, document: Any) -> list[tuple[str, str]]:
        if self.fast.is_valid(document):
            return []
        return [(_json_path(e.absolute_path), e.message) for e in self.python_errors(document)]

    def python_errors(self, document: Any) -> list[jsonschema.ValidationError]:
        if self._wording is None:
            registry: referencing.Registry = referencing.Registry()
            if self.definitions is not None:
                registry = registry.with_resource(self.definitions["$id"], referencing.Resource.from_contents(self.definitions))
            self._wording = jsonschema.Draft202012Validator(self.schema, registry=registry)
        return sorted(self._wording.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])


@functools.lru_cache(maxsize=None)
def kubernetes_check(kubernetes_version: str, api_version: str, kind: str) -> SchemaCheck | None:
    """The strict schema of one Kubernetes kind (kubernetes-validate's), compiled once per version and kind."""
    schema_dir, version = _schema_dir(kubernetes_version)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = k8s_schemas.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    definitions, registry = _kubernetes_definitions(schema_dir, version)
    return SchemaCheck(schema, definitions, registry)


@functools.lru_cache(maxsize=None)
def object_meta_check(kubernetes_version: str) -> SchemaCheck:
    """Kubernetes' strict ObjectMeta, the metadata of every object, custom resources included."""
    schema_dir, version = _schema_dir(kubernetes_version)
    definitions, registry = _kubernetes_definitions(schema_dir, version)
    meta = {"$ref": f"{definitions['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return SchemaCheck(meta, definitions, registry)


def _schema_dir(kubernetes_version: str) -> tuple[str, str]:
    version = [v for v in k8s_schemas.all_versions() if k8s_schemas.major_minor(v) <= kubernetes_version][-1]
    return f"kubernetes-json-schema/v{version}-local-strict", version


@functools.lru_cache(maxsize=None)
def _kubernetes_definitions(schema_dir: str, version: str) -> tuple[dict[str, Any], Any]:
    """The shared definitions every kind's schema `$ref`s, and their compiled registry, once per version."""
    definitions = k8s_schemas.schema_contents(f"{schema_dir}/_definitions.json", version)
    return definitions, jsonschema_rs.Registry([(definitions["$id"], definitions)])


def validate_chart(resource: RenderedResource, reference: ReferenceData) -> list[Finding]:
    inputs = resource.inputs
    chart_name = str(inputs.get("chart", "")).rsplit("/", 1)[-1]
    label = f"chart {chart_name} ({resource.name})"
    chart = reference.chart(chart_name)
    if chart is None:
        return [Finding(label, "chart-values", "", f"no reference values for chart {chart_name!r}; known: {', '.join(reference.chart_names())}")]
    _chart_file, defaults, values_schema = chart
    findings = []
    if (pin_problem := chart_pin_problem(reference.manifest, chart_name, str(inputs.get("version")))) is not None:
        findings.append(Finding(label, "chart-version", "version", pin_problem))
    values = inputs.get("values") or {}
    if values_schema is not None:
        for path, message in _schema_errors(values_schema, values):
            findings.append(Finding(label, "chart-values-schema", path, message))
    if defaults is None:
        for key in values:
            findings.append(Finding(label, "chart-values", str(key), "the chart takes no values; Helm would ignore it"))
        return findings
    for path in unknown_value_paths(values, defaults):
        if values_schema is not None and schema_declares(values_schema, path.split(".")):
            continue  # a documented key without a default (cert-manager's serviceAccount.annotations)
        findings.append(Finding(label, "chart-values", path, "key is not in the chart's default values; Helm would ignore it"))
    return findings


def schema_declares(schema: dict[str, Any], path: list[str]) -> bool:
    """Whether a chart's values.schema.json names the key at `path` (following its local `$ref`s)."""
    node: Any = schema
    for key in path:
        node = _local_ref(schema, node)
        properties = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(properties, dict) or key not in properties:
            return False
        node = properties[key]
    return True


def _local_ref(schema: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target: Any = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _schema_errors(schema: dict[str, Any], document: Any) -> list[tuple[str, str]]:
    """A chart's values against its values.schema.json: a handful per render, so Python alone."""
    errors = jsonschema.Draft202012Validator(schema).iter_errors(document)
    return [(_json_path(e.absolute_path), e.message) for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])]


def unknown_value_paths(values: Any, defaults: Any, prefix: str = "") -> list[str]:
    """Key paths set in `values` that the chart's defaults do not have.

    Below a default that is an empty map, or a list, or any non-map value, the chart takes
    free-form content (annotations, extra env, resources), so nothing there is flagged.
    """
    if not isinstance(values, dict) or not isinstance(defaults, dict) or not defaults:
        return []
    unknown = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in defaults:
            unknown.append(path)
        else:
            unknown += unknown_value_paths(value, defaults[key], path)
    return unknown


def _json_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def kubernetes_version(rendering: Rendering) -> str:
    """The Kubernetes minor the rendered stack declares, which its objects are validated against."""
    cluster = json.loads(rendering.config.get("mlops:cluster", "{}"))
    return str(cluster.get("kubernetesVersion", ClusterSettings.model_fields["kubernetes_version"].default))
