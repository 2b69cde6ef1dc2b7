"""`python -m monitoring.drift_job`: the drift CronJob's entrypoint (see the package docstring)."""

import sys

from monitoring.drift_job.cli import main

if __name__ == "__main__":
    sys.exit(main())
