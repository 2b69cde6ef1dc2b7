"""Reusable ComponentResources: per-cloud foundations, in-cluster platform services, model deployments."""
