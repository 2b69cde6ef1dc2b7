"""Structural diff of two renderings: what a `pulumi preview` of the change would show.

Resources are matched by URN. A resource whose inputs or options changed is an update, or a
replace when a property that its provider cannot change in place changed (the table below lists
the ones this platform sets; it is deliberately conservative, like Pulumi's own `replaceOnChanges`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["create", "delete", "replace", "update"]

# Property paths (prefixes) whose change forces replacement, by type-token prefix.
REPLACE_ON: dict[str, tuple[str, ...]] = {
    "kubernetes:": ("apiVersion", "kind", "metadata.name", "metadata.namespace"),
    "kubernetes:apps/v1:Deployment": ("spec.selector",),
    "kubernetes:apps/v1:StatefulSet": ("spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"),
    "kubernetes:batch/v1:Job": ("spec.template", "spec.selector"),
    "kubernetes:core/v1:PersistentVolumeClaim": ("spec.storageClassName", "spec.accessModes"),
    "aws:eks/cluster:Cluster": ("name", "vpcConfig.subnetIds", "encryptionConfig"),
    "aws:eks/nodeGroup:NodeGroup": ("nodeGroupName", "amiType", "capacityType", "instanceTypes", "subnetIds"),
    "aws:rds/instance:Instance": ("identifier", "engine", "dbSubnetGroupName", "kmsKeyId", "storageEncrypted"),
    "aws:s3/bucket": ("bucket",),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "gcp:container/cluster:Cluster": ("name", "location", "network", "subnetwork", "privateClusterConfig"),
    "gcp:container/nodePool:NodePool": ("name", "location", "nodeConfig", "cluster"),
    "gcp:sql/databaseInstance:DatabaseInstance": ("name", "region", "databaseVersion"),
    "gcp:storage/bucket:Bucket": ("name", "location"),
    # pulumi-random replaces on any input change; keepers exist to force exactly that (API key rotation).
    "random:index/randomPassword:RandomPassword": ("keepers", "length", "special"),
}

MAX_VALUE_CHARS = 120


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ResourceChange:
    op: Op
    urn: str
    type: str
    name: str
    properties: tuple[PropertyChange, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "properties": [p.as_json() for p in self.properties],
        }


@dataclass
class RenderDiff:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    unchanged: int = 0
    outputs: tuple[PropertyChange, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.outputs)

    def summary(self) -> dict[str, int]:
        counts = {op: 0 for op in ("create", "update", "replace", "delete")}
        for change in self.changes:
            counts[change.op] += 1
        return {**counts, "same": self.unchanged}

    def to_json(self) -> str:
        return json.dumps(
            {
                "stack": self.stack,
                "summary": self.summary(),
                "changes": [c.as_json() for c in self.changes],
                "outputs": [o.as_json() for o in self.outputs],
            },
            indent=2,
            sort_keys=True,
        )

    def to_markdown(self) -> str:
        lines = [f"### Stack `{self.stack}`", ""]
        if not self.changed:
            lines.append(f"No changes ({self.unchanged} resources unchanged).")
            return "\n".join(lines) + "\n"
        counts = self.summary()
        lines += [
            "| create | update | replace | delete | unchanged |",
            "|---:|---:|---:|---:|---:|",
            f"| {counts['create']} | {counts['update']} | {counts['replace']} | {counts['delete']} | {counts['same']} |",
            "",
        ]
        symbols = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
        for change in self.changes:
            lines.append(f"- `{symbols[change.op]}` **{change.op}** `{change.type}` `{change.name}`")
            if change.op in ("update", "replace") and change.properties:
                lines += ["", "  | property | before | after |", "  |---|---|---|"]
                for prop in change.properties:
                    lines.append(f"  | `{prop.path}` | {_cell(prop.before)} | {_cell(prop.after)} |")
                lines.append("")
        if self.outputs:
            lines += ["", "**Outputs**", "", "| output | before | after |", "|---|---|---|"]
            lines += [f"| `{o.path}` | {_cell(o.before)} | {_cell(o.after)} |" for o in self.outputs]
        return "\n".join(lines).rstrip() + "\n"


def diff_renderings(base: dict[str, Any] | None, head: dict[str, Any]) -> RenderDiff:
    """Compare two `state.json` documents; `base` None means the stack did not exist before."""
    base_resources = {r["urn"]: r for r in (base or {}).get("resources", [])}
    head_resources = {r["urn"]: r for r in head.get("resources", [])}
    result = RenderDiff(stack=head.get("stack", "?"))
    for urn in sorted(base_resources.keys() | head_resources.keys()):
        before, after = base_resources.get(urn), head_resources.get(urn)
        if before is None:
            result.changes.append(ResourceChange("create", urn, after["type"], after["name"]))
        elif after is None:
            result.changes.append(ResourceChange("delete", urn, before["type"], before["name"]))
        else:
            properties = tuple(_property_changes(before, after))
            if not properties:
                result.unchanged += 1
                continue
            op: Op = "replace" if _forces_replacement(after["type"], properties) else "update"
            result.changes.append(ResourceChange(op, urn, after["type"], after["name"], properties))
    result.outputs = tuple(
        PropertyChange(path, old, new)
        for path, old, new in _flat_changes((base or {}).get("outputs", {}), head.get("outputs", {}))
    )
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    result.changes.sort(key=lambda c: (order[c.op], c.type, c.name))
    return result


def _property_changes(before: dict[str, Any], after: dict[str, Any]) -> list[PropertyChange]:
    changes = [PropertyChange(p, o, n) for p, o, n in _flat_changes(before["inputs"], after["inputs"])]
    changes += [
        PropertyChange(f"[options].{p}", o, n) for p, o, n in _flat_changes(before["options"], after["options"])
    ]
    if before.get("parent") != after.get("parent"):
        changes.append(PropertyChange("[parent]", before.get("parent"), after.get("parent")))
    return changes


def _flat_changes(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(before.keys() | after.keys()):
            child = f"{path}.{key}" if path else str(key)
            if key not in after:
                changes.append((child, before[key], None))
            elif key not in before:
                changes.append((child, None, after[key]))
            else:
                changes += _flat_changes(before[key], after[key], child)
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (old, new) in enumerate(zip(before, after)):
            changes += _flat_changes(old, new, f"{path}[{index}]")
        return changes
    return [] if before == after else [(path, before, after)]


def _forces_replacement(type_token: str, properties: tuple[PropertyChange, ...]) -> bool:
    prefixes = [p for token, paths in REPLACE_ON.items() if type_token.startswith(token) for p in paths]
    return any(
        prop.path == prefix or prop.path.startswith((prefix + ".", prefix + "["))
        for prop in properties
        for prefix in prefixes
    )


def _cell(value: Any) -> str:
    if value is None:
        return "_(unset)_"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"
