"""Where models and reference data live: resolved against the stack's own stores, never guessed.

A model's artifact (`model.artifactUri`, `canary.previousArtifactUri`) is read by KServe's storage
initializer; reference data and labels (`monitoring.referenceDataUri`, `monitoring.labelsUri`) by
the drift job. Each cloud grants those identities read access to the stack's own buckets only, so
a location elsewhere would answer AccessDenied at `pulumi up` (no InferenceService Ready, a failing
drift job). A location is therefore one of:

- store-relative (`12/<run>/artifacts/model`): the program turns it into `s3://<bucket>/...` on AWS
  and on the local in-cluster store, `gs://<bucket>/...` on GCP, so one stack file serves every cloud;
- an absolute URI inside a bucket the reader may read (the scheme of the stack's cloud);
- under one of `mlops:storage.externalReadLocations`, for which the foundation renders the read
  grant next to the stack's own (IAM policy statement on AWS, bucket IAM member on GCP).

Anything else is refused with the key named. Bucket names are deterministic
(`<bucketPrefix>-artifacts`, `<bucketPrefix>-payloads`), so this check runs before any resource exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.declarations import ModelDeployment
from components.foundation.local.object_store import LOCAL_BUCKETS
from stacks.config import ConfigError, Problem, StackConfig

SCHEMES = {"aws": "s3", "gcp": "gs", "local": "s3"}
# S3 and GCS bucket names: 3-63 lowercase letters, digits and hyphens (dots left out: they break
# virtual-hosted TLS on S3). The prefix leaves room for the longest suffix, "-artifacts".
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<bucket>[^/]+)/(?P<key>.*)$")


@dataclass(frozen=True)
class StackStores:
    """The buckets one stack owns and the external locations it declared, by name."""

    scheme: str
    artifact_bucket: str
    payload_bucket: str
    # URI prefixes outside the stack the model readers are granted (cloud targets only).
    external: tuple[str, ...] = ()

    def uri(self, bucket: str, key: str) -> str:
        return f"{self.scheme}://{bucket}/{key}"


def bucket_prefix(config: StackConfig) -> str:
    return config.storage.bucket_prefix or f"{pulumi.get_project()}-{pulumi.get_stack()}".lower()


def stack_stores(config: StackConfig) -> StackStores:
    """The deterministic bucket names of the stack (also exported as artifactBucket/payloadBucket)."""
    if config.cloud == "local":
        artifacts, payloads = LOCAL_BUCKETS
        return StackStores("s3", artifacts, payloads)
    prefix = bucket_prefix(config)
    names = (f"{prefix}-artifacts", f"{prefix}-payloads")
    bad = [name for name in names if not BUCKET_NAME.match(name) or name.startswith("goog")]
    if bad:
        raise ConfigError(
            [
                Problem(
                    "mlops:storage.bucketPrefix",
                    prefix,
                    f"gives bucket names {bad}; bucket names are 3-63 lowercase letters, digits and hyphens, "
                    "not starting with 'goog' (set a bucketPrefix of at most 53 such characters)",
                )
            ]
        )
    return StackStores(SCHEMES[config.cloud], *names, external=tuple(config.storage.external_read_locations))


def external_buckets(stores: StackStores) -> list[tuple[str, str]]:
    """(bucket, key prefix) of every declared external location, for the read grants."""
    result = []
    for location in stores.external:
        match = URI.match(location)
        assert match is not None, "externalReadLocations entries are validated by the schema"
        result.append((match["bucket"], match["key"]))
    return result


# MLflow artifact references: the drift job reads them through the tracking server, from the stack's
# own artifact store.
MLFLOW_REFERENCES = ("runs:/", "models:/")


def _resolve(key: str, value: str, readable: tuple[str, ...], stores: StackStores, problems: list[Problem]) -> str:
    if value.startswith(MLFLOW_REFERENCES) and stores.payload_bucket in readable:
        return value
    match = URI.match(value)
    if match is None:
        if "://" in value or ":/" in value or value.startswith("/"):
            problems.append(Problem(key, value, "is neither a URI of the stack's object store nor a path relative to it"))
            return value
        return stores.uri(readable[0], value)
    if match["scheme"] == stores.scheme and match["bucket"] in readable:
        return value
    if match["scheme"] == stores.scheme and any(value.startswith(prefix) for prefix in stores.external):
        return value
    allowed = [f"{stores.scheme}://{bucket}/..." for bucket in readable] + list(stores.external)
    problems.append(
        Problem(
            key,
            value,
            "is outside the stack's stores, so its reader would be denied; use a path relative to the artifact "
            f"bucket, a URI under {', '.join(allowed)}, or declare the location in mlops:storage.externalReadLocations "
            "(cloud targets) so its read grant is rendered",
        )
    )
    return value


def resolve_model_locations(models: list[ModelDeployment], stores: StackStores) -> list[ModelDeployment]:
    """The models with every location absolute and readable by its reader, or ConfigError naming each key."""
    # The storage initializer reads the artifact bucket; the drift job reads both stack buckets.
    artifact_readable = (stores.artifact_bucket,)
    drift_readable = (stores.artifact_bucket, stores.payload_bucket)
    problems: list[Problem] = []
    resolved = []
    for index, model in enumerate(models):
        path = f"mlops:models[{index}]"
        reference = model.model
        if reference.artifact_uri is not None:
            reference = reference.model_copy(
                update={"artifact_uri": _resolve(f"{path}.model.artifactUri", reference.artifact_uri, artifact_readable, stores, problems)}
            )
        canary = model.canary
        if canary is not None and canary.previous_artifact_uri is not None:
            canary = canary.model_copy(
                update={
                    "previous_artifact_uri": _resolve(
                        f"{path}.canary.previousArtifactUri", canary.previous_artifact_uri, artifact_readable, stores, problems
                    )
                }
            )
        monitoring = model.monitoring
        assert monitoring is not None, "the schema requires monitoring on every model"
        updates = {
            "reference_data_uri": _resolve(
                f"{path}.monitoring.referenceDataUri", monitoring.reference_data_uri, drift_readable, stores, problems
            )
        }
        if monitoring.labels_uri is not None:
            updates["labels_uri"] = _resolve(f"{path}.monitoring.labelsUri", monitoring.labels_uri, drift_readable, stores, problems)
        resolved.append(
            model.model_copy(update={"model": reference, "canary": canary, "monitoring": monitoring.model_copy(update=updates)})
        )
    if problems:
        raise ConfigError(problems)
    return resolved
