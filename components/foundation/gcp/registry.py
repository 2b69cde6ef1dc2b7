"""Artifact Registry: one Docker repository for the platform's own images.

Tags are immutable in prod (a tag always means the same image, so a rollback redeploys exactly
what ran before). Nodes pull with their own service account, granted read on this repository only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.images import ImageReference

READER = "roles/artifactregistry.reader"
# Untagged images (superseded pushes) are deleted after this long.
UNTAGGED_RETENTION = "2592000s"


def image_url(region: str, project: str, repository_id: str, image: str) -> str:
    return f"{region}-docker.pkg.dev/{project}/{repository_id}/{image}"


@dataclass(frozen=True)
class ImageRegistryArgs:
    project: str
    region: str
    repository_id: str
    images: Sequence[str]
    immutable_tags: bool
    # Principals that pull images, by a label naming the grant (e.g. nodes -> node service account).
    readers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class ImageRegistry(pulumi.ComponentResource):
    repository: gcp.artifactregistry.Repository
    image_urls: dict[str, str]

    def __init__(self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:ImageRegistry", name, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-docker",
            repository_id=args.repository_id,
            location=args.region,
            format="DOCKER",
            description="Images the MLOps platform deploys (MLflow, runtime, serving runtimes)",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=args.immutable_tags),
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-untagged",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=UNTAGGED_RETENTION
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        for label, member in sorted(args.readers.items()):
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-reader-{label}",
                project=args.project,
                location=args.region,
                repository=self.repository.repository_id,
                role=READER,
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.image_urls = {image: image_url(args.region, args.project, args.repository_id, image) for image in args.images}
        self._args = args
        self.register_outputs({"image_urls": self.image_urls})

    def resolve(self, reference: str) -> pulumi.Output[str]:
        """`<region>-docker.pkg.dev/<project>/<repository>/<name>@<digest>` of the configured
        image's tag here. An image that was not pushed fails the lookup before any workload changes."""
        image = ImageReference.parse(reference)
        url = self.image_urls[image.name]
        if image.digest is not None:
            return pulumi.Output.from_input(f"{url}@{image.digest}")
        found = gcp.artifactregistry.get_docker_image_output(
            project=self._args.project,
            location=self._args.region,
            repository_id=self.repository.repository_id,
            image_name=f"{image.name}:{image.tag}",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return found.self_link
