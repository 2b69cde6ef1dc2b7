"""database-deletion-protection: a prod database cannot be deleted by one command.

Prod only (dev databases are meant to be thrown away): RDS `deletionProtection` on and a final
snapshot on deletion; Cloud SQL `deletionProtection` (Pulumi side) and
`settings.deletionProtectionEnabled` (API side).
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import DISABLED, MANDATORY, Report, RuleText, environment_of, resource_guardrail, violation
from .common.kubernetes import dig

TEXT = RuleText(
    name="database-deletion-protection",
    description="Prod databases have deletion protection on and keep a final snapshot.",
    remediation="Set mlops:database.deletionProtection: true in the prod stack (the component also keeps a final snapshot).",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if environment_of(args) != "prod":
        return
    if args.resource_type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
        if args.props.get("deletionProtection") is not True:
            report(violation(f"RDS {args.name} has deletionProtection={args.props.get('deletionProtection')!r}", TEXT.remediation))
        if args.props.get("skipFinalSnapshot") is True:
            report(violation(f"RDS {args.name} skips its final snapshot", "set skipFinalSnapshot=False with a finalSnapshotIdentifier"))
    elif args.resource_type == "gcp:sql/databaseInstance:DatabaseInstance":
        if args.props.get("deletionProtection") is False or dig(args.props, "settings", "deletionProtectionEnabled") is not True:
            report(violation(f"Cloud SQL {args.name} is not deletion-protected", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=DISABLED, prod=MANDATORY)
