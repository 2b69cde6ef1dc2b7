"""`mlops models resolve`: pin a registered model version into the stack config.

The MLflow registry is asked once, here, for the version (or what an alias points at), its
artifact URI and its signature; they are written into `Pulumi.<stack>.yaml`, so previews never
need registry access and the stack's history records exactly which artifact each update served.

Only the standard library and pyyaml are used to talk to MLflow (its REST API), so the command
runs in either virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.stackops.stack_models import StackModels

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
PROXIED_SCHEME = "mlflow-artifacts:"
REQUEST_TIMEOUT_SECONDS = 30


class RegistryError(RuntimeError):
    """The registry refused a request or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class ResolvedModel:
    registered_model: str
    version: str
    artifact_uri: str
    signature: dict[str, Any] | None


class MlflowRegistry:
    """The few MLflow REST endpoints resolving needs."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri.rstrip("/")

    def _get(self, path: str, params: dict[str, str]) -> bytes:
        url = f"{self.tracking_uri}/{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=_auth_headers())
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise RegistryError(f"MLflow at {self.tracking_uri} answered {error.code} for {path} {params}: {_mlflow_message(error)}") from error
        except (urllib.error.URLError, OSError) as error:
            raise RegistryError(f"cannot reach MLflow at {self.tracking_uri}: {getattr(error, 'reason', error)}") from error

    def _json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return json.loads(self._get(f"api/2.0/mlflow/{path}", params))

    def version(self, name: str, version: str) -> str:
        return str(self._json("model-versions/get", {"name": name, "version": version})["model_version"]["version"])

    def version_of_alias(self, name: str, alias: str) -> str:
        return str(self._json("registered-models/alias", {"name": name, "alias": alias})["model_version"]["version"])

    def download_uri(self, name: str, version: str) -> str:
        return str(self._json("model-versions/get-download-uri", {"name": name, "version": version})["artifact_uri"])

    def mlmodel(self, name: str, version: str) -> dict[str, Any]:
        text = self._get("model-versions/get-artifact", {"name": name, "version": version, "path": "MLmodel"})
        document = yaml.safe_load(text)
        if not isinstance(document, dict):
            raise RegistryError(f"{name} version {version}: MLmodel is not a YAML mapping")
        return document


def _auth_headers() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


def _mlflow_message(error: urllib.error.HTTPError) -> str:
    body = error.read().decode(errors="replace")
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return body.strip()[:300] or str(error.reason)
    return f"{document.get('error_code', '')} {document.get('message', '')}".strip()


def servable_uri(download_uri: str, artifacts_destination: str | None) -> str:
    """The URI KServe's storage initializer can read.

    A tracking server that proxies artifacts (`--serve-artifacts`) hands out
    `mlflow-artifacts:/<path>` (optionally with a host); the object lives at
    `<artifacts-destination>/<path>`, which is what the model server must download.
    """
    if not download_uri.startswith(PROXIED_SCHEME):
        return download_uri
    if not artifacts_destination:
        raise RegistryError(
            f"the registry serves {download_uri!r} through its artifact proxy, which KServe cannot read; pass "
            "--artifacts-destination with the tracking server's --artifacts-destination (e.g. s3://<artifact bucket>)"
        )
    parsed = urllib.parse.urlparse(download_uri)
    return artifacts_destination.rstrip("/") + "/" + parsed.path.lstrip("/")


def signature_of(mlmodel: dict[str, Any]) -> dict[str, Any] | None:
    """The MLmodel signature as the stack schema records it: named, typed columns (tensors as tensor:<dtype>)."""
    signature = mlmodel.get("signature")
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    result: dict[str, Any] = {"inputs": _columns(signature["inputs"])}
    if signature.get("outputs"):
        result["outputs"] = _columns(signature["outputs"])
    return result


def _columns(encoded: str | list[dict[str, Any]]) -> list[dict[str, str]]:
    specs = json.loads(encoded) if isinstance(encoded, str) else encoded
    columns = []
    for spec in specs:
        column_type = spec.get("type", "unknown")
        if column_type == "tensor":
            column_type = f"tensor:{(spec.get('tensor-spec') or {}).get('dtype', 'unknown')}"
        column = {"type": str(column_type)}
        if spec.get("name") is not None:
            column = {"name": str(spec["name"]), **column}
        columns.append(column)
    return columns


def resolve(registry: MlflowRegistry, name: str, version: str | None, alias: str | None, artifacts_destination: str | None) -> ResolvedModel:
    number = registry.version(name, version) if version is not None else registry.version_of_alias(name, str(alias))
    return ResolvedModel(
        registered_model=name,
        version=number,
        artifact_uri=servable_uri(registry.download_uri(name, number), artifacts_destination),
        signature=signature_of(registry.mlmodel(name, number)),
    )


def updated_declaration(
    declaration: dict[str, Any], resolved: ResolvedModel, alias: str | None, canary_percent: int | None
) -> dict[str, Any]:
    """The declaration pinned to `resolved`; with `canary_percent`, the old artifact becomes the canary's stable side."""
    updated = json.loads(json.dumps(declaration))
    previous = dict(updated.get("model") or {})
    reference: dict[str, Any] = {"registeredModel": resolved.registered_model}
    if alias is not None:
        reference.update({"alias": alias, "resolvedVersion": resolved.version})
    else:
        reference["version"] = resolved.version
    reference["artifactUri"] = resolved.artifact_uri
    if resolved.signature is not None:
        reference["signature"] = resolved.signature
    updated["model"] = reference
    if canary_percent is not None:
        if previous.get("artifactUri") in (None, resolved.artifact_uri):
            raise RegistryError(
                f"--canary needs a different artifact already deployed; {declaration.get('name')!r} serves "
                f"{previous.get('artifactUri')!r}, the resolved one is {resolved.artifact_uri!r}"
            )
        canary = dict(updated.get("canary") or {})
        canary.update(
            {
                "trafficPercent": canary_percent,
                "previousArtifactUri": previous["artifactUri"],
                "previousVersion": str(previous.get("version") or previous.get("resolvedVersion") or previous.get("alias")),
            }
        )
        updated["canary"] = canary
    return updated


def refuse_unguarded_rollout(
    declaration: dict[str, Any], resolved: ResolvedModel, canary_percent: int | None, environment: str
) -> None:
    """In prod a new artifact reaches users only behind a canary (issue: canary required in prod)."""
    deployed = (declaration.get("model") or {}).get("artifactUri")
    if environment == "prod" and canary_percent is None and deployed not in (None, resolved.artifact_uri):
        raise RegistryError(
            f"prod rolls out a new version behind a canary: {declaration.get('name')!r} serves {deployed!r}; "
            f"add --canary PERCENT to send part of the traffic to {resolved.artifact_uri!r}"
        )


def command_resolve(args: argparse.Namespace) -> int:
    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        print("mlops models resolve: give --tracking-uri or set MLFLOW_TRACKING_URI", file=sys.stderr)
        return EXIT_BAD_INPUT
    stack_models = StackModels(Path(args.project_dir), args.stack)
    models = stack_models.declarations()
    index = stack_models.index_of(args.name, models)
    declaration = models[index]
    registered = (declaration.get("model") or {}).get("registeredModel") or args.name
    try:
        resolved = resolve(MlflowRegistry(tracking_uri), registered, args.version, args.alias, args.artifacts_destination)
        refuse_unguarded_rollout(declaration, resolved, args.canary, stack_models.environment())
        models[index] = updated_declaration(declaration, resolved, args.alias, args.canary)
    except RegistryError as error:
        print(f"mlops models resolve: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE if str(error).startswith("cannot reach") else EXIT_BAD_INPUT
    stack_models.write(models)
    pinned = f"alias {args.alias} -> version {resolved.version}" if args.alias else f"version {resolved.version}"
    print(f"{args.name}: {registered} {pinned}, artifact {resolved.artifact_uri}")
    print(f"signature: {'recorded' if resolved.signature else 'none in the MLmodel file'}; wrote {stack_models.path.name}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="model declarations of a stack")
    commands = models.add_subparsers(dest="models_command", required=True)
    parser = commands.add_parser(
        "resolve",
        help="ask the MLflow registry for a version's artifact URI and signature and write them into Pulumi.<stack>.yaml",
    )
    parser.add_argument("name", help="model deployment name (mlops:models[].name)")
    parser.add_argument("--stack", required=True, help="stack name: edits Pulumi.<stack>.yaml")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registered model version, e.g. 7")
    which.add_argument("--alias", help="registered model alias, e.g. champion (its current version is recorded)")
    parser.add_argument("--tracking-uri", help="MLflow tracking server (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument(
        "--artifacts-destination",
        default=os.environ.get("MLOPS_ARTIFACTS_DESTINATION"),
        help="where a proxying tracking server stores artifacts (its --artifacts-destination, e.g. s3://bucket); "
        "needed when the registry answers with mlflow-artifacts:/ URIs (default: $MLOPS_ARTIFACTS_DESTINATION)",
    )
    parser.add_argument(
        "--canary",
        type=int,
        choices=range(0, 101),
        metavar="PERCENT",
        help="start a canary: the currently declared artifact becomes the stable side, the resolved one gets PERCENT of traffic",
    )
    parser.add_argument("--project-dir", default=".", help="project directory holding Pulumi.yaml (default: .)")
    parser.set_defaults(func=command_resolve)
