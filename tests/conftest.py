"""Paths and a script loader shared by every test suite (importable from both virtualenvs: no Pulumi here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]
REFERENCE_DIR = PROJECT_DIR / "reference"


def load_script(relative_path: str) -> ModuleType:
    """A script of the repository (e.g. scripts/local/demo_model.py) imported as a module by path."""
    path = PROJECT_DIR / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their defining module up while being built
    spec.loader.exec_module(module)
    return module


def prod_section_without(section: str, key: str) -> dict:
    """Section `mlops:<section>` of the committed prod stack without `key`: an override that takes one key
    away and keeps the rest of prod's section (its zone, its admins) as committed."""
    settings = dict(yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())["config"][f"mlops:{section}"])
    del settings[key]
    return settings
