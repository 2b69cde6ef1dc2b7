"""Cloud SQL PostgreSQL: private IP only, TLS, backups + PITR, regional and deletion-protected in prod."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.offline.render import SECRET, RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(
        PROJECT_DIR,
        "prod",
        {
            **ON_GCP,
            "mlops:environment": "dev",
            "mlops:database.highAvailability": "false",
            "mlops:database.deletionProtection": "false",
            "mlops:database.backupRetentionDays": "3",
        },
    )


def instance(rendering: Rendering) -> RenderedResource:
    (resource,) = rendering.by_type("gcp:sql/databaseInstance:DatabaseInstance")
    return resource


def test_instance_runs_the_configured_postgres_version_and_size(prod):
    inputs = instance(prod).inputs
    assert inputs["databaseVersion"] == "POSTGRES_16"
    assert inputs["region"] == "us-central1"
    assert inputs["settings"]["tier"] == "db-custom-4-16384"
    assert inputs["settings"]["diskSize"] == 100


def test_instance_has_a_private_ip_only_and_requires_tls(prod):
    ip = instance(prod).inputs["settings"]["ipConfiguration"]
    assert ip == {"ipv4Enabled": False, "privateNetwork": "network-vpc-id", "sslMode": "ENCRYPTED_ONLY"}


def test_instance_is_created_after_private_service_access(prod):
    (connection,) = prod.by_type("gcp:servicenetworking/connection:Connection")
    assert connection.urn in instance(prod).options["dependsOn"]


def test_backups_and_point_in_time_recovery_are_on(prod, dev):
    backups = instance(prod).inputs["settings"]["backupConfiguration"]
    assert backups["enabled"] is True and backups["pointInTimeRecoveryEnabled"] is True
    assert backups["backupRetentionSettings"] == {"retainedBackups": 14, "retentionUnit": "COUNT"}
    # Enterprise edition keeps at most 7 days of logs.
    assert backups["transactionLogRetentionDays"] == 7
    dev_backups = instance(dev).inputs["settings"]["backupConfiguration"]
    assert dev_backups["enabled"] is True and dev_backups["pointInTimeRecoveryEnabled"] is True
    assert dev_backups["transactionLogRetentionDays"] == 3


def test_prod_is_regional_and_deletion_protected_on_both_sides(prod):
    resource = instance(prod)
    assert resource.inputs["settings"]["availabilityType"] == "REGIONAL"
    assert resource.inputs["deletionProtection"] is True
    assert resource.inputs["settings"]["deletionProtectionEnabled"] is True
    assert resource.inputs["settings"]["retainBackupsOnDelete"] is True
    assert resource.options["protect"] is True and resource.options["retainOnDelete"] is True


def test_dev_is_zonal_and_disposable(dev):
    resource = instance(dev)
    assert resource.inputs["settings"]["availabilityType"] == "ZONAL"
    assert resource.inputs["deletionProtection"] is False
    assert resource.inputs["settings"]["deletionProtectionEnabled"] is False
    assert resource.options["protect"] is False


def test_password_is_generated_and_only_travels_as_a_secret(prod):
    (user,) = prod.by_type("gcp:sql/user:User")
    (database,) = prod.by_type("gcp:sql/database:Database")
    (password,) = [p for p in prod.by_type("random:index/randomPassword:RandomPassword") if p.name == "mlflow-db-password"]
    assert password.inputs["length"] >= 32
    assert user.inputs["password"] == SECRET
    assert user.inputs["name"] == "mlflow" and database.inputs["name"] == "mlflow"
    assert user.inputs["instance"] == database.inputs["instance"] and user.inputs["instance"].startswith("mlflow-db-instance-")
    assert "rootPassword" not in instance(prod).inputs
    (secret,) = [s for s in prod.by_type("kubernetes:core/v1:Secret") if s.name == "mlflow-backend-store"]
    assert secret.inputs["stringData"]["MLFLOW_BACKEND_STORE_URI"] == SECRET
