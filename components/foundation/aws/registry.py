"""ECR repositories for the platform's images, and the digest of a tag in them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.images import ImageReference

UNTAGGED_IMAGE_DAYS = 14


def untagged_expiry_policy(days: int) -> dict[str, Any]:
    """ECR lifecycle policy expiring untagged images (leftovers of re-pushed builds)."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {days} days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days},
                "action": {"type": "expire"},
            }
        ]
    }


@dataclass(frozen=True)
class ImageRegistriesArgs:
    repositories: list[str]
    # Immutable tags (prod): a tag always names the image that was scanned and deployed.
    immutable_tags: bool


class ImageRegistries(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImageRegistriesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:ImageRegistries", name, None, opts)
        self.repository_urls = {}
        self._repositories: dict[str, aws.ecr.Repository] = {}
        for repository in args.repositories:
            repo = aws.ecr.Repository(
                f"{name}-{repository}",
                name=f"mlops/{repository}",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                image_tag_mutability="IMMUTABLE" if args.immutable_tags else "MUTABLE",
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
                # Images are rebuilt from source; teardown should not stall on them.
                force_delete=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{repository}",
                repository=repo.name,
                policy=json.dumps(untagged_expiry_policy(UNTAGGED_IMAGE_DAYS)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.repository_urls[repository] = repo.repository_url
            self._repositories[repository] = repo
        self.register_outputs({"repository_urls": self.repository_urls})

    def resolve(self, reference: str) -> pulumi.Output[str]:
        """`<repository url>@<digest>` of the configured image's tag in its repository here.

        An image that was not pushed fails the lookup (ImageNotFoundException) before any
        workload changes.
        """
        image = ImageReference.parse(reference)
        repository = self._repositories[image.name]
        if image.digest is not None:
            return pulumi.Output.concat(repository.repository_url, "@", image.digest)
        found = aws.ecr.get_image_output(
            repository_name=repository.name, image_tag=image.tag, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return pulumi.Output.concat(repository.repository_url, "@", found.image_digest)
