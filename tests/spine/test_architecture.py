"""The architecture holds: import arrows point one way, and the README's map matches the tree.

The import contracts live in pyproject.toml (`[tool.importlinter]`): mlops -> stacks -> components,
runtime packages and the policy pack standalone, the CLI imported by nothing, no cycles.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
ROOT_PACKAGES = ("mlops", "stacks", "components", "policies", "serving", "monitoring", "training", "batch", "access")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(PROJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture()
def project_copy(tmp_path: Path) -> Path:
    """The project's packages and contracts, copied so a test can break them."""
    shutil.copy(PROJECT / "pyproject.toml", tmp_path)
    for package in ROOT_PACKAGES:
        shutil.copytree(PROJECT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.yaml"))
    return tmp_path


@pytest.mark.parametrize(
    ("module", "bad_import", "broken_contract"),
    [
        ("components/workloads.py", "import stacks.config", "CLI -> composition -> reusable components"),
        ("stacks/program.py", "from mlops.offline import render", "CLI -> composition -> reusable components"),
        ("monitoring/drift/engine.py", "import components.workloads", "Runtime packages"),
        ("policies/rules/common/stack.py", "import stacks", "The policy pack"),
        ("mlops/offline/render.py", "from mlops.stackops import rollback", "Inside mlops"),
        ("mlops/stackfiles.py", "import mlops.cli", "Inside mlops"),
        ("components/workloads.py", "import components.model.deployment", "No import cycle"),
    ],
)
def test_an_import_against_the_arrows_breaks_its_contract(project_copy: Path, module: str, bad_import: str, broken_contract: str) -> None:
    """Each contract bites: one import against it, inside a function as lazy imports are, fails the check."""
    path = project_copy / module
    path.write_text(path.read_text() + f"\n\ndef _against_the_arrows():\n    {bad_import}\n")
    result = lint_imports(project_copy)
    assert result.returncode == 1, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert broken_contract in broken, result.stdout


def _readme_directories() -> set[str]:
    text = (PROJECT / "README.md").read_text()
    section = text.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    return {name for row in re.findall(r"^\| (.+?) \|", section, re.M) for name in re.findall(r"`([\w.-]+)/`", row.split(" | ")[0])}


def test_readme_directory_table_matches_the_tree() -> None:
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split()
    top_level_directories = {path.split("/", 1)[0] for path in tracked if "/" in path and not path.startswith(".")}
    assert _readme_directories() == top_level_directories


def test_readme_links_only_to_pages_that_exist() -> None:
    links = re.findall(r"\]\((docs/[\w.-]+)\)", (PROJECT / "README.md").read_text())
    assert links, "the README links its documentation pages"
    assert [link for link in links if not (PROJECT / link).is_file()] == []
    assert {f"docs/{page.name}" for page in (PROJECT / "docs").glob("*.md")} <= set(links), "every docs page is linked"


# What the `mlops` stack-file commands load in the runtime virtualenv, which has no Pulumi SDK:
# the typed config and its rules, and the day-2 commands the runtime tests drive (canary, models).
SDK_FREE_MODULES = ("stacks.config", "mlops.stackops.canary", "mlops.stackops.models")
BLOCK_PULUMI = """
import importlib.abc, sys
class NoPulumi(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pulumi" or name.startswith(("pulumi.", "pulumi_")):
            raise ImportError(f"{name} is not installed in the runtime virtualenv")
sys.meta_path.insert(0, NoPulumi())
"""


@pytest.mark.parametrize("module", SDK_FREE_MODULES)
def test_stack_config_and_stack_file_commands_load_without_the_pulumi_sdk(module: str) -> None:
    code = BLOCK_PULUMI + f"import importlib; importlib.import_module({module!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
