"""The local foundation: an in-cluster S3 server and PostgreSQL on an existing kubeconfig context."""
