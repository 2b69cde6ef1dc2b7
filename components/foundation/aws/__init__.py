"""The AWS foundation: network, EKS, node groups, buckets, database, workload identity, registries."""
