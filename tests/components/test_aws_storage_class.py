"""EKS has no default StorageClass since 1.30: the stack declares an encrypted gp3 one."""

from __future__ import annotations

from mlops.offline.render import render
from tests.conftest import PROJECT_DIR


def test_encrypted_gp3_is_the_default_class_and_claims_wait_for_it():
    prod = render(PROJECT_DIR, "prod")
    (storage_class,) = prod.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
    inputs = storage_class.inputs
    assert inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert inputs["provisioner"] == "ebs.csi.aws.com"
    assert inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    ebs_addon = next(r for r in prod.by_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver")
    assert ebs_addon.urn in storage_class.options["dependsOn"]
    (spool,) = [r for r in prod.by_type("kubernetes:core/v1:PersistentVolumeClaim") if r.name == "payload-collector-spool"]
    assert "storageClassName" not in spool.inputs["spec"]
    collector = next(r for r in prod.by_type("kubernetes:apps/v1:Deployment") if r.name == "payload-collector-server")
    platform = next(r for r in prod.resources if r.urn == collector.parent)
    assert storage_class.urn in platform.options["dependsOn"] or storage_class.urn in collector.options["dependsOn"]
