"""IRSA: one least-privilege role per workload, trusted only by its exact service account."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.foundation.aws.identity import BucketGrant, bucket_access_policy, irsa_trust_policy
from mlops.offline.render import RenderedResource, Rendering

SERVICE_ACCOUNTS = {
    "mlflow": "system:serviceaccount:mlops-platform:mlflow",
    "payload-collector": "system:serviceaccount:mlops-platform:payload-collector",
    "storage-initializer": "system:serviceaccount:mlops-serving:model-server",
    "drift-job": "system:serviceaccount:mlops-serving:drift-job",
    "training-job": "system:serviceaccount:mlops-serving:training-job",
    "batch-job": "system:serviceaccount:mlops-serving:batch-job",
    "vpc-cni": "system:serviceaccount:kube-system:aws-node",
    "ebs-csi": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    "cluster-autoscaler": "system:serviceaccount:kube-system:cluster-autoscaler",
    # Prod's gateway: the controller that binds the NLB to Envoy's pods, and cert-manager's DNS-01 solver.
    "aws-load-balancer-controller": "system:serviceaccount:kube-system:aws-load-balancer-controller",
    "cert-manager": "system:serviceaccount:cert-manager:cert-manager",
}
READ = {"s3:GetObject", "s3:GetObjectVersion"}
LIST = {"s3:GetBucketLocation", "s3:ListBucket"}
WRITE = {"s3:PutObject", "s3:AbortMultipartUpload"}


def role(rendering: Rendering, workload: str) -> RenderedResource:
    (resource,) = [r for r in rendering.by_type("aws:iam/role:Role") if r.name == f"irsa-{workload}"]
    return resource


def policy(rendering: Rendering, workload: str) -> dict[str, Any]:
    (resource,) = [r for r in rendering.by_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"irsa-{workload}"]
    return json.loads(resource.inputs["policy"])


def grants(document: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> actions allowed on it."""
    allowed: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        allowed.setdefault(statement["Resource"], set()).update(actions)
    return allowed


@pytest.fixture(scope="module")
def arns(prod) -> dict[str, str]:
    artifacts = f"arn:aws:s3:::{prod.outputs['artifactBucket']}"
    payloads = f"arn:aws:s3:::{prod.outputs['payloadBucket']}"
    # The key the policies name must be the one that encrypts the buckets.
    keys = {
        e.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
        for e in prod.by_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    }
    (key_arn,) = keys
    return {"artifacts": artifacts, "payloads": payloads, "key": key_arn}


@pytest.mark.parametrize("workload", sorted(SERVICE_ACCOUNTS))
def test_trust_policy_admits_only_the_exact_service_account_and_sts_audience(prod, workload):
    trust = json.loads(role(prod, workload).inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    issuer = prod.outputs["oidcProviderArn"].split(":oidc-provider/", 1)[1]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": prod.outputs["oidcProviderArn"]}
    assert statement["Condition"] == {
        "StringEquals": {f"{issuer}:sub": SERVICE_ACCOUNTS[workload], f"{issuer}:aud": "sts.amazonaws.com"}
    }


def test_trust_policy_never_uses_wildcards():
    """StringEquals with the full subject: `StringLike` or `*` would admit other service accounts."""
    document = irsa_trust_policy("arn:aws:iam::1:oidc-provider/x", "https://x", ("ns",), "sa")
    text = json.dumps(document)
    assert "*" not in text and "StringLike" not in text
    assert document["Statement"][0]["Condition"]["StringEquals"]["x:sub"] == "system:serviceaccount:ns:sa"


def test_mlflow_reads_and_writes_artifacts_only(prod, arns):
    allowed = grants(policy(prod, "mlflow"))
    assert allowed[arns["artifacts"]] == LIST
    assert allowed[f"{arns['artifacts']}/*"] == READ | WRITE | {"s3:DeleteObject"}
    assert allowed[arns["key"]] == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert set(allowed) == {arns["artifacts"], f"{arns['artifacts']}/*", arns["key"]}


def test_storage_initializer_reads_artifacts_and_writes_nothing(prod, arns):
    allowed = grants(policy(prod, "storage-initializer"))
    assert allowed == {arns["artifacts"]: LIST, f"{arns['artifacts']}/*": READ, arns["key"]: {"kms:Decrypt"}}


def test_payload_collector_only_adds_payload_objects(prod, arns):
    allowed = grants(policy(prod, "payload-collector"))
    assert allowed == {f"{arns['payloads']}/*": WRITE, arns["key"]: {"kms:Decrypt", "kms:GenerateDataKey"}}


def test_training_job_only_reads_reference_data_and_payloads(prod, arns):
    """Runs, artifacts and model versions go through MLflow's server: no bucket write."""
    assert grants(policy(prod, "training-job")) == {
        arns["artifacts"]: LIST,
        f"{arns['artifacts']}/*": READ,
        arns["payloads"]: LIST,
        f"{arns['payloads']}/*": READ,
        arns["key"]: {"kms:Decrypt"},
    }


def test_batch_job_reads_payloads_and_writes_only_under_batch_output(prod, arns):
    assert grants(policy(prod, "batch-job")) == {
        arns["payloads"]: LIST,
        f"{arns['payloads']}/*": READ,
        f"{arns['payloads']}/batch-output/*": WRITE,
        arns["key"]: {"kms:Decrypt", "kms:GenerateDataKey"},
    }


def test_drift_job_reads_both_buckets_and_only_adds_its_reports(prod, arns):
    allowed = grants(policy(prod, "drift-job"))
    assert allowed == {
        arns["artifacts"]: LIST,
        f"{arns['artifacts']}/*": READ,
        arns["payloads"]: LIST,
        f"{arns['payloads']}/*": READ,
        f"{arns['payloads']}/drift-reports/*": WRITE,
        arns["key"]: {"kms:Decrypt", "kms:GenerateDataKey"},
    }
    (cronjob,) = [r for r in prod.by_type("kubernetes:batch/v1:CronJob") if r.name == "model-fraud-detector-drift"]
    args = cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--report-root") + 1] == f"s3://{prod.outputs['payloadBucket']}/drift-reports"


def test_addon_roles_get_only_their_aws_managed_policies(prod):
    attachments = {
        a.name: a.inputs["policyArn"]
        for a in prod.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("irsa-")
    }
    assert attachments == {
        "irsa-vpc-cni-AmazonEKS_CNI_Policy": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "irsa-ebs-csi-AmazonEBSCSIDriverPolicy": "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
    }
    inline = {p.name for p in prod.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("irsa-")}
    assert inline == {
        "irsa-mlflow", "irsa-storage-initializer", "irsa-payload-collector", "irsa-drift-job", "irsa-training-job", "irsa-batch-job",
        "irsa-cluster-autoscaler", "irsa-aws-load-balancer-controller", "irsa-cert-manager",
    }  # fmt: skip


def test_no_static_access_keys_or_iam_users_exist(prod):
    assert not [r for r in prod.resources if r.type in ("aws:iam/accessKey:AccessKey", "aws:iam/user:User")]


def test_mlflow_service_account_is_bound_to_its_role(prod):
    (account,) = [r for r in prod.by_type("kubernetes:core/v1:ServiceAccount") if r.name == "mlflow-service-account"]
    annotations = account.inputs["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"] == prod.outputs["workloadRoleArns"]["mlflow"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith(":role/irsa-mlflow")


def test_reading_needs_no_kms_data_key_and_aws_managed_keys_need_no_key_statement():
    read_only = bucket_access_policy([BucketGrant("arn:aws:s3:::b", "read")], "arn:aws:kms:r:1:key/k")
    assert read_only["Statement"][-1]["Action"] == ["kms:Decrypt"]
    without_key = bucket_access_policy([BucketGrant("arn:aws:s3:::b", "read")], None)
    assert not [s for s in without_key["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
