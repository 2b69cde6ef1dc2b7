"""Lookups across a whole stack for stack-level rules."""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import PolicyResource


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def attached_to(target: PolicyResource, resources: Iterable[PolicyResource], resource_type: str) -> list[PolicyResource]:
    """Resources of `resource_type` that depend on `target` (e.g. a bucket's encryption config)."""
    return [
        r
        for r in resources
        if r.resource_type == resource_type
        and any(dependency.urn == target.urn for dependency in [*r.dependencies, *_property_dependencies(r)])
    ]


def _property_dependencies(resource: PolicyResource) -> list[PolicyResource]:
    return [d for deps in resource.property_dependencies.values() for d in deps]
