"""A `pulumi` executable for tests of commands that call the CLI: it records, answers and can fail.

`install(bin_dir, history, fail=...)` writes `bin_dir/pulumi`. Each call appends one JSON line to
`bin_dir/calls.jsonl`: the exact arguments and the stack file's text at that moment (what the real
CLI would have read). It answers the calls the platform makes, in the shapes FACTS.md records:
- `stack history --json [--page-size N]`: the history file, newest first;
- `up ...`: prints progress to stdout and records a new history entry (succeeded, or failed and
  exit 255 when `up` is in `fail`) with the stack file's config, as the service would;
- `preview ... [--json]`: progress, or `{steps[{op, urn}], changeSummary}` for the `--target`s.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

SCRIPT = r'''#!{python}
import json, sys
from pathlib import Path

import yaml

STATE = Path({state!r})
settings = json.loads((STATE / "settings.json").read_text())
argv = sys.argv[1:]
stack = argv[argv.index("--stack") + 1] if "--stack" in argv else None
stack_file = Path.cwd() / f"Pulumi.{{stack}}.yaml"
with open(STATE / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": argv, "stackFile": stack_file.read_text() if stack_file.is_file() else None}}) + "\n")
history_path = Path(settings["history"])
command = argv[0] if argv[:1] != ["stack"] else "stack " + argv[1]
if command in settings["fail"]:
    print(f"error: {{command}} failed (as the test asked)")
if command == "stack history":
    if "stack history" in settings["fail"]:
        sys.exit(255)
    entries = json.loads(history_path.read_text())
    if "--page-size" in argv:
        entries = entries[: int(argv[argv.index("--page-size") + 1])]
    print(json.dumps(entries))
elif command == "up":
    entries = json.loads(history_path.read_text())
    failed = "up" in settings["fail"]
    config = {{}}
    for key, value in (yaml.safe_load(stack_file.read_text()).get("config") or {{}}).items():
        if isinstance(value, dict) and set(value) == {{"secure"}}:
            config[key] = {{"secret": True}}
        elif isinstance(value, (dict, list)):
            config[key] = {{"value": json.dumps(value), "objectValue": value, "secret": False}}
        else:
            config[key] = {{"value": value if isinstance(value, str) else json.dumps(value), "secret": False}}
    message = argv[argv.index("--message") + 1] if "--message" in argv else ""
    version = max((e["version"] for e in entries), default=0) + 1
    entry = {{"version": version, "kind": "update", "startTime": "2026-12-01T12:00:00Z", "message": message,
              "environment": {{"git.head": "f" * 40}}, "config": config, "result": "failed" if failed else "succeeded"}}
    history_path.write_text(json.dumps([entry, *entries], indent=2))
    print(f"Updating ({{stack}})")
    sys.exit(255 if failed else 0)
elif command == "preview":
    targets = [argv[i + 1] for i, a in enumerate(argv) if a == "--target"]
    if "--json" in argv:
        print(json.dumps({{"steps": [{{"op": "update", "urn": urn}} for urn in targets], "changeSummary": {{"update": len(targets)}}}}))
    else:
        print(f"Previewing update ({{stack}})")
    sys.exit(255 if "preview" in settings["fail"] else 0)
else:
    print(f"fake pulumi: unexpected command {{argv}}", file=sys.stderr)
    sys.exit(2)
'''


class FakePulumi:
    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir

    def calls(self) -> list[dict]:
        log = self.bin_dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

    def commands(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def history(self) -> list[dict]:
        return json.loads(Path(json.loads((self.bin_dir / "settings.json").read_text())["history"]).read_text())


def install(bin_dir: Path, history: Path, fail: tuple[str, ...] = ()) -> FakePulumi:
    """Write the fake into `bin_dir`; `history` is the file it serves and appends updates to."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "settings.json").write_text(json.dumps({"history": str(history), "fail": list(fail)}))
    script = bin_dir / "pulumi"
    script.write_text(SCRIPT.format(python=sys.executable, state=str(bin_dir)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return FakePulumi(bin_dir)
