#!/usr/bin/env bash
# The smoke tests against the kind cluster `make local-up` created. They skip themselves when no
# cluster answers; here a skip means the cluster is gone, so it fails the run. RUNTIME_PYTHON: the
# runtime virtualenv's interpreter (default .venv-runtime/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"${RUNTIME_PYTHON:-.venv-runtime/bin/python}" -m pytest tests/smoke -q -rs | tee "$log"
if grep -qE '[0-9]+ skipped' "$log"; then
  echo "smoke tests were skipped: the local cluster does not answer (see the reasons above)" >&2
  exit 1
fi
