"""Typed stack config: `load_stack_config(raw)` turns Pulumi's `mlops:` keys into a `StackConfig`."""

from stacks.config.load import ConfigError, load_stack_config
from stacks.config.rules import Problem
from stacks.config.schema import ModelDeployment, NodePool, StackConfig

__all__ = ["ConfigError", "ModelDeployment", "NodePool", "Problem", "StackConfig", "load_stack_config"]
