"""The collector's settings: file and COLLECTOR_* variables, parsed once, with errors naming key and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serving.collector.config import ConfigError, load_config
from tests.conftest import PROJECT_DIR

MINIMAL_ENV = {"COLLECTOR_STORE_URI": "s3://payloads/prod", "COLLECTOR_SPOOL_DIR": "/var/spool/collector"}


def test_environment_alone_configures_the_collector_with_defaults() -> None:
    """Store and spool are required; everything else has a documented default."""
    config = load_config(None, MINIMAL_ENV)
    assert (config.store_uri, config.spool_dir, config.port) == ("s3://payloads/prod", Path("/var/spool/collector"), 8080)
    assert (config.max_batch_records, config.max_batch_age_seconds, config.models) == (1000, 60.0, [])


def test_variables_override_the_file_and_models_come_as_json(tmp_path: Path) -> None:
    """A camelCase YAML file is read; COLLECTOR_MAX_BATCH_RECORDS and COLLECTOR_MODELS override it."""
    path = tmp_path / "collector.yaml"
    path.write_text(
        "storeUri: /data/payloads\nspoolDir: /spool\nmaxBatchRecords: 50\n"
        "models:\n  - inferenceService: iris\n    version: '1'\n"
    )
    env = {"COLLECTOR_MAX_BATCH_RECORDS": "7", "COLLECTOR_MODELS": '[{"inferenceService": "fraud", "loggerMode": "request"}]'}
    config = load_config(path, env)
    assert config.max_batch_records == 7
    assert [(m.inference_service, m.store_name, m.logger_mode) for m in config.models] == [("fraud", "fraud", "request")]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COLLECTOR_STORE_URI": "ftp://host/x"}, r"storeUri='ftp://host/x': .* use one of s3://bucket/prefix"),
        ({"COLLECTOR_STORE_URI": "s3:///prefix"}, "names no bucket"),
        ({"COLLECTOR_MAX_BATCH_RECORDS": "0"}, r"maxBatchRecords='0': Input should be greater than or equal to 1"),
        ({"COLLECTOR_MODELS": "[{"}, "COLLECTOR_MODELS is not valid JSON"),
        ({"COLLECTOR_MODELS": '[{"inferenceServce": "iris"}]'}, "models.0.inferenceServce: unknown key; allowed keys here: inferenceService"),
        ({"COLLECTOR_MODELS": '[{"inferenceService": "a"}, {"inferenceService": "a"}]'}, r"inferenceService \['a'\] more than once"),
        ({"COLLECTOR_MODELS": '[{"inferenceService": "a", "version": "1/2"}]'}, r"models.0.version='1/2'"),
    ],
)
def test_invalid_settings_name_the_key_the_value_and_what_is_allowed(env: dict[str, str], message: str) -> None:
    """Each bad setting is reported with its key path and value."""
    with pytest.raises(ConfigError, match=message):
        load_config(None, {**MINIMAL_ENV, **env})


def test_missing_required_settings_name_their_variables() -> None:
    """Without store and spool, the error names COLLECTOR_STORE_URI and COLLECTOR_SPOOL_DIR."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, {})
    assert "COLLECTOR_STORE_URI" in str(caught.value) and "COLLECTOR_SPOOL_DIR" in str(caught.value)


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file or a file that is not a mapping is reported with its path."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", {})
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml", {})


def test_entrypoint_exits_2_with_the_problems_on_bad_config(tmp_path: Path) -> None:
    """`python -m serving.collector` refuses to start on bad settings, printing them, exit code 2."""
    result = subprocess.run(
        [sys.executable, "-m", "serving.collector", "--config", str(tmp_path / "absent.yaml")],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot read config file" in result.stderr
