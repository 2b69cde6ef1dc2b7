"""`python -m training`: the training Job's entrypoint (see the package docstring)."""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())
