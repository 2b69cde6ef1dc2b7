"""How a drift run ends: the status pushed as `mlops_drift_job_status{status=...}` and the exit code."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    OK = "ok"
    MISSING_DATA = "missing_data"
    SCHEMA_MISMATCH = "schema_mismatch"
    EMPTY_WINDOW = "empty_window"
    ERROR = "error"


EXIT_OK = 0
EXIT_CONFIG_ERROR = 2
EXIT_MISSING_DATA = 3
EXIT_SCHEMA_MISMATCH = 4
EXIT_EMPTY_WINDOW = 5
EXIT_ERROR = 6
EXIT_WEBHOOK_FAILED = 7
EXIT_PUSH_FAILED = 8

EXIT_CODES = {
    JobStatus.OK: EXIT_OK,
    JobStatus.MISSING_DATA: EXIT_MISSING_DATA,
    JobStatus.SCHEMA_MISMATCH: EXIT_SCHEMA_MISMATCH,
    JobStatus.EMPTY_WINDOW: EXIT_EMPTY_WINDOW,
    JobStatus.ERROR: EXIT_ERROR,
}


class DriftJobFailure(Exception):
    """A run that cannot produce a drift verdict; `status` says why (never reported as "no drift")."""

    status = JobStatus.ERROR

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MissingData(DriftJobFailure):
    status = JobStatus.MISSING_DATA


class SchemaMismatch(DriftJobFailure):
    status = JobStatus.SCHEMA_MISMATCH


class EmptyWindow(DriftJobFailure):
    status = JobStatus.EMPTY_WINDOW
