"""The pack is well-formed: what Pulumi loads, the rule catalogue, and the generated pack config."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import yaml
from pulumi_policy import EnforcementLevel

from mlops.offline.policy_config import policy_pack_config
from policies.rules import GUARDRAILS, POLICIES
from stacks.config.schema import Limits
from tests.conftest import PROJECT_DIR

PACK_DIR = PROJECT_DIR / "policies"


def test_pulumi_policy_yaml_declares_python_runtime_venv_and_version():
    """PulumiPolicy.yaml has the python runtime with a virtualenv and a version."""
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", manifest["version"])


def test_main_is_thin_and_builds_the_pack_from_the_rules_package():
    """__main__.py only imports POLICIES and constructs the PolicyPack (nothing else may)."""
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"]
    assert len(calls) == 1 and {k.arg for k in calls[0].keywords} >= {"name", "policies"}
    packages = ("components", "stacks", "mlops", "policies", "serving", "monitoring", "tests")
    others = [p for package in packages for p in (PROJECT_DIR / package).glob("**/*.py") if p != PACK_DIR / "__main__.py"]
    assert not [p for p in others if re.search(r"^[^\n#]*PolicyPack\(name=", p.read_text(), re.M)]


def test_rules_import_the_way_pulumi_runs_the_pack():
    """With only policies/ on sys.path (as Pulumi runs it), `rules` imports and lists every policy."""
    code = "import sys; sys.path[:0] = [sys.argv[1]]; import rules; print(len(rules.POLICIES))"
    completed = subprocess.run([sys.executable, "-I", "-c", code, str(PACK_DIR)], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout) == len(POLICIES)


def test_rule_names_are_unique_kebab_case_with_remediation():
    """Every rule has a unique kebab-case name, a description and remediation steps."""
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) >= 20
    for policy in POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name)
        assert policy.description and policy.remediation_steps


def test_prod_level_is_the_default_and_dev_is_never_stricter():
    """A pack run without config enforces prod levels; dev never raises a rule above prod."""
    order = [EnforcementLevel.DISABLED, EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY]
    for guardrail in GUARDRAILS:
        assert guardrail.policy.enforcement_level == guardrail.level("prod")
        assert order.index(guardrail.level("dev")) <= order.index(guardrail.level("prod")), guardrail.name


def test_pack_config_carries_levels_environment_and_caps_declared_in_each_schema():
    """The generated config names only keys each policy's config schema declares."""
    config = policy_pack_config("dev", Limits(max_gpu_pool_size=3, max_gpus_per_model=1))
    assert config["database-deletion-protection"]["enforcementLevel"] == "disabled"
    assert config["gpu-pool-size-capped"]["maxGpuPoolSize"] == 3
    assert config["gpus-per-model-capped"]["maxGpusPerModel"] == 1
    for policy in POLICIES:
        entry = config[policy.name]
        assert entry["environment"] == "dev"
        assert set(entry) - {"enforcementLevel"} <= set(policy.config_schema.properties), policy.name
