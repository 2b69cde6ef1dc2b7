# Runtime image of the platform's own workloads: the payload collector (default command), the drift
# job (`python -m monitoring.drift_job ...`), the canary guard (`python -m monitoring.canary.guard`),
# the training Job (`python -m training`), the batch scoring Job (`python -m batch`) and the MLflow
# team permissions Job (`python -m access.mlflow_teams`).
# Build from the repository root:
#   docker build -f images/runtime.Dockerfile -t <registry>/mlops-runtime:<git sha> .
# Base pinned to the interpreter the runtime tests run on (3.11.7).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A numeric, unprivileged user, so Kubernetes can verify runAsNonRoot without a name lookup.
RUN groupadd --gid 10001 mlops \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mlops

# The whole dependency closure is pinned, so --no-deps installs exactly the tested set and
# `pip check` fails the build if the pins ever stop fitting together.
COPY images/requirements-runtime.txt /tmp/requirements-runtime.txt
RUN pip install --no-deps --requirement /tmp/requirements-runtime.txt \
 && pip check \
 && rm /tmp/requirements-runtime.txt

WORKDIR /app
COPY serving/ /app/serving/
COPY monitoring/ /app/monitoring/
COPY training/ /app/training/
COPY batch/ /app/batch/
COPY access/ /app/access/

# Default spool location; in Kubernetes mount a volume here (emptyDir survives container
# restarts, a PersistentVolume also survives the pod).
RUN mkdir -p /var/spool/mlops-collector && chown 10001:10001 /var/spool/mlops-collector
ENV COLLECTOR_SPOOL_DIR=/var/spool/mlops-collector \
    COLLECTOR_PORT=8080

USER 10001:10001
EXPOSE 8080
# `args` in a Pod spec replace CMD only: ["monitoring.drift_job", ...] runs the drift job,
# ["training"] the training Job, ["batch"] the batch scoring Job, ["access.mlflow_teams", ...] the
# MLflow team permissions Job.
ENTRYPOINT ["python", "-m"]
CMD ["serving.collector"]
