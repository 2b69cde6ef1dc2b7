"""MLflow with the platform's server settings, on a real PostgreSQL, end to end.

The server is started with `components.platform.mlflow_server` (the same functions the `MlflowServer`
component renders into its Deployment): `mlflow db upgrade` first, then `mlflow server` with the
basic-auth app, its user store in the same database, artifacts proxied by the server. A model is
logged, registered and loaded back through it, as a data scientist would with only the tracking
URI and a user name and password.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg2
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from components.platform.mlflow_server import (
    ADMIN_USERNAME,
    AUTH_CONFIG_ENV,
    DEFAULT_PERMISSION,
    SECRET_KEY_ENV,
    auth_config,
    database_uri,
    in_cluster_hosts,
    server_args,
    upgrade_args,
)
from tests.runtime.servers import free_port, wait_until_answering

pytestmark = pytest.mark.server

RUNTIME_BIN = Path(sys.executable).parent
MLFLOW = RUNTIME_BIN / "mlflow"
DATABASE, USER = "mlflow", "mlflow"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; apt-get install -y postgresql")
    return Path(found[-1]).parent


@dataclass
class Postgres:
    port: int
    password: str

    @property
    def uri(self) -> str:
        return database_uri(username=USER, password=self.password, host="127.0.0.1", port=self.port, database=DATABASE)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password, dbname=DATABASE) as conn:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()


# PostgreSQL refuses to run as root: as root (this machine) it runs as the postgres user; as an
# ordinary user (a GitHub-hosted runner, where runuser is not allowed) it runs as that user.
RUNNING_AS_ROOT = os.geteuid() == 0


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if RUNNING_AS_ROOT else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server in a temp dir owned by the postgres user (it refuses to run as root)."""
    binaries = _postgres_bin()
    # Not pytest's tmp_path: its parents are private to root and postgres could not reach them.
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if RUNNING_AS_ROOT:
        shutil.chown(root, "postgres", "postgres")
    data, port, password = root / "data", free_port(), secrets.token_urlsafe(16)
    _as_postgres(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    _as_postgres(
        str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "start",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
    )
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {USER} LOGIN PASSWORD %s", (password,))
            cursor.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        conn.close()
        yield Postgres(port, password)
    finally:
        _as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Tracking:
    url: str
    admin_password: str
    log: Path


@contextmanager
def tracking_server(
    postgres: Postgres,
    workdir: Path,
    artifacts_destination: str,
    env: dict[str, str] | None = None,
    default_permission: str = DEFAULT_PERMISSION,
) -> Iterator[Tracking]:
    """`mlflow db upgrade`, then `mlflow server` as the component runs them, until the block ends."""
    upgrade = subprocess.run([str(MLFLOW), *upgrade_args(postgres.uri)], capture_output=True, text=True, timeout=300)
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    admin_password = secrets.token_urlsafe(24)
    (workdir / "basic_auth.ini").write_text(
        auth_config(database_uri=postgres.uri, admin_password=admin_password, default_permission=default_permission)
    )
    (workdir / "metrics").mkdir()
    port = free_port()
    args = server_args(
        backend_store_uri=postgres.uri,
        artifacts_destination=artifacts_destination,
        allowed_hosts=in_cluster_hosts("mlflow", "mlops-platform"),
        metrics_dir=str(workdir / "metrics"),
        host="127.0.0.1",
        port=port,
        workers=1,
    )
    env = {**os.environ, **(env or {}), AUTH_CONFIG_ENV: str(workdir / "basic_auth.ini"), SECRET_KEY_ENV: secrets.token_urlsafe(32)}
    log = workdir / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([str(MLFLOW), *args], stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/health", process, log, timeout=120)
        yield Tracking(url, admin_password, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def tracking(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    workdir = tmp_path_factory.mktemp("mlflow")
    with tracking_server(postgres, workdir, str(workdir / "artifacts")) as server:
        yield server


@pytest.fixture
def as_admin(tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> Tracking:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN_USERNAME)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", tracking.admin_password)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    return tracking


def _head_revision(package_dir: str) -> str:
    config = Config()
    config.set_main_option("script_location", package_dir)
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def test_migrations_brought_both_schemas_to_their_head(postgres, tracking):
    """The tracking schema is at MLflow's newest migration, and the auth app migrated its own tables."""
    import mlflow.server.auth.db as auth_db
    import mlflow.store.db_migrations as tracking_migrations

    assert postgres.query("SELECT version_num FROM alembic_version") == [(_head_revision(tracking_migrations.__path__[0]),)]
    auth_head = _head_revision(str(Path(auth_db.__file__).parent / "migrations"))
    assert postgres.query("SELECT version_num FROM alembic_version_auth") == [(auth_head,)]
    assert postgres.query(f"SELECT username, is_admin FROM users WHERE username = '{ADMIN_USERNAME}'") == [(ADMIN_USERNAME, True)]


def test_the_api_refuses_requests_without_credentials(tracking):
    """Authentication is on: anonymous calls get 401, the health probe stays open."""
    assert httpx.get(f"{tracking.url}/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401
    assert httpx.get(f"{tracking.url}/health").status_code == 200


def test_in_cluster_host_names_are_accepted_and_others_refused(tracking):
    """The Service DNS name passes MLflow's Host-header check; an unknown host is refused."""
    auth = (ADMIN_USERNAME, tracking.admin_password)
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    ok = httpx.get(tracking.url + path, auth=auth, headers={"Host": "mlflow.mlops-platform.svc:5000"})
    assert ok.status_code == 200, ok.text
    assert httpx.get(tracking.url + path, auth=auth, headers={"Host": "evil.example.com"}).status_code in (400, 403)


def test_a_model_is_logged_registered_and_loaded_back_through_the_server(as_admin, tmp_path):
    """A scikit-learn model goes in through the tracking URI alone and comes back predicting the same."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    mlflow.set_experiment("platform-runtime-test")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-classifier", input_example=features[:2])
    # Proxied artifacts: the run stores a server URI, not the bucket's.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    version = MlflowClient().get_registered_model("iris-classifier").latest_versions[0]
    assert version.run_id == run.info.run_id and str(info.registered_model_version) == version.version == "1"

    loaded = mlflow.pyfunc.load_model("models:/iris-classifier/1", dst_path=str(tmp_path))
    np.testing.assert_array_equal(np.asarray(loaded.predict(features[:20])), model.predict(features[:20]))


def test_metrics_are_exposed_to_an_authenticated_scraper(tracking):
    """`/metrics` answers with MLflow's request metrics given the credentials the ServiceMonitor uses."""
    response = httpx.get(f"{tracking.url}/metrics", auth=(ADMIN_USERNAME, tracking.admin_password))
    assert response.status_code == 200, response.text[:500]
    assert "mlflow_" in response.text
    assert httpx.get(f"{tracking.url}/metrics").status_code == 401
