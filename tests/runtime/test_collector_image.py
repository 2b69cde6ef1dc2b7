"""The runtime image definition (no Docker here): pinned base and packages equal to what the runtime
tests ran on, a complete dependency closure, every runtime import covered, a non-root user."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import PROJECT_DIR

DOCKERFILE = PROJECT_DIR / "images" / "runtime.Dockerfile"
REQUIREMENTS = PROJECT_DIR / "images" / "requirements-runtime.txt"
RUNTIME_PACKAGES = ("serving", "monitoring", "training", "batch", "access")
LOCAL_PACKAGES = {*RUNTIME_PACKAGES, "tests"}


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            found[canonicalize_name(name)] = version.strip()
    return found


def test_base_image_is_pinned_to_the_interpreter_the_tests_run_on() -> None:
    """FROM names an exact python:<x.y.z>-slim tag equal to this interpreter's version."""
    [base] = [argument for keyword, argument in instructions() if keyword == "FROM"]
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-[a-z]+", base)
    assert match, f"base image {base!r} is not an exact python slim tag"
    assert match.group(1) == ".".join(map(str, sys.version_info[:3]))


def test_image_runs_as_a_numeric_non_root_user() -> None:
    """The last USER is a numeric uid:gid other than 0, so runAsNonRoot can be verified."""
    user = [argument for keyword, argument in instructions() if keyword == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0


def test_default_command_is_the_collector_and_sources_are_copied() -> None:
    """ENTRYPOINT `python -m` + CMD `serving.collector`; every runtime package is copied in."""
    steps = instructions()
    assert ("ENTRYPOINT", '["python", "-m"]') in steps and ("CMD", '["serving.collector"]') in steps
    copied = {argument.split()[0] for keyword, argument in steps if keyword == "COPY"}
    assert {*(f"{package}/" for package in RUNTIME_PACKAGES), "images/requirements-runtime.txt"} <= copied
    assert (PROJECT_DIR / "serving" / "collector" / "__main__.py").is_file()


def test_every_pin_equals_the_version_installed_in_the_runtime_venv() -> None:
    """The image installs exactly what the runtime tests ran against."""
    mismatched = {
        name: (version, _installed(name)) for name, version in pins().items() if _installed(name) != version
    }
    assert mismatched == {}, "pinned vs installed: " + str(mismatched)


def test_pins_are_a_complete_dependency_closure() -> None:
    """Installed with --no-deps, so every dependency of every pin must itself be pinned."""
    pinned = pins()
    missing = set()
    for name in pinned:
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                if canonicalize_name(requirement.name) not in pinned:
                    missing.add(f"{requirement.name} (needed by {name})")
    assert sorted(missing) == []


def test_every_third_party_import_of_the_runtime_code_is_pinned() -> None:
    """Each module imported by the runtime packages comes from the standard library or a pin."""
    distributions = metadata.packages_distributions()
    pinned = pins()
    uncovered = set()
    for package in RUNTIME_PACKAGES:
        for source in (PROJECT_DIR / package).rglob("*.py"):
            for module in _imported_top_level_modules(source):
                if module in sys.stdlib_module_names or module in LOCAL_PACKAGES:
                    continue
                if not any(canonicalize_name(d) in pinned for d in distributions.get(module, [])):
                    uncovered.add(f"{module} (imported by {source.relative_to(PROJECT_DIR)})")
    assert sorted(uncovered) == [], "add these to images/requirements-runtime.txt"


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    """The Dockerfile's own .dockerignore excludes everything but the copied paths."""
    ignore = (DOCKERFILE.parent / f"{DOCKERFILE.name}.dockerignore").read_text().splitlines()
    assert "*" in ignore
    assert {"!images/requirements-runtime.txt", *(f"!{package}/" for package in RUNTIME_PACKAGES)} <= set(ignore)


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _imported_top_level_modules(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules
