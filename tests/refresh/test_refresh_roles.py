"""Refresh mode through an assumed role: the real process, kept running against moto behind the fault proxy.

The role's credentials are assumed once and kept for the run (renewed by botocore only near their expiry,
which tests/unit/test_assumed_role.py drives with a clock); every cycle checks with them, so a rotation in the
role's account reaches the files and a change of the same name in the task's own account does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SecretValues, sidecar_env
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.test_roles import READER, Account
from tests.refresh.test_refresh import Sidecar, sidecars, start

pytestmark = pytest.mark.slow
__all__ = ["sidecars"]  # the fixture, used by name


def test_a_rotation_in_the_roles_account_reaches_the_files_with_one_assume_role(
    moto: str, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar],
) -> None:
    with FaultProxy(moto) as proxy:
        _rotate_through_the_role(moto, proxy, tmp_path, secret_values, sidecars)


def _rotate_through_the_role(
    moto: str, proxy: FaultProxy, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar],
) -> None:
    theirs, mine = Account(moto, READER), Account(moto)
    theirs.parameter("/shared/token", str(secret_values.add("their-token-one")))
    arn = theirs.secret("shared/db", str(secret_values.add("their-db-one")))
    mine.parameter("/shared/token", str(secret_values.add("my-token-one")))
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_REFRESH_INTERVAL="1",
                      SIDECAR_ROLE_ARN=READER, SIDECAR_SECRETS=json.dumps([
                          {"name": "token", "valueFrom": "/shared/token"}, {"name": "db", "valueFrom": arn}]))
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    assert [(tmp_path / n).read_bytes() for n in ("token", "db")] == [b"their-token-one", b"their-db-one"]

    mine.ssm.put_parameter(Name="/shared/token", Value=str(secret_values.add("my-token-two")),
                           Type="SecureString", Overwrite=True)
    checks = len([e for e in sidecar.events if e["event"] == "refresh_check"])
    sidecar.wait_for("refresh_check", checks + 2)  # two whole cycles after the change in the task's account
    assert [e for e in sidecar.events if e["event"] == "refreshed"] == []

    theirs.ssm.put_parameter(Name="/shared/token", Value=str(secret_values.add("their-token-two")),
                             Type="SecureString", Overwrite=True)
    theirs.secretsmanager.put_secret_value(SecretId=arn, SecretString=str(secret_values.add("their-db-two")))
    refreshed = sidecar.wait_for("refreshed", timeout=10)
    assert (refreshed["generation"], len(refreshed["changed"])) == (2, 2)
    assert [(tmp_path / n).read_bytes() for n in ("token", "db")] == [b"their-token-two", b"their-db-two"]
    assert sidecar.stop() == 0
    # Every check and fetch of every cycle was signed with the role's credentials, assumed once.
    assert [s.action for s in proxy.seen if s.operation == "sts.AssumeRole"] == ["forwarded"]
    calls = [e for e in sidecar.events if e["event"] == "api_call"]
    assert len(calls) >= 6
    assert {e.get("role_arn") for e in calls} == {READER}
