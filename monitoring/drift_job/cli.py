"""The drift CronJob's entrypoint: settings -> run -> push -> retraining webhook -> exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from monitoring.drift_job.config import ConfigError, DriftJobConfig, load_config
from monitoring.drift_job.job import CompletedRun, run_drift
from monitoring.drift_job.push import PushFailed, push_failure, push_results
from monitoring.drift_job.status import (
    EXIT_CODES,
    EXIT_CONFIG_ERROR,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PUSH_FAILED,
    EXIT_WEBHOOK_FAILED,
    DriftJobFailure,
    JobStatus,
)
from monitoring.drift_job.results import DriftResult
from monitoring.drift_job.retrain import push_trigger_outcome, trigger_retraining
from monitoring.drift_job.webhook import WebhookFailed, should_retrain

LOG = logging.getLogger("monitoring.drift_job")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(argv, os.environ if environ is None else environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    now = datetime.now(timezone.utc)
    try:
        completed = run_drift(config, now)
    except DriftJobFailure as failure:
        LOG.error("drift run of %s %s failed with status %s: %s", config.model, config.model_version, failure.status.value, failure.message)
        return _record_failure(config, failure.status, now, EXIT_CODES[failure.status])
    except ConfigError as error:
        LOG.error("drift run of %s %s stopped: %s", config.model, config.model_version, error)
        return _record_failure(config, JobStatus.ERROR, now, EXIT_CONFIG_ERROR)
    except Exception:
        # Whatever went wrong, the Pushgateway must learn that this run produced no verdict,
        # or the dashboards would keep showing the previous run as current.
        LOG.exception("drift run of %s %s failed unexpectedly", config.model, config.model_version)
        return _record_failure(config, JobStatus.ERROR, now, EXIT_ERROR)
    return _deliver(config, completed, now)


def _deliver(config: DriftJobConfig, completed: CompletedRun, now: datetime) -> int:
    result = completed.result
    LOG.info("drift of %s %s: %s; reports %s, %s", result.model, result.version, json.dumps(result.summary()),
             completed.report.json_uri, completed.report.html_uri)
    try:
        push_results(config.pushgateway, result, now)
    except PushFailed as error:
        LOG.error("%s", error)
        return EXIT_PUSH_FAILED
    if not should_retrain(config.retrain_policy, result):
        return EXIT_OK
    try:
        triggered = trigger_retraining(config, result, completed.report.json_uri)
    except WebhookFailed as error:
        LOG.error("%s", error)
        _record_trigger(config, result, "failed", now)
        _record_failure(config, JobStatus.ERROR, now, EXIT_WEBHOOK_FAILED)
        return EXIT_WEBHOOK_FAILED
    LOG.info("retraining of %s %s triggered (policy %s): %s", result.model, result.version, config.retrain_policy.value, triggered.detail)
    _record_trigger(config, result, triggered.outcome, now)
    return EXIT_OK


def _record_trigger(config: DriftJobConfig, result: DriftResult, outcome: str, now: datetime) -> None:
    try:
        push_trigger_outcome(config.pushgateway, result, outcome, now)
    except PushFailed as error:
        LOG.error("%s (the retraining trigger's outcome %s is only in this log)", error, outcome)


def _record_failure(config: DriftJobConfig, status: JobStatus, now: datetime, exit_code: int) -> int:
    try:
        push_failure(config.pushgateway, config.model, config.model_version, status, now)
    except PushFailed as error:
        LOG.error("%s (the run's status %s is only in this log)", error, status.value)
    return exit_code
