"""secrets-are-pulumi-secrets: credentials travel only as Pulumi secrets.

Every value of a Kubernetes Secret's `data`/`stringData`, and every database password, must be a
Pulumi secret, so it is encrypted in state and masked in previews and logs.

Where it runs. pulumi-policy's analyzer unwraps secrets before a validator sees them, so a
`pulumi preview --policy-pack` cannot tell a secret from plain text: there the rule reports
itself not applicable. The offline runner (`mlops validate`, `mlops preview`) renders every
secret as a marker and passes the marker in the policy config, so the check runs there, on
every pull request.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import MANDATORY, SECRET_MARKER_KEY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import SECRET, describe

PASSWORD_FIELDS = {
    "aws:rds/instance:Instance": ("password",),
    "aws:rds/cluster:Cluster": ("masterPassword",),
    "gcp:sql/user:User": ("password",),
    "gcp:sql/databaseInstance:DatabaseInstance": ("rootPassword",),
}

TEXT = RuleText(
    name="secrets-are-pulumi-secrets",
    description="Secret values (Kubernetes Secret data, database passwords) are Pulumi secrets, never plain text.",
    remediation="Wrap the value in pulumi.Output.secret(...), take it from a RandomPassword, or set it with `pulumi config set --secret`.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    marker = args.get_config().get(SECRET_MARKER_KEY)
    if not marker:
        args.not_applicable("the analyzer receives secrets unwrapped; this rule runs offline in `mlops validate`")
        return
    if args.resource_type == SECRET:
        for section in ("data", "stringData"):
            plain = sorted(key for key, value in (args.props.get(section) or {}).items() if value != marker)
            if plain:
                report(violation(f"{describe(args.resource_type, args.props, args.name)} {section} keys {plain} are plain text", TEXT.remediation))
    for field in PASSWORD_FIELDS.get(args.resource_type, ()):
        value = args.props.get(field)
        if value not in (None, marker):
            report(violation(f"{args.resource_type.rsplit(':', 1)[-1]} {args.name} sets {field} in plain text", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=MANDATORY, prod=MANDATORY)
