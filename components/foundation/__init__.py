"""Foundations: what each target (AWS, GCP, an existing local cluster) gives the platform: cluster, network, pools, stores, identities."""
