"""Canary gates: the PromQL that judges a canary and its evaluation against Prometheus (stdlib only)."""
