"""The policy pack's config for one stack: enforcement level per rule, environment and cost caps.

`pulumi preview --policy-pack policies --policy-pack-config FILE` reads this file; generating it
from the stack's own config keeps the pack (run by the Pulumi CLI, which cannot see `mlops:` keys)
and the offline runner judging by the same environment and `mlops:limits`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops.stackfiles import ProjectFiles, parse_overrides
from policies.rules import GUARDRAILS
from policies.rules.common.guardrail import SECRET_MARKER_KEY
from policies.rules.gpu_pool_size_capped import LIMIT_KEY as POOL_LIMIT_KEY
from policies.rules.gpu_pool_size_capped import TEXT as POOL_RULE
from policies.rules.gpus_per_model_capped import LIMIT_KEY as MODEL_LIMIT_KEY
from policies.rules.gpus_per_model_capped import TEXT as MODEL_RULE
from stacks.config import StackConfig, load_stack_config
from stacks.config.schema import Limits


def policy_pack_config(environment: str, limits: Limits, secret_marker: str | None = None) -> dict[str, dict[str, Any]]:
    """`{policy name: {enforcementLevel, environment, ...}}` in the shape of a pack config file."""
    config: dict[str, dict[str, Any]] = {}
    for guardrail in GUARDRAILS:
        entry: dict[str, Any] = {"enforcementLevel": guardrail.level(environment).value, "environment": environment}
        if secret_marker is not None:
            entry[SECRET_MARKER_KEY] = secret_marker
        config[guardrail.name] = entry
    config[POOL_RULE.name][POOL_LIMIT_KEY] = limits.max_gpu_pool_size
    config[MODEL_RULE.name][MODEL_LIMIT_KEY] = limits.max_gpus_per_model
    return config


def stack_policy_config(config: StackConfig) -> dict[str, dict[str, Any]]:
    return policy_pack_config(config.environment, config.limits)


def command_policy_config(args: argparse.Namespace) -> int:
    files = ProjectFiles(Path(args.project_dir).resolve())
    config = load_stack_config(files.stack_config(args.stack, parse_overrides(args.config or [])))
    text = json.dumps(stack_policy_config(config), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy-config",
        help="write the policy pack config (levels, environment, GPU caps) for a stack, for --policy-pack-config",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--config", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--project-dir", default=".", help="project directory (default: current)")
    parser.add_argument("--out", help="file to write (default: stdout)")
    parser.set_defaults(func=command_policy_config)
