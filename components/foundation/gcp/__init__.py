"""The GCP foundation: VPC, GKE and its node pools, GCS buckets, Cloud SQL, Workload Identity, registry."""
