"""Refresh mode with a ``parametersByPath`` tree: a parameter added, deleted or changed under the path changes
the set at the next cycle. The check reads names and versions without decryption; only a change fetches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretValues, sidecar_env
from tests.e2e.faultproxy import FaultProxy, rewrite
from tests.refresh.test_refresh import Sidecar, sidecars, start

pytestmark = pytest.mark.slow
__all__ = ["sidecars"]  # the fixture, used by name


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parameters_added_deleted_and_changed_under_the_path_reach_the_files(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    def put(name: str, value: str, *, overwrite: bool = False) -> None:
        aws.ssm.put_parameter(Name=name, Value=secret_values.add(value), Type="SecureString", Overwrite=overwrite)

    put("/app/cfg/db/password", "tree-db-one-111")
    put("/app/cfg/token", "tree-token-111")
    put("/app/cfg/old", "tree-old-111")
    requests: list[dict[str, Any]] = []

    def record(request: bytes, response: bytes) -> bytes:
        requests.append(json.loads(request))
        return response

    with FaultProxy(moto) as proxy:
        proxy.add(rewrite("AmazonSSM.GetParametersByPath", record))
        secrets = [{"name": "cfg", "parametersByPath": "/app/cfg"}]
        sidecar = start(sidecars, sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(tmp_path),
                                              SIDECAR_SECRETS=json.dumps(secrets), SIDECAR_REFRESH_INTERVAL="1"))
        sidecar.wait_for("refresh_started")
        assert _files(tmp_path / "cfg") == {"db/password": b"tree-db-one-111", "token": b"tree-token-111",
                                            "old": b"tree-old-111"}
        check = sidecar.wait_for("refresh_check")
        assert (check["changed"], check["api_calls"]) == (0, 1)

        put("/app/cfg/new/key", "tree-new-222")
        sidecar.wait_for("refreshed", timeout=10)
        assert _files(tmp_path / "cfg")["new/key"] == b"tree-new-222"

        aws.ssm.delete_parameter(Name="/app/cfg/old")
        sidecar.wait_for("refreshed", count=2, timeout=10)
        assert "old" not in _files(tmp_path / "cfg")

        put("/app/cfg/db/password", "tree-db-two-333", overwrite=True)
        refreshed = sidecar.wait_for("refreshed", count=3, timeout=10)

        assert refreshed["changed"] == ["parameters under /app/cfg at every depth in eu-west-1"]
        assert _files(tmp_path / "cfg") == {"db/password": b"tree-db-two-333", "token": b"tree-token-111",
                                            "new/key": b"tree-new-222"}
        assert (tmp_path / "..version").read_bytes() == b"4\n"
        assert sidecar.stop() == 0
    # Checks ask for names and versions only; each fetch (the first, and one per change) decrypts.
    decrypted = [r for r in requests if r["WithDecryption"]]
    assert len(decrypted) == 4
    assert all(r["Path"] == "/app/cfg" and r["Recursive"] is True and r["MaxResults"] == 10 for r in requests)
    assert len(requests) > len(decrypted)
