"""The `mlops` command: parses arguments and hands each subcommand to the package that owns it.

`mlops.offline` renders, validates, diffs and previews stacks without a cloud; `mlops.stackops` reads
and edits stack files for day-2 operations (models, canary, rollback). Results go to stdout,
progress and timing to stderr.
"""

from __future__ import annotations

import argparse
import sys

from mlops.project import EPILOG, EXIT_BAD_INPUT, garbage_collection_paused


def build_parser() -> argparse.ArgumentParser:
    from mlops.offline import commands, policy_config, preview, prices, reference
    from mlops.stackops import canary, history, models, rollback

    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Render, validate and diff the MLOps platform's Pulumi stacks offline; operate model deployments.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    commands.register(subcommands)
    # Listed for --help; `main` hands `mlops drift ...` to the drift engine's own parser, so that
    # numpy/scipy/pandas load only for that command.
    subcommands.add_parser("drift", help="drift report between a reference and a current Parquet/CSV file", add_help=False)
    for module in (preview, prices, policy_config, reference, models, canary, history, rollback):
        module.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["drift"]:
        from monitoring.drift.cli import main as drift_main

        return drift_main(arguments[1:])

    try:
        from mlops.offline.gitref import GitRefError
        from mlops.offline.reference import ReferenceError
        from mlops.offline.security_scan import ScannerUnavailable
        from mlops.project import ProjectNotFound
        from mlops.stackfiles import StackFileError
        from stacks.config import ConfigError

        parser = build_parser()
    except ModuleNotFoundError as error:
        # The runtime virtualenv carries the drift engine but not Pulumi: say so in one line.
        print(
            f"mlops: this environment lacks {error.name!r}, which every command but `mlops drift` needs; "
            "run it from the IaC virtualenv (pip install -e .)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    args = parser.parse_args(arguments)
    try:
        with garbage_collection_paused():
            return args.func(args)
    except ConfigError as error:
        # One line per problem, each naming the key, the value and what is allowed.
        for problem in error.problems:
            print(f"mlops: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StackFileError, GitRefError, FileNotFoundError, ScannerUnavailable, ReferenceError, ProjectNotFound) as error:
        print(f"mlops: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
