"""The Google Cloud APIs the stack calls, enabled as declared resources (not a README prerequisite).

`disable_on_destroy=False`: destroying a stack must not turn an API off for everything else in the
project; `disable_dependent_services=False` likewise never disables services that depend on one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# What the GCP foundation creates, by API: GKE, the VPC and its router/NAT, Cloud SQL and its
# private service connection, KMS keys, GCS buckets, Artifact Registry, service accounts and their
# bindings; Cloud Resource Manager answers project look-ups and the Service Usage calls themselves.
REQUIRED_APIS: tuple[str, ...] = (
    "artifactregistry.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
)


@dataclass(frozen=True)
class ProjectApisArgs:
    project: str
    apis: Sequence[str] = REQUIRED_APIS


class ProjectApis(pulumi.ComponentResource):
    # Every other GCP resource of the stack is created after these.
    services: list[gcp.projects.Service]

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.project,
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in args.apis
        ]
        self.register_outputs({"apis": list(args.apis)})
