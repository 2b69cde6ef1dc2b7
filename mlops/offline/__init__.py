"""The offline engine: render under Pulumi mocks, validate, diff, preview, cost, policies and the security scan."""
