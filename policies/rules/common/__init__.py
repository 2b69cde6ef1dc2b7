"""What the guardrails share: environments and levels, Kubernetes pod specs, stack lookups.

Only relative imports inside `policies/rules`: Pulumi runs the pack with `policies/` (not the
repository root) on `sys.path`, so the package is `rules` there and `policies.rules` in tests.
"""
