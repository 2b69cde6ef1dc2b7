"""Day-2 operations on stack files: model declarations, canary analysis and promotion, rollback, history."""
