"""The batch scoring CronJob's entrypoint: settings -> model -> partitions -> push -> exit code."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping

from batch.config import BatchConfig, load_config
from batch.push import PushFailed, RunSummary, push_summary
from monitoring.drift_job.status import (
    EXIT_CODES,
    EXIT_CONFIG_ERROR,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PUSH_FAILED,
    DriftJobFailure,
    JobStatus,
)
from monitoring.env_settings import SettingsError

LOG = logging.getLogger("batch")


def main(environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(os.environ if environ is None else environ)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        summary = score_all(config)
    except DriftJobFailure as failure:
        LOG.error("batch scoring of %s failed with status %s: %s", config.model_uri, failure.status.value, failure.message)
        return _deliver(config, RunSummary(0, 0.0, 0, 0, 0, failure.status.value), EXIT_CODES[failure.status])
    return _deliver(config, summary, EXIT_OK if summary.failed == 0 else EXIT_ERROR)


def score_all(config: BatchConfig) -> RunSummary:
    # Imported here: mlflow takes seconds to import, and bad settings should fail at once.
    from mlflow.exceptions import MlflowException

    from batch.partitions import is_scored, list_partitions
    from batch.scoring import ScoringModel, score_partition
    from monitoring.drift_job.status import MissingData
    from monitoring.drift_job.storage import Location

    source, target = Location.of(config.input), Location.of(config.output)
    partitions = list_partitions(source)
    pending = [p for p in partitions if not is_scored(target, p)]
    LOG.info("%s: %d partition(s) under %s, %d not scored yet", config.model_uri, len(partitions), config.input, len(pending))
    if not pending:
        return RunSummary(0, 0.0, 0, len(partitions), 0, JobStatus.OK.value)
    try:
        model = ScoringModel.load(config.model_uri, config.model_version)
    except MlflowException as error:
        raise MissingData(f"cannot load {config.model_uri} from MLflow: {error.message}") from error
    rows, seconds, failed = 0, 0.0, 0
    for partition in pending:
        try:
            result = score_partition(model, source, target, partition, config.chunk_rows, config.prediction_column)
        except DriftJobFailure:
            raise
        except Exception:
            # One bad partition must not lose the others: they are scored and marked, and the
            # Job's retry (or the next schedule) retries only this one.
            LOG.exception("partition %s of %s failed", partition.name, config.input)
            failed += 1
            continue
        rows, seconds = rows + result.rows, seconds + result.seconds
        LOG.info("scored partition %s: %d rows in %.1f s", partition.name, result.rows, result.seconds)
    status = JobStatus.OK if failed == 0 else JobStatus.ERROR
    return RunSummary(rows, seconds, len(pending) - failed, len(partitions) - len(pending), failed, status.value)


def _deliver(config: BatchConfig, summary: RunSummary, exit_code: int) -> int:
    LOG.info("%s: %d rows at %.0f rows/s; partitions scored %d, skipped %d, failed %d", config.model_uri, summary.rows,
             summary.rows_per_second, summary.scored, summary.skipped, summary.failed)  # fmt: skip
    try:
        push_summary(config.pushgateway, config.model, config.model_version, summary, time.time())
    except PushFailed as error:
        LOG.error("%s", error)
        return EXIT_PUSH_FAILED if exit_code == EXIT_OK else exit_code
    return exit_code
