"""RDS PostgreSQL: private, encrypted, backed up, Multi-AZ and deletion-protected in prod, secret password."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.offline.render import SECRET, RenderedResource, Rendering, render, write_rendering

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(
        PROJECT_DIR,
        "prod",
        {"mlops:environment": "dev", "mlops:database.highAvailability": "false", "mlops:database.deletionProtection": "false"},
    )


def instance_of(rendering: Rendering) -> RenderedResource:
    (instance,) = rendering.by_type("aws:rds/instance:Instance")
    return instance


def test_database_is_postgres_at_the_configured_major_version(prod):
    inputs = instance_of(prod).inputs
    assert inputs["engine"] == "postgres" and inputs["engineVersion"] == "16"
    assert inputs["dbName"] == "mlflow" and inputs["username"] == "mlflow"
    assert inputs["allocatedStorage"] == 100


def test_database_lives_in_private_subnets_and_admits_only_the_cluster_subnets(prod):
    inputs = instance_of(prod).inputs
    assert inputs["publiclyAccessible"] is False
    (subnet_group,) = prod.by_type("aws:rds/subnetGroup:SubnetGroup")
    assert sorted(subnet_group.inputs["subnetIds"]) == [f"network-private-us-east-1{z}-id" for z in "abc"]
    assert inputs["dbSubnetGroupName"] == f"{subnet_group.name}-id"
    (group,) = [g for g in prod.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "mlflow-db-clients"]
    assert inputs["vpcSecurityGroupIds"] == ["mlflow-db-clients-id"]
    (rule,) = group.inputs["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 5432, 5432)
    private_cidrs = sorted(s.inputs["cidrBlock"] for s in prod.by_type("aws:ec2/subnet:Subnet") if "-private-" in s.name)
    assert sorted(rule["cidrBlocks"]) == private_cidrs


def test_storage_is_encrypted_with_a_kms_key(prod):
    inputs = instance_of(prod).inputs
    assert inputs["storageEncrypted"] is True
    assert inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_automated_backups_are_on_for_the_configured_days(prod):
    inputs = instance_of(prod).inputs
    assert inputs["backupRetentionPeriod"] == 14
    assert inputs["backupWindow"]
    assert inputs["deleteAutomatedBackups"] is False
    assert inputs["skipFinalSnapshot"] is False and inputs["finalSnapshotIdentifier"]


def test_prod_database_is_multi_az_deletion_protected_and_retained(prod):
    instance = instance_of(prod)
    assert instance.inputs["multiAz"] is True
    assert instance.inputs["deletionProtection"] is True
    assert instance.options["protect"] is True and instance.options["retainOnDelete"] is True
    key = next(k for k in prod.by_type("aws:kms/key:Key") if k.name == "mlflow-db-key")
    assert key.options["protect"] is True and key.options["retainOnDelete"] is True


def test_dev_database_is_single_az_and_removable(dev):
    instance = instance_of(dev)
    assert instance.inputs["multiAz"] is False
    assert instance.inputs["deletionProtection"] is False
    assert instance.options["protect"] is False
    assert instance.inputs["skipFinalSnapshot"] is True
    assert instance.inputs["backupRetentionPeriod"] >= 1


def test_password_is_generated_and_only_ever_a_secret(prod, tmp_path):
    assert instance_of(prod).inputs["password"] == SECRET
    (password,) = [p for p in prod.by_type("random:index/randomPassword:RandomPassword") if "mlops:aws:PostgresDatabase" in p.parent]
    assert password.inputs["length"] >= 32
    write_rendering(prod, tmp_path)
    assert "mock-password" not in (tmp_path / "state.json").read_text()
    backend_store = [r for r in prod.by_type("kubernetes:core/v1:Secret") if r.name == "mlflow-backend-store"]
    assert backend_store and backend_store[0].inputs["stringData"]["MLFLOW_BACKEND_STORE_URI"] == SECRET
