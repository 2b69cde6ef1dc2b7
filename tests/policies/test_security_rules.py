"""Each security guardrail passes a rendered resource and fails it with one property changed."""

from __future__ import annotations

import json

from mlops.offline.render import SECRET
from tests.policies.conftest import made, mutated, resource, verdicts

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RDS = "aws:rds/instance:Instance"


def bucket_with(prod_rendering, *types):
    return [resource(prod_rendering, BUCKET, "buckets-artifacts"), *(resource(prod_rendering, t, "buckets-artifacts") for t in types)]


def mlflow_container(inputs):
    return inputs["spec"]["template"]["spec"]["containers"][0]


# --- storage-encrypted-at-rest ---------------------------------------------------------------


def test_rendered_kms_encrypted_bucket_passes(prod_rendering):
    """The prod artifact bucket with its aws:kms encryption configuration is compliant."""
    assert verdicts("storage-encrypted-at-rest", bucket_with(prod_rendering, SSE)) == []


def test_bucket_without_encryption_configuration_fails(prod_rendering):
    """Dropping the bucket's encryption configuration is reported with the fix."""
    [finding] = verdicts("storage-encrypted-at-rest", bucket_with(prod_rendering))
    assert "buckets-artifacts has no server-side encryption configuration" in finding.message and "Fix:" in finding.message


def test_sse_s3_is_enough_in_dev_but_not_in_prod(prod_rendering):
    """AES256 (no customer-managed key) passes in dev and fails in prod."""
    bucket, sse = bucket_with(prod_rendering, SSE)
    aes = mutated(sse, lambda i: i["rules"][0]["applyServerSideEncryptionByDefault"].update(sseAlgorithm="AES256"))
    assert verdicts("storage-encrypted-at-rest", [bucket, aes], "dev") == []
    [finding] = verdicts("storage-encrypted-at-rest", [bucket, aes], "prod")
    assert "not a customer-managed KMS key" in finding.message and finding.level == "mandatory"


def test_unencrypted_rds_fails(prod_rendering):
    """An RDS instance with storageEncrypted false is reported."""
    db = resource(prod_rendering, RDS, "mlflow-db-instance")
    assert verdicts("storage-encrypted-at-rest", [db]) == []
    [finding] = verdicts("storage-encrypted-at-rest", [mutated(db, lambda i: i.update(storageEncrypted=False))])
    assert "storageEncrypted=False" in finding.message


# --- no-public-buckets -----------------------------------------------------------------------


def test_bucket_with_full_public_access_block_passes(prod_rendering):
    """The prod bucket with all four public-access switches on and a deny-only policy passes."""
    resources = bucket_with(prod_rendering, PAB, "aws:s3/bucketPolicy:BucketPolicy")
    assert verdicts("no-public-buckets", resources) == []


def test_public_access_block_with_a_switch_off_fails(prod_rendering):
    """Turning blockPublicPolicy off is reported by name."""
    bucket, block = bucket_with(prod_rendering, PAB)
    [finding] = verdicts("no-public-buckets", [bucket, mutated(block, lambda i: i.update(blockPublicPolicy=False))])
    assert "leaves blockPublicPolicy off" in finding.message


def test_bucket_policy_allowing_everyone_fails(prod_rendering):
    """An Allow statement for Principal '*' without a condition is public."""
    bucket, block, policy = bucket_with(prod_rendering, PAB, "aws:s3/bucketPolicy:BucketPolicy")
    document = {"Statement": [{"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    public = mutated(policy, lambda i: i.update(policy=json.dumps(document)))
    [finding] = verdicts("no-public-buckets", [bucket, block, public])
    assert "allows Principal '*'" in finding.message


def test_gcs_bucket_rules():
    """A GCS bucket must enforce public access prevention and uniform access."""
    private = made("gcp:storage/bucket:Bucket", "artifacts", {"publicAccessPrevention": "enforced", "uniformBucketLevelAccess": True})
    public = made("gcp:storage/bucket:Bucket", "artifacts", {"publicAccessPrevention": "inherited", "uniformBucketLevelAccess": True})
    assert verdicts("no-public-buckets", [private]) == []
    [finding] = verdicts("no-public-buckets", [public])
    assert "publicAccessPrevention='inherited'" in finding.message


# --- cluster-api-not-public ------------------------------------------------------------------


def test_private_eks_endpoint_passes(prod_rendering):
    """The prod EKS cluster serves its API privately only."""
    assert verdicts("cluster-api-not-public", [resource(prod_rendering, "aws:eks/cluster:Cluster", "eks-control-plane")]) == []


def test_public_eks_endpoint_open_to_the_internet_fails(prod_rendering):
    """A public endpoint with no allow-list is open to 0.0.0.0/0: mandatory in prod, advisory in dev."""
    cluster = mutated(resource(prod_rendering, "aws:eks/cluster:Cluster", "eks-control-plane"),
                      lambda i: i["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]))
    [finding] = verdicts("cluster-api-not-public", [cluster])
    assert finding.level == "mandatory" and "0.0.0.0/0" in finding.message
    assert [f.level for f in verdicts("cluster-api-not-public", [cluster], "dev")] == ["advisory"]


def test_gke_cluster_with_authorized_networks_passes_and_open_fails():
    """GKE: listed office CIDRs pass, 0.0.0.0/0 fails."""
    def gke(cidr):
        return made("gcp:container/cluster:Cluster", "gke", {"masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": cidr}]}})
    assert verdicts("cluster-api-not-public", [gke("203.0.113.0/24")]) == []
    assert len(verdicts("cluster-api-not-public", [gke("0.0.0.0/0")])) == 1


# --- no-static-cloud-credentials -------------------------------------------------------------


def test_workload_identity_deployment_passes_and_access_key_fails(prod_rendering):
    """IRSA-bound MLflow passes; an IAM access key resource fails."""
    assert verdicts("no-static-cloud-credentials", [resource(prod_rendering, DEPLOYMENT, "mlflow-server")]) == []
    [finding] = verdicts("no-static-cloud-credentials", [made("aws:iam/accessKey:AccessKey", "ci-key", {"user": "ci"})])
    assert "creates an IAM access key" in finding.message and finding.level == "mandatory"


def test_literal_credential_in_container_env_fails(prod_rendering):
    """A container with AWS_SECRET_ACCESS_KEY as a literal value is reported."""
    deployment = mutated(resource(prod_rendering, DEPLOYMENT, "mlflow-server"),
                         lambda i: mlflow_container(i)["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}))
    [finding] = verdicts("no-static-cloud-credentials", [deployment])
    assert "sets AWS_SECRET_ACCESS_KEY to a literal value" in finding.message


# --- container hardening ---------------------------------------------------------------------


def test_rendered_mlflow_deployment_is_hardened(prod_rendering):
    """The rendered MLflow Deployment passes every container rule."""
    deployment = resource(prod_rendering, DEPLOYMENT, "mlflow-server")
    for rule in ("container-runs-as-non-root", "container-no-privilege-escalation",
                 "container-read-only-root-filesystem", "container-resource-limits"):
        assert verdicts(rule, [deployment]) == [], rule


def test_root_container_fails(prod_rendering):
    """runAsUser 0 is reported by container-runs-as-non-root."""
    deployment = mutated(resource(prod_rendering, DEPLOYMENT, "mlflow-server"),
                         lambda i: mlflow_container(i)["securityContext"].update(runAsUser=0))
    [finding] = verdicts("container-runs-as-non-root", [deployment])
    assert "container mlflow runs as runAsUser 0" in finding.message


def test_privilege_escalation_fails(prod_rendering):
    """allowPrivilegeEscalation unset (Kubernetes defaults it to true) is reported."""
    deployment = mutated(resource(prod_rendering, DEPLOYMENT, "mlflow-server"),
                         lambda i: mlflow_container(i)["securityContext"].pop("allowPrivilegeEscalation"))
    [finding] = verdicts("container-no-privilege-escalation", [deployment])
    assert "allowPrivilegeEscalation: false" in finding.message


def test_writable_root_filesystem_fails_unless_exempted_with_a_reason(prod_rendering):
    """A writable root fs fails; the exemption annotation turns it into an 'exempt' verdict carrying the reason."""
    writable = mutated(resource(prod_rendering, DEPLOYMENT, "mlflow-server"),
                       lambda i: mlflow_container(i)["securityContext"].update(readOnlyRootFilesystem=False))
    [finding] = verdicts("container-read-only-root-filesystem", [writable])
    assert finding.level == "mandatory" and "writable root filesystem" in finding.message
    reason = "writes its lock file under /var/run"
    exempted = mutated(writable, lambda i: i["metadata"].setdefault("annotations", {}).update(
        {"policy.mlops.platform/exempt-container-read-only-root-filesystem": reason}))
    [exemption] = verdicts("container-read-only-root-filesystem", [exempted])
    assert (exemption.level, exemption.message) == ("exempt", reason)


def test_missing_limits_fail(prod_rendering):
    """A container without limits is reported with the missing keys."""
    deployment = mutated(resource(prod_rendering, DEPLOYMENT, "mlflow-server"),
                         lambda i: mlflow_container(i)["resources"].pop("limits"))
    [finding] = verdicts("container-resource-limits", [deployment])
    assert "has no limits.cpu, limits.memory" in finding.message


# --- image-pinned ----------------------------------------------------------------------------


def test_digest_pinned_image_passes_and_tag_only_fails_in_prod(dev_rendering):
    """The object store image (tag + digest) passes in prod; the same image by tag only fails in prod, passes in dev."""
    server = resource(dev_rendering, DEPLOYMENT, "object-store-server")
    assert verdicts("image-pinned", [server], "prod") == []
    tag_only = mutated(server, lambda i: mlflow_container(i).update(image=mlflow_container(i)["image"].split("@")[0]))
    assert verdicts("image-pinned", [tag_only], "dev") == []
    [finding] = verdicts("image-pinned", [tag_only], "prod")
    assert "pinned by tag only; prod needs a digest" in finding.message


def test_latest_tag_fails_everywhere(dev_rendering):
    """':latest' is reported in dev too (advisory there)."""
    latest = mutated(resource(dev_rendering, DEPLOYMENT, "object-store-server"),
                     lambda i: mlflow_container(i).update(image="quay.io/minio/minio:latest"))
    [finding] = verdicts("image-pinned", [latest], "dev")
    assert finding.level == "advisory" and "moving tag 'latest'" in finding.message


# --- secrets-are-pulumi-secrets --------------------------------------------------------------


def test_secret_data_from_pulumi_secrets_passes_and_plain_text_fails(dev_rendering):
    """The rendered object-store credentials are all secrets; one plain-text key is reported by name."""
    secret = resource(dev_rendering, "kubernetes:core/v1:Secret", "object-store-credentials")
    assert set(secret.inputs["stringData"].values()) == {SECRET}
    assert verdicts("secrets-are-pulumi-secrets", [secret]) == []
    leaked = mutated(secret, lambda i: i["stringData"].update(AWS_SECRET_ACCESS_KEY="hunter2"))
    [finding] = verdicts("secrets-are-pulumi-secrets", [leaked])
    assert "['AWS_SECRET_ACCESS_KEY'] are plain text" in finding.message


def test_plain_database_password_fails(prod_rendering):
    """An RDS password that is not a Pulumi secret is reported."""
    db = resource(prod_rendering, RDS, "mlflow-db-instance")
    assert verdicts("secrets-are-pulumi-secrets", [db]) == []
    assert len(verdicts("secrets-are-pulumi-secrets", [mutated(db, lambda i: i.update(password="plain"))])) == 1


# --- database-backups-enabled / database-deletion-protection ---------------------------------


def test_backups_on_pass_and_off_fail(prod_rendering):
    """backupRetentionPeriod 14 passes; 0 (no automated backups) fails."""
    db = resource(prod_rendering, RDS, "mlflow-db-instance")
    assert verdicts("database-backups-enabled", [db]) == []
    [finding] = verdicts("database-backups-enabled", [mutated(db, lambda i: i.update(backupRetentionPeriod=0))])
    assert "backupRetentionPeriod=0" in finding.message


def test_cloud_sql_needs_point_in_time_recovery_in_prod():
    """Cloud SQL with backups but no PITR passes in dev and fails in prod."""
    sql = made("gcp:sql/databaseInstance:DatabaseInstance", "db", {"settings": {"backupConfiguration": {"enabled": True}}})
    assert verdicts("database-backups-enabled", [sql], "dev") == []
    assert "point-in-time recovery" in verdicts("database-backups-enabled", [sql], "prod")[0].message


def test_deletion_protection_is_required_in_prod_only(prod_rendering):
    """deletionProtection false fails in prod; the rule is disabled in dev."""
    db = resource(prod_rendering, RDS, "mlflow-db-instance")
    assert verdicts("database-deletion-protection", [db]) == []
    unprotected = mutated(db, lambda i: i.update(deletionProtection=False))
    [finding] = verdicts("database-deletion-protection", [unprotected], "prod")
    assert "deletionProtection=False" in finding.message
    assert verdicts("database-deletion-protection", [unprotected], "dev") == []
