"""The platform's guardrails, one module per rule; `POLICIES` is what the pack serves.

Security: storage encryption, public buckets, cluster API exposure, static credentials,
container hardening (non-root, no escalation, read-only root, limits), pinned images, secrets,
authentication on public model routes and a login in front of the UIs on the gateway.
MLOps: monitoring, rollback path, retraining strategy, canary in prod, GPU placement.
Cost: GPU pool size and GPUs per model capped by `mlops:limits`; every team namespace's quota caps GPUs.
"""

from __future__ import annotations

from . import (
    cluster_api_not_public,
    container_no_privilege_escalation,
    container_read_only_root_filesystem,
    container_resource_limits,
    container_runs_as_non_root,
    database_backups_enabled,
    database_deletion_protection,
    gpu_pool_size_capped,
    gpu_pool_tainted,
    gpu_workload_on_gpu_pool,
    gpus_per_model_capped,
    image_pinned,
    model_canary_in_prod,
    model_has_monitoring,
    model_has_retraining_strategy,
    model_has_rollback_path,
    no_public_buckets,
    no_static_cloud_credentials,
    public_model_requires_auth,
    secrets_are_pulumi_secrets,
    storage_encrypted_at_rest,
    team_quota_caps_gpus,
    ui_behind_login,
)
from .common.guardrail import Guardrail

GUARDRAILS: tuple[Guardrail, ...] = tuple(
    module.GUARDRAIL
    for module in (
        storage_encrypted_at_rest,
        no_public_buckets,
        cluster_api_not_public,
        no_static_cloud_credentials,
        container_runs_as_non_root,
        container_no_privilege_escalation,
        container_read_only_root_filesystem,
        container_resource_limits,
        image_pinned,
        secrets_are_pulumi_secrets,
        public_model_requires_auth,
        ui_behind_login,
        database_backups_enabled,
        database_deletion_protection,
        model_has_monitoring,
        model_has_rollback_path,
        model_has_retraining_strategy,
        model_canary_in_prod,
        gpu_pool_tainted,
        gpu_workload_on_gpu_pool,
        gpu_pool_size_capped,
        gpus_per_model_capped,
        team_quota_caps_gpus,
    )
)
POLICIES = [guardrail.policy for guardrail in GUARDRAILS]
