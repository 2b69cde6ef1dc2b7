"""In-cluster platform services: namespaces, cert-manager, Knative, KServe, MLflow, monitoring, the payload collector."""
