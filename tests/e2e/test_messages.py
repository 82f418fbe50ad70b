"""What a new user reads when something is wrong: the exact message, its exit code, one log line, through the
real ``secrets-sidecar`` process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SecretValues, run_sidecar, sidecar_env
from tests.e2e.helpers import api_calls, assert_failed, secrets_json


def _reason(env: dict[str, str], exit_code: int, *args: str, guard: SecretValues) -> str:
    """Run the sidecar; it must fail with ``exit_code`` and one final ``failed`` line: returns its reason."""
    result = run_sidecar(env, *args, guard=guard)
    failed = assert_failed(result, exit_code)
    assert [e for e in result.events if e.get("level") == "error"] == [failed]
    if exit_code == 2:
        assert api_calls(result) == []
    return str(failed["reason"])


def _env(endpoint: str, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def test_concurrency_above_the_documented_range_is_a_configuration_error(
    moto: str, outdir: Path, secret_values: SecretValues
) -> None:
    env = _env(moto, outdir, {"name": "a", "valueFrom": "/app/a"}, SIDECAR_CONCURRENCY="65")
    assert _reason(env, 2, guard=secret_values) == "SIDECAR_CONCURRENCY: 65 is above the maximum of 64"
