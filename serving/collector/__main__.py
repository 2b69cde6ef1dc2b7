"""`python -m serving.collector [--config FILE]`: run the payload collector with uvicorn.

uvicorn turns SIGTERM into a graceful shutdown: it stops accepting connections, lets in-flight
requests finish (up to `shutdownTimeoutSeconds`), then the app's lifespan drains every buffered
row to the store before the process exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from serving.collector.app import create_app
from serving.collector.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.collector", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="YAML/JSON settings file; COLLECTOR_* variables override its keys")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            timeout_graceful_shutdown=int(config.shutdown_timeout_seconds),
            access_log=False,
            log_config=None,
        )
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
