"""database-backups-enabled: the MLflow backend store (registry, runs) is backed up.

RDS: `backupRetentionPeriod` >= 1 (0 disables automated backups). Cloud SQL:
`settings.backupConfiguration.enabled` and, in prod, point-in-time recovery.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, environment_of, resource_guardrail, violation
from .common.kubernetes import dig

TEXT = RuleText(
    name="database-backups-enabled",
    description="Databases keep automated backups (and point-in-time recovery on Cloud SQL in prod).",
    remediation="Set mlops:database.backupRetentionDays >= 1 and keep backups enabled in the database component.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
        retention = args.props.get("backupRetentionPeriod")
        if not isinstance(retention, (int, float)) or retention < 1:
            report(violation(f"RDS {args.name} has backupRetentionPeriod={retention!r}", TEXT.remediation))
    elif args.resource_type == "gcp:sql/databaseInstance:DatabaseInstance":
        backup = dig(args.props, "settings", "backupConfiguration") or {}
        if backup.get("enabled") is not True:
            report(violation(f"Cloud SQL {args.name} has backups disabled", TEXT.remediation))
        elif environment_of(args) == "prod" and backup.get("pointInTimeRecoveryEnabled") is not True:
            report(violation(f"Cloud SQL {args.name} has no point-in-time recovery in prod", "set settings.backupConfiguration.pointInTimeRecoveryEnabled=True"))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
