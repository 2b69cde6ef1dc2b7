"""`python -m batch`: the batch scoring CronJob's entrypoint (see the package docstring)."""

import sys

from batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
