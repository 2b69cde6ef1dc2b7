"""Where the platform's container images come from.

With `mlops:images.source: reference` images are deployed as configured. With `stackRegistry`
each configured image is expected in the stack's own registry (ECR / Artifact Registry, tags
immutable in prod) under its short name and tag, and is deployed by the digest the registry
reports for that tag: the manifests name exact bytes, and because the tag cannot be moved, a
rollback to an earlier declaration resolves to the very image that ran then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pulumi

DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")

# Turns a configured image reference into the reference the cluster pulls.
ImageResolver = Callable[[str], pulumi.Input[str]]


@dataclass(frozen=True)
class ImageReference:
    """The parts of `registry/path/name:tag[@sha256:...]` a registry mirror needs."""

    name: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ImageReference:
        digest_match = DIGEST.search(reference)
        without_digest = reference[: digest_match.start()] if digest_match else reference
        last = without_digest.rsplit("/", 1)[-1]
        name, _, tag = last.partition(":")
        return cls(name=name, tag=tag or None, digest=digest_match.group(1) if digest_match else None)


def as_configured(reference: str) -> str:
    return reference


def repository_names(references: list[str]) -> list[str]:
    """One registry repository per distinct image name."""
    return sorted({ImageReference.parse(reference).name for reference in references})
