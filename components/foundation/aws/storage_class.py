"""The cluster's default StorageClass: encrypted gp3 volumes from the EBS CSI driver.

EKS clusters since Kubernetes 1.30 have no default StorageClass, so a PersistentVolumeClaim that
names none (Prometheus, Alertmanager, the collector's spool) would stay Pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"


@dataclass(frozen=True)
class DefaultStorageClassArgs:
    name: str = "gp3-encrypted"
    # The EBS CSI add-on: its controller provisions the volumes.
    wait_for: list[pulumi.Resource] = field(default_factory=list)


class DefaultStorageClass(pulumi.ComponentResource):
    storage_class: k8s.storage.v1.StorageClass

    def __init__(self, name: str, args: DefaultStorageClassArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:DefaultStorageClass", name, None, opts)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.name, annotations={DEFAULT_CLASS_ANNOTATION: "true"}),
            provisioner=EBS_CSI_PROVISIONER,
            parameters={"type": "gp3", "encrypted": "true"},
            # Bind where the pod lands, so the volume is in the pod's zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.wait_for),
        )
        self.register_outputs({"name": self.storage_class.metadata.name})
