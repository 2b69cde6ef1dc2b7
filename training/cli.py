"""The training Job's entrypoint: settings -> data -> train and decide -> exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from monitoring.drift_job.status import EXIT_CODES, EXIT_CONFIG_ERROR, EXIT_ERROR, EXIT_OK, DriftJobFailure
from monitoring.env_settings import SettingsError
from training.config import load_config

EXIT_REFUSED = 9
LOG = logging.getLogger("training")


def main(environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environ = os.environ if environ is None else environ
    try:
        config = load_config(environ)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    # Imported after the settings: mlflow and scikit-learn take seconds to import.
    from mlflow.exceptions import MlflowException

    from training.data import load_training_data
    from training.run import train_and_decide

    try:
        outcome = train_and_decide(config, load_training_data(config))
    except DriftJobFailure as failure:
        LOG.error("training of %s failed with status %s: %s", config.model, failure.status.value, failure.message)
        return EXIT_CODES[failure.status]
    except ValueError as error:
        LOG.error("training of %s stopped: %s", config.model, error)
        return EXIT_CONFIG_ERROR
    except MlflowException as error:
        LOG.error("training of %s failed talking to MLflow at %s: %s", config.model, environ.get("MLFLOW_TRACKING_URI"), error.message)
        return EXIT_ERROR
    if config.summary_path:
        Path(config.summary_path).write_text(json.dumps(outcome.as_json(), indent=2) + "\n")
    if not outcome.accepted:
        LOG.warning("candidate of %s refused (run %s): %s", config.model, outcome.run_id, outcome.reason)
        return EXIT_REFUSED
    LOG.info("registered %s version %s as %s (run %s): %s", config.model, outcome.version, config.challenger_alias, outcome.run_id, outcome.reason)
    return EXIT_OK
