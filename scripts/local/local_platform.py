"""The dev stack on a local kind cluster: `up`, `canary`, `down` (run by `make local-up` etc.).

up      kind cluster (its CNI enforces NetworkPolicies from kind v0.24.0 on) -> runtime image built
        and loaded into kind -> `pulumi up` of the dev stack without models (local file backend)
        -> demo model trained and registered in the platform's MLflow, its reference sample
        written to the object store -> `pulumi up` with the model -> InferenceService Ready.
canary  a second model version at --percent of the traffic next to the first.
down    deletes the kind cluster and everything under build/local/, in one pass.

Every step prints what it does and how long it took; `--dry-run` prints the steps and commands
without running anything. The repository's Pulumi.dev.yaml is never written: Pulumi runs in
build/local/pulumi/, on a copy of the project file pointing back at this repository's program,
with the dev config plus the trained model's version and artifact URI.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_DIR / "build" / "local"
BIN_DIR = LOCAL_DIR / "bin"
PULUMI_PROJECT_DIR = LOCAL_DIR / "pulumi"
STATE_DIR = LOCAL_DIR / "state"
IAC_PYTHON = PROJECT_DIR / ".venv" / "bin" / "python"
RUNTIME_PYTHON = PROJECT_DIR / ".venv-runtime" / "bin" / "python"

CLUSTER = "mlops"
STACK = "dev"
# kind >= v0.24.0 enforces NetworkPolicies (kindnetd ships kube-network-policies); the node image is
# the default of this kind release, pinned by digest as kind asks (kubernetes-sigs/kind v0.32.0,
# pkg/apis/config/defaults/image.go).
KIND_VERSION = "v0.32.0"
KIND_NODE_IMAGE = "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
KIND_RELEASE = f"https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}"
PULUMI_INSTALLER = "https://get.pulumi.com/"
# The platform's in-cluster services the demo model step reaches through port-forwards
# (components/namespaces.py, components/mlflow.py, components/object_store.py).
PLATFORM_NAMESPACE = "mlops-platform"
SERVING_NAMESPACE = "mlops-serving"
MLFLOW_SERVICE, MLFLOW_PORT, MLFLOW_ADMIN_SECRET = "mlflow", 5000, "mlflow-admin"
OBJECT_STORE_SERVICE, OBJECT_STORE_PORT, OBJECT_STORE_SECRET = "object-store", 9000, "object-store-credentials"
READY_TIMEOUT = "900s"


class LocalPlatformError(Exception):
    """A step cannot go on; the message says which tool or resource and what to do."""


@dataclass
class Runner:
    """Runs (or, dry, only prints) commands with the environment every step shares."""

    dry_run: bool
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *command: str, cwd: Path = PROJECT_DIR, capture: bool = False) -> str:
        print("  $ " + " ".join(command), flush=True)
        if self.dry_run:
            return ""
        completed = subprocess.run(command, cwd=cwd, env={**os.environ, **self.env}, text=True, capture_output=capture)
        if completed.returncode != 0:
            detail = (completed.stderr or "").strip().splitlines()[-1:] if capture else []
            raise LocalPlatformError(f"`{' '.join(command)}` exited {completed.returncode}" + (f": {detail[0]}" if detail else ""))
        return completed.stdout if capture else ""

    def do(self, description: str, action: Callable[[], object]) -> None:
        print(f"  - {description}", flush=True)
        if not self.dry_run:
            action()


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    print(f"==> {title}", flush=True)
    started = time.monotonic()
    yield
    print(f"<== {title}: {time.monotonic() - started:.1f} s", flush=True)




def kind_binary(runner: Runner) -> Path:
    """The pinned kind, downloaded into build/local/bin (its checksum verified) unless already there."""
    target = BIN_DIR / "kind"
    if not runner.dry_run and target.is_file():
        version = subprocess.run([str(target), "version"], capture_output=True, text=True).stdout
        if f"kind {KIND_VERSION} " in version:
            return target
    asset = f"kind-linux-{_architecture()}"
    runner.do(f"download kind {KIND_VERSION} from {KIND_RELEASE}/{asset} and check it against {asset}.sha256sum", lambda: _download_checked(asset, target))
    return target


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except urllib.error.URLError as error:
        raise LocalPlatformError(f"cannot download {url}: {error.reason}") from error


def _download_checked(asset: str, target: Path) -> None:
    binary = _download(f"{KIND_RELEASE}/{asset}")
    expected = _download(f"{KIND_RELEASE}/{asset}.sha256sum").decode().split()[0]
    if hashlib.sha256(binary).hexdigest() != expected:
        raise LocalPlatformError(f"kind {KIND_VERSION} download does not match its published sha256 {expected}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(binary)
    target.chmod(0o755)


def pulumi_version() -> str:
    """The CLI version equal to the Pulumi SDK in .venv (the program and the engine agree)."""
    completed = subprocess.run(
        [str(IAC_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pulumi'))"], capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise LocalPlatformError(f"{IAC_PYTHON} cannot report the Pulumi SDK version; run `make {IAC_PYTHON.parent.parent.name}/.installed` first")
    return completed.stdout.strip()


def pulumi_binary(runner: Runner) -> Path:
    version = "<the pulumi version in .venv>" if runner.dry_run else pulumi_version()
    root = LOCAL_DIR / "pulumi-cli"
    target = root / "bin" / "pulumi"
    if not runner.dry_run and target.is_file():
        if subprocess.run([str(target), "version"], capture_output=True, text=True).stdout.strip() == f"v{version}":
            return target
    runner.run("sh", "-c", f"curl -fsSL {PULUMI_INSTALLER} | sh -s -- --version {version} --install-root {root} --no-edit-path")
    return target


def require_on_path(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LocalPlatformError(f"{', '.join(missing)} not on PATH: local-up needs Docker (docker) and kubectl (e.g. apt-get install kubernetes-client)")




def runtime_image() -> str:
    """The runtime image the dev stack runs: Pulumi.dev.yaml's, else the project default."""
    stack = yaml.safe_load((PROJECT_DIR / f"Pulumi.{STACK}.yaml").read_text())["config"]
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    images = {**project["config"]["images"]["default"], **(stack.get("mlops:images") or {})}
    return images["runtime"]


def write_pulumi_project(models: list[dict]) -> None:
    """build/local/pulumi: the project file aimed at this repository, and the dev config with `models`."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    project["main"] = str(PROJECT_DIR / project.get("main", "."))
    project["runtime"]["options"]["virtualenv"] = str(PROJECT_DIR / project["runtime"]["options"]["virtualenv"])
    PULUMI_PROJECT_DIR.mkdir(parents=True, exist_ok=True)
    (PULUMI_PROJECT_DIR / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    stack_file = PULUMI_PROJECT_DIR / f"Pulumi.{STACK}.yaml"
    # Keep the passphrase salt Pulumi wrote on the first run.
    kept = {k: v for k, v in (yaml.safe_load(stack_file.read_text()) or {}).items() if k != "config"} if stack_file.is_file() else {}
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{STACK}.yaml").read_text())["config"]
    config["mlops:models"] = models
    stack_file.write_text(yaml.safe_dump({**kept, "config": config}, sort_keys=False))


def declared_model() -> dict:
    models = yaml.safe_load((PROJECT_DIR / f"Pulumi.{STACK}.yaml").read_text())["config"].get("mlops:models") or []
    if len(models) != 1:
        raise LocalPlatformError(f"Pulumi.{STACK}.yaml declares {len(models)} models; local-up deploys exactly one demo model")
    return models[0]


def with_trained(model: dict, trained: dict) -> dict:
    """The declared model entry serving a trained version (and its reference sample)."""
    entry = json.loads(json.dumps(model))
    entry["model"] = {"registeredModel": trained["registeredModel"], "version": trained["version"], "artifactUri": trained["artifactUri"]}
    if entry.get("monitoring"):
        entry["monitoring"]["referenceDataUri"] = trained["referenceDataUri"]
    return entry


def with_canary(model: dict, stable: dict, candidate: dict, percent: int) -> dict:
    entry = with_trained(model, candidate)
    entry["canary"] = {"trafficPercent": percent, "previousVersion": stable["version"], "previousArtifactUri": stable["artifactUri"]}
    return entry




def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def port_forward(namespace: str, service: str, port: int) -> Iterator[str]:
    local = _free_port()
    process = subprocess.Popen(
        ["kubectl", "--context", f"kind-{CLUSTER}", "-n", namespace, "port-forward", f"svc/{service}", f"{local}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            if process.poll() is not None:
                raise LocalPlatformError(f"kubectl port-forward svc/{service} -n {namespace} exited: {process.stderr.read().decode().strip()}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{local}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def secret_value(namespace: str, name: str, key: str) -> str:
    encoded = subprocess.run(
        ["kubectl", "--context", f"kind-{CLUSTER}", "-n", namespace, "get", "secret", name, "-o", f"jsonpath={{.data.{key}}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return base64.b64decode(encoded).decode()


def train_demo_model(runner: Runner, *extra: str) -> dict:
    """Run scripts/local/demo_model.py against the cluster's MLflow and object store."""
    command = [str(RUNTIME_PYTHON), str(PROJECT_DIR / "scripts" / "local" / "demo_model.py"), "--model-name", declared_model()["model"]["registeredModel"], *extra]
    if runner.dry_run:
        runner.run(*command, "--tracking-uri", "<port-forward of svc/mlflow>")
        return {"registeredModel": "<name>", "version": "<version>", "artifactUri": "<s3 uri>", "referenceDataUri": "<s3 uri>"}
    with port_forward(PLATFORM_NAMESPACE, MLFLOW_SERVICE, MLFLOW_PORT) as tracking, port_forward(PLATFORM_NAMESPACE, OBJECT_STORE_SERVICE, OBJECT_STORE_PORT) as store:
        env = {
            "MLFLOW_TRACKING_USERNAME": secret_value(PLATFORM_NAMESPACE, MLFLOW_ADMIN_SECRET, "username"),
            "MLFLOW_TRACKING_PASSWORD": secret_value(PLATFORM_NAMESPACE, MLFLOW_ADMIN_SECRET, "password"),
            "AWS_ACCESS_KEY_ID": secret_value(PLATFORM_NAMESPACE, OBJECT_STORE_SECRET, "AWS_ACCESS_KEY_ID"),
            "AWS_SECRET_ACCESS_KEY": secret_value(PLATFORM_NAMESPACE, OBJECT_STORE_SECRET, "AWS_SECRET_ACCESS_KEY"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": store,
        }
        output = Runner(dry_run=False, env=env).run(*command, "--tracking-uri", tracking, capture=True)
    trained = json.loads(output.strip().splitlines()[-1])
    (LOCAL_DIR / f"demo-model-v{trained['version']}.json").write_text(json.dumps(trained, indent=2) + "\n")
    print(f"  registered {trained['registeredModel']} version {trained['version']} at {trained['artifactUri']}", flush=True)
    return trained




def pulumi_env() -> dict[str, str]:
    # A file backend under build/local and an empty passphrase: this state never leaves the machine.
    return {"PULUMI_BACKEND_URL": STATE_DIR.as_uri(), "PULUMI_CONFIG_PASSPHRASE": "", "PULUMI_SKIP_UPDATE_CHECK": "true"}


def pulumi_up(runner: Runner, pulumi: Path, message: str) -> None:
    runner.run(str(pulumi), "up", "--yes", "--skip-preview", "--stack", STACK, "--message", message, cwd=PULUMI_PROJECT_DIR)


def command_up(runner: Runner) -> None:
    model = declared_model()
    with step("tools: kind, Pulumi CLI, docker, kubectl"):
        runner.do("check that docker and kubectl are on PATH", lambda: require_on_path("docker", "kubectl"))
        kind = kind_binary(runner)
        pulumi = pulumi_binary(runner)
        runner.env.update(pulumi_env())
    with step(f"kind cluster {CLUSTER} ({KIND_NODE_IMAGE.split('@')[0]})"):
        existing = runner.run(str(kind), "get", "clusters", capture=True).split()
        if CLUSTER in existing:
            print(f"  cluster {CLUSTER} exists; reusing it", flush=True)
        else:
            runner.run(str(kind), "create", "cluster", "--name", CLUSTER, "--image", KIND_NODE_IMAGE, "--wait", "180s")
    image = runtime_image()
    with step(f"runtime image {image}: build and load into kind"):
        runner.run("docker", "build", "--file", "images/runtime.Dockerfile", "--tag", image, ".")
        runner.run(str(kind), "load", "docker-image", image, "--name", CLUSTER)
    with step("pulumi up: the platform, no model yet"):
        runner.do(f"write {PULUMI_PROJECT_DIR.relative_to(PROJECT_DIR)}/ (Pulumi.yaml -> this repository, Pulumi.{STACK}.yaml without models)", lambda: write_pulumi_project([]))
        runner.do(f"create the file backend {STATE_DIR.relative_to(PROJECT_DIR)}/", lambda: STATE_DIR.mkdir(parents=True, exist_ok=True))
        runner.run(str(pulumi), "stack", "select", "--create", STACK, cwd=PULUMI_PROJECT_DIR)
        pulumi_up(runner, pulumi, "local-up: platform")
    with step(f"demo model {model['model']['registeredModel']}: train, register, write its reference sample"):
        trained = train_demo_model(runner)
    with step(f"pulumi up: InferenceService {model['name']} serving the demo model"):
        runner.do(f"set the model's version, artifactUri and referenceDataUri in Pulumi.{STACK}.yaml under build/local", lambda: write_pulumi_project([with_trained(model, trained)]))
        pulumi_up(runner, pulumi, "local-up: demo model")
        runner.run("kubectl", "--context", f"kind-{CLUSTER}", "-n", SERVING_NAMESPACE, "wait", "--for=condition=Ready", f"inferenceservice/{model['name']}", f"--timeout={READY_TIMEOUT}")


def command_canary(runner: Runner, percent: int) -> None:
    model = declared_model()
    runner.env.update(pulumi_env())
    pulumi = LOCAL_DIR / "pulumi-cli" / "bin" / "pulumi"
    stable_file = LOCAL_DIR / "demo-model-v1.json"
    if not runner.dry_run and not stable_file.is_file():
        raise LocalPlatformError(f"{stable_file.relative_to(PROJECT_DIR)} not found: run `make local-up` first")
    with step(f"demo model {model['model']['registeredModel']}: train and register the next version"):
        candidate = train_demo_model(runner, "--seed", "2", "--shift", "0.5")
    with step(f"pulumi up: canary of version {candidate['version']} at {percent} %"):
        stable = json.loads(stable_file.read_text()) if not runner.dry_run else {"version": "<stable>", "artifactUri": "<stable s3 uri>"}
        runner.do(f"set the canary in Pulumi.{STACK}.yaml under build/local", lambda: write_pulumi_project([with_canary(model, stable, candidate, percent)]))
        pulumi_up(runner, pulumi, f"local canary {percent}%")
        runner.run("kubectl", "--context", f"kind-{CLUSTER}", "-n", SERVING_NAMESPACE, "wait", "--for=condition=Ready", f"inferenceservice/{model['name']}", f"--timeout={READY_TIMEOUT}")


def command_down(runner: Runner) -> None:
    with step(f"delete kind cluster {CLUSTER} and {LOCAL_DIR.relative_to(PROJECT_DIR)}/"):
        kind = BIN_DIR / "kind"
        if runner.dry_run or kind.is_file():
            runner.run(str(kind), "delete", "cluster", "--name", CLUSTER)
        elif shutil.which("kind"):
            runner.run("kind", "delete", "cluster", "--name", CLUSTER)
        # The cluster holds every resource the stack created, so its state goes with it.
        runner.do(f"remove {LOCAL_DIR}", lambda: shutil.rmtree(LOCAL_DIR, ignore_errors=True))


def percent(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 1 <= value <= 99:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 99")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="local_platform.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the steps and commands without running them")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="create the kind cluster and deploy the dev stack with a demo model")
    canary = commands.add_parser("canary", help="deploy a second demo model version as a canary")
    canary.add_argument("--percent", type=percent, default=10, help="share of traffic for the new version (default: 10)")
    commands.add_parser("down", help="delete the kind cluster and build/local/")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runner = Runner(dry_run=args.dry_run)
    started = time.monotonic()
    try:
        if args.command == "up":
            command_up(runner)
        elif args.command == "canary":
            command_canary(runner, args.percent)
        else:
            command_down(runner)
    except LocalPlatformError as error:
        print(f"local_platform.py {args.command}: {error}", file=sys.stderr)
        return 1
    print(f"{args.command}{' (dry run)' if args.dry_run else ''} done in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
