"""`mlops history MODEL`: a model's declaration in every update of the stack, read from recorded history."""

from __future__ import annotations

import json

from mlops import cli
from tests.conftest import PROJECT_DIR

PROD_HISTORY = PROJECT_DIR / "tests" / "fixtures" / "history" / "prod.json"


def history(*argv: str, capsys) -> tuple[int, str, str]:
    code = cli.main(["history", *argv, "--stack", "prod", "--project-dir", str(PROJECT_DIR), "--history", str(PROD_HISTORY)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_every_update_with_the_model_as_declared(capsys):
    """fraud-detector over updates 9..1: versions, canary percents, results and commits as recorded; absent in 2 and 1."""
    code, out, _ = history("fraud-detector", "--format", "json", capsys=capsys)
    assert code == 0
    rows = {row["update"]: row for row in json.loads(out)["updates"]}
    assert list(rows) == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert (rows[8]["result"], rows[8]["version"], rows[8]["canaryPercent"]) == ("failed", "8", 10)
    assert (rows[6]["version"], rows[6]["canaryPercent"], rows[6]["message"]) == ("7", 10, "canary fraud-detector 7 at 10%")
    assert (rows[3]["version"], rows[3]["canaryPercent"], rows[3]["commit"]) == ("6", 100, "0" * 39 + "3")
    assert rows[7]["kind"] == "refresh" and not rows[2]["declared"] and rows[2]["artifact"] is None
    assert rows[6]["artifact"].endswith("9b1e2f3a4c5d6e7f8a9b0c1d2e3f4a5b/artifacts/model")


def test_text_is_a_table_with_alias_and_resolved_version(capsys):
    """image-embedder is pinned by alias: the table shows it, one line per update under a header."""
    code, out, _ = history("image-embedder", capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "image-embedder" and lines[1].split()[:4] == ["UPDATE", "TIME", "RESULT", "COMMIT"]
    update_7 = next(line for line in lines if line.startswith("7 "))
    assert "refresh succeeded" in update_7 and "champion" in update_7 and "100%" in update_7
    assert len(lines) == 2 + 9  # update 1 declared no models: still listed, as not declared
    assert "(not declared)" in next(line for line in lines if line.startswith("1 "))


def test_a_model_no_update_declared_is_exit_2(capsys):
    """A name that never appears: one line, exit 2."""
    code, out, err = history("nope", capsys=capsys)
    assert (code, out) == (2, "") and "declared model 'nope'" in err
