"""How the MLflow tracking server is started: its command lines and its auth configuration.

Pure functions without Pulumi, so the runtime tests start a real `mlflow server` with exactly the
settings the `MlflowServer` component renders into the cluster.

- Authentication: MLflow's `basic-auth` app. Its user store lives in the same PostgreSQL database
  as the tracking store (its own tables and its own `alembic_version_auth` table); it creates the
  admin user on first start from the INI file's `admin_password`.
- DB migrations: `mlflow db upgrade` runs before the server starts. The server itself only
  creates tables in an empty database; on a database left by an older MLflow it refuses to start
  ("out-of-date database schema"), so an image upgrade needs the explicit upgrade step.
- Host-header check: MLflow (>= 3.5) accepts only localhost and private IPs as `Host` unless
  told otherwise; in-cluster clients use the Service's DNS name, so those names are allowed.
- Metrics: `--expose-prometheus` serves `/metrics` (behind basic auth like every API route).
"""

from __future__ import annotations

import configparser
import io

PORT = 5000
AUTH_APP = "basic-auth"
ADMIN_USERNAME = "admin"
AUTH_CONFIG_FILE = "basic_auth.ini"
# Where the auth app finds its INI file.
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
# Signs CSRF tokens; every replica must share it (a generated Pulumi secret).
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# Permission users get on experiments and models they did not create and no role grants them:
# READ while the stack declares no teams; NO_PERMISSIONS with teams, whose roles
# (access.mlflow_teams) are then the only way to another user's experiments and models. The
# platform's own Jobs do not need READ (each has a machine user with grants), but without teams
# people have no role to be given (`mlflowUsers` is a team's): READ is how they browse and how
# `mlops models resolve` run with their credentials reads the registry.
DEFAULT_PERMISSION = "READ"
TEAMS_DEFAULT_PERMISSION = "NO_PERMISSIONS"
AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
# Named explicitly: SQLAlchemy >= 2.1 maps a bare `postgresql://` to psycopg 3, which MLflow
# images do not ship (they have psycopg2).
POSTGRES_DRIVER = "postgresql+psycopg2"


def database_uri(*, username: str, password: str, host: str, port: int | str, database: str) -> str:
    """SQLAlchemy URI of the PostgreSQL database holding the tracking and the auth stores."""
    return f"{POSTGRES_DRIVER}://{username}:{password}@{host}:{port}/{database}"


def server_args(
    *,
    backend_store_uri: str,
    artifacts_destination: str,
    allowed_hosts: list[str],
    metrics_dir: str,
    host: str = "0.0.0.0",
    port: int = PORT,
    workers: int = 2,
) -> list[str]:
    """Arguments of `mlflow server`: tracking + registry on SQL, artifacts proxied, basic auth on."""
    return [
        "server",
        "--app-name", AUTH_APP,
        "--backend-store-uri", backend_store_uri,
        # The server proxies artifact uploads and downloads, so clients need no bucket credentials.
        "--serve-artifacts",
        "--artifacts-destination", artifacts_destination,
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--allowed-hosts", ",".join(allowed_hosts),
        "--expose-prometheus", metrics_dir,
    ]


def upgrade_args(backend_store_uri: str) -> list[str]:
    """Arguments of `mlflow db upgrade`: creates the schema in an empty database, migrates an old one."""
    return ["db", "upgrade", backend_store_uri]


def in_cluster_hosts(service: str, namespace: str, port: int = PORT, public_hostname: str | None = None) -> list[str]:
    """Every `Host` header in-cluster clients (and the Ingress, if any) send to the server."""
    names = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]
    hosts = [host for name in names for host in (name, f"{name}:{port}")]
    if public_hostname:
        hosts.append(public_hostname)
    # Kubelet probes and Prometheus address the pod by IP; MLflow's defaults cover private IPs
    # only while no list is given, so they are listed again.
    return [*hosts, "localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", "10.*", "172.*", "192.168.*"]


def default_permission_for(teams_declared: bool) -> str:
    return TEAMS_DEFAULT_PERMISSION if teams_declared else DEFAULT_PERMISSION


def auth_config(
    *, database_uri: str, admin_password: str, admin_username: str = ADMIN_USERNAME, default_permission: str = DEFAULT_PERMISSION
) -> str:
    """The INI file MLFLOW_AUTH_CONFIG_PATH points at (it holds secrets: render it into a Secret)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser["mlflow"] = {
        "default_permission": default_permission,
        "database_uri": database_uri,
        "admin_username": admin_username,
        "admin_password": admin_password,
        "authorization_function": AUTHORIZATION_FUNCTION,
    }
    text = io.StringIO()
    parser.write(text)
    return text.getvalue()
