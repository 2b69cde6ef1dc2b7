"""Settings of the training and batch scoring Jobs, and the candidate-vs-champion decision.

Bad settings are one line each naming the variable, its value and what is allowed, exit 2, no
traceback; the decision compares on the declared metric with the declared margin, in the metric's
own direction.
"""

from __future__ import annotations

import pytest

from batch.cli import main as batch_main
from batch.config import load_config as load_batch_config
from monitoring.env_settings import SettingsError
from training.cli import main as training_main
from training.config import load_config as load_training_config
from training.evaluation import decide, score

VALID_TRAINING = {
    "TRAINING_MODEL": "fraud-detector", "TRAINING_TASK": "classification", "TRAINING_METRIC": "f1",
    "TRAINING_DATA": "s3://data/training/", "MLFLOW_TRACKING_URI": "http://mlflow:5000",
}  # fmt: skip


def test_training_settings_come_from_the_rendered_variables():
    config = load_training_config({**VALID_TRAINING, "TRAINING_MARGIN": "0.01", "TRAINING_SERVED_VERSION": "7"})
    assert (config.model, config.metric, config.margin, config.served_version, config.experiment_name) == ("fraud-detector", "f1", 0.01, "7", "fraud-detector")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TRAINING_METRIC": "rmse"}, "TRAINING_METRIC='rmse' is a regression metric but TRAINING_TASK='classification'"),
        ({"TRAINING_MARGIN": "-1"}, "TRAINING_MARGIN='-1': must be 0 or more"),
        ({"TRAINING_DATA": "", "TRAINING_PAYLOAD_ROOT": "s3://p"}, "TRAINING_PAYLOAD_ROOT and TRAINING_LABELS go together"),
        ({"TRAINING_DATA": ""}, "set TRAINING_DATA, or TRAINING_PAYLOAD_ROOT with TRAINING_LABELS"),
        ({"TRAINING_HOLDOUT_FRACTION": "1"}, "TRAINING_HOLDOUT_FRACTION='1': must be a fraction strictly between 0 and 1"),
        ({"MLFLOW_TRACKING_URI": ""}, "MLFLOW_TRACKING_URI is required"),
    ],
)
def test_bad_training_settings_are_named(overrides, message):
    with pytest.raises(SettingsError, match="invalid training settings") as refused:
        load_training_config({**VALID_TRAINING, **overrides})
    assert message in str(refused.value)


def test_training_entrypoint_exits_2_listing_every_missing_variable(capsys):
    assert training_main({}) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(f"  - {variable} is required" in err for variable in ("TRAINING_MODEL", "TRAINING_TASK", "TRAINING_METRIC"))


def test_batch_output_inside_its_input_is_refused(capsys):
    environ = {"BATCH_MODEL": "m", "BATCH_MODEL_VERSION": "3", "BATCH_INPUT": "s3://b/in", "BATCH_OUTPUT": "s3://b/in/scored",
               "BATCH_PUSHGATEWAY": "http://pg:9091", "MLFLOW_TRACKING_URI": "http://mlflow:5000"}  # fmt: skip
    with pytest.raises(SettingsError, match="BATCH_OUTPUT='s3://b/in/scored' is inside BATCH_INPUT='s3://b/in'"):
        load_batch_config(environ)
    assert batch_main({**environ, "BATCH_CHUNK_ROWS": "0"}) == 2
    assert "BATCH_CHUNK_ROWS='0': must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("metric", "margin", "candidate", "champion", "accepted"),
    [
        ("accuracy", 0.0, 0.90, 0.90, True),
        ("accuracy", 0.01, 0.885, 0.90, False),
        ("accuracy", 0.02, 0.885, 0.90, True),
        ("rmse", 0.0, 10.5, 10.0, False),
        ("rmse", 1.0, 10.5, 10.0, True),
        ("rmse", 0.0, 9.0, 10.0, True),
    ],
)
def test_the_candidate_may_be_worse_only_by_the_margin_in_the_metrics_direction(metric, margin, candidate, champion, accepted):
    assert decide(metric, margin, candidate, champion).accepted is accepted


def test_without_a_champion_the_first_candidate_is_accepted():
    verdict = decide("f1", 0.0, 0.7, None)
    assert verdict.accepted and "no champion" in verdict.reason


def test_scores_are_scikit_learns():
    assert score("accuracy", [1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    assert score("rmse", [0.0, 0.0], [3.0, 4.0]) == pytest.approx(12.5**0.5)
    assert score("f1", [0, 1, 1], [[0], [1], [0]]) == pytest.approx(2 / 3)  # one-column predictions are flattened
