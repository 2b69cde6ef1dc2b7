"""image-pinned: every container image names an exact build.

Every image an object names (pod containers, Envoy Gateway's proxy, chart image values). Everywhere:
an explicit tag that is not `latest`. In prod: a digest (`@sha256:...`), because a tag
can be moved after review and a rollback must restore the very same bytes.
"""

from __future__ import annotations

import re

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, environment_of, resource_guardrail, violation
from .common.kubernetes import declared_images, describe

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

TEXT = RuleText(
    name="image-pinned",
    description="Container images are pinned: an explicit non-latest tag everywhere, a sha256 digest in prod.",
    remediation="Reference images as registry/name:tag@sha256:<digest> (set mlops:mlflow.image and mlops:images.runtime in Pulumi.<stack>.yaml).",
)


def image_problem(image: str, prod: bool) -> str | None:
    """Why `image` is not pinned enough for the environment, or None."""
    if DIGEST.search(image):
        return None
    name = image.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else None
    if tag is None:
        return "has no tag (means latest)"
    if tag == "latest":
        return "uses the moving tag 'latest'"
    if prod:
        return "is pinned by tag only; prod needs a digest"
    return None


def validate(args: ResourceValidationArgs, report: Report) -> None:
    prod = environment_of(args) == "prod"
    for place, image in declared_images(args.resource_type, args.props):
        problem = image_problem(image, prod)
        if problem:
            where = f"{describe(args.resource_type, args.props, args.name)} {place}"
            report(violation(f"{where} image {image!r} {problem}", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
