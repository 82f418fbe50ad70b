"""`make demo` as a new user runs it: one run that succeeds, one that fails as CloudWatch shows it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_succeeds_then_shows_one_failure_as_json_and_keeps_the_files() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True,
                            timeout=120, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "exit code 0" in out
    assert "b'postgresql://app:demo-pa55word@db.internal:5432/app'" in out

    json_lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    failed = [event for event in json_lines if event["event"] == "failed"]
    assert len(failed) == 1, json_lines
    assert failed[0]["exit_code"] == 3 and failed[0]["level"] == "error"
    assert "'payments_token'" in failed[0]["reason"] and "ResourceNotFoundException" in failed[0]["reason"]
    assert json_lines[-1] is failed[0]  # the reason is the last line the operator sees
    assert "The files of run 1 are untouched." in out

    assert "docs/deploy-on-ecs.md" in out.split("=== next")[1]
    assert (ROOT / "docs" / "deploy-on-ecs.md").is_file()
    kept = Path(out.split("the demo's files are kept in ")[1].split(";")[0])
    try:
        assert (kept / "db.url").read_bytes() == b"postgresql://app:demo-pa55word@db.internal:5432/app"
    finally:
        shutil.rmtree(kept)


def test_demo_extra_installs_no_test_toolchain() -> None:
    """The `demo` extra is the package plus what the embedded moto server needs."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    demo = " ".join(extras["demo"])
    for tool in ("pytest", "mypy", "ruff", "cfn-lint", "hadolint", "hypothesis", "parliament", "moto[server]"):
        assert tool not in demo
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[demo]'" in makefile and "$(DEMO_VENV)/bin/python examples/demo.py" in makefile
