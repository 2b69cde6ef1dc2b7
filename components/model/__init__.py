"""One model deployment and its parts: the InferenceService, its access grants and its observability."""
