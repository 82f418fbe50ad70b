"""The ownership matrix of docs/ownership.md, proved with real reads.

A fresh volume is mounted at /run/secrets; the sidecar writes one secret as each case's task definition
would configure it; then an app container reads the file as the app's user (it must get the exact bytes) and
as other users (each must be refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import ACCOUNT, REGION, SecretValues
from tests.container.conftest import SIDECAR_UID, run_in_app, run_sidecar_container, volume_tree

pytestmark = [pytest.mark.container, pytest.mark.slow]


@dataclass(frozen=True)
class Case:
    sidecar_user: str | None  # ECS "user" of the sidecar container; None: the image's 10001:10001
    settings: dict[str, str]
    owner: tuple[str, int, int]  # the file's mode, uid, gid
    app: str  # ECS "user" of the app container
    refused: tuple[str, ...]  # other users that must not read the file
    extra: dict[str, str] = field(default_factory=dict)


CASES = {
    # (1) The app runs as root: default settings; root reads through CAP_DAC_OVERRIDE, which ECS keeps by
    # default. Everyone else, even members of the sidecar's group, is refused by mode 0400.
    "app-root": Case(None, {}, ("400", SIDECAR_UID, SIDECAR_UID), "0:0", ("2000:2000", f"2000:{SIDECAR_UID}")),
    # (2) The app runs as the sidecar's uid: default settings; the owner reads, no one else.
    "app-same-uid": Case(None, {}, ("400", SIDECAR_UID, SIDECAR_UID), f"{SIDECAR_UID}:{SIDECAR_UID}",
                         ("2000:2000", f"2000:{SIDECAR_UID}")),
    # (3) The app runs as another non-root uid: the sidecar runs with the app's gid as its primary group and
    # writes 0440, so the app reads through the group, without root anywhere.
    "app-other-uid": Case("10001:3000", {"SIDECAR_FILE_MODE": "0440"}, ("440", SIDECAR_UID, 3000), "2000:3000",
                          ("2001:2001", "2000:2000", f"{SIDECAR_UID + 1}:{SIDECAR_UID}")),
    # (3, alternative) A root sidecar gives the files to the app's uid and gid (the task-definition linter
    # warns about a root container): the app reads as owner.
    "app-other-uid-root-sidecar": Case("0:0", {"SIDECAR_UID": "2000", "SIDECAR_GID": "2000"}, ("400", 2000, 2000),
                                       "2000:2000", ("2001:2001", f"{SIDECAR_UID}:{SIDECAR_UID}", "2001:2000")),
}


def seed_password(aws: Any, guard: SecretValues) -> tuple[str, bytes]:
    value = str(guard.add("ownership-pa55word-c41e"))
    aws.secretsmanager.create_secret(Name="owned/db", SecretString=value)
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:owned/db", value.encode()


@pytest.mark.parametrize("case_name", list(CASES))
def test_the_app_reads_and_nobody_else_does(
    case_name: str, container_aws: Any, network: str, volume: str,
    secret_values: SecretValues,
) -> None:
    case = CASES[case_name]
    reference, value = seed_password(container_aws, secret_values)
    result = run_sidecar_container(network, volume, {"SIDECAR_SECRET_db_password": reference, **case.settings},
                                   user=case.sidecar_user)
    assert result.code == 0, result.stdout + result.stderr

    tree = volume_tree(volume)
    mode, uid, gid = case.owner
    payload_file = tree["..data"][4] + "/db_password"
    assert tree[payload_file][:4] == ("f", mode, uid, gid)

    read = run_in_app(volume, case.app, "cat", "/run/secrets/db_password")
    assert read.code == 0, read.stderr
    assert read.stdout.encode() == value
    for other in case.refused:
        refused = run_in_app(volume, other, "cat", "/run/secrets/db_password")
        assert refused.code != 0, f"user {other} could read the file"
        assert refused.stdout == ""
        assert "Permission denied" in refused.stderr


def test_root_app_without_dac_override_cannot_read_the_default_files(
    container_aws: Any, network: str, volume: str, secret_values: SecretValues,
) -> None:
    """Case (1) relies on root's CAP_DAC_OVERRIDE: an app that drops all capabilities is an ordinary user
    and needs case (2) or (3) settings instead."""
    reference, value = seed_password(container_aws, secret_values)
    result = run_sidecar_container(network, volume, {"SIDECAR_SECRET_db_password": reference})
    assert result.code == 0, result.stdout + result.stderr
    refused = run_in_app(volume, "0:0", "cat", "/run/secrets/db_password", extra=("--cap-drop", "ALL"))
    assert refused.code != 0 and "Permission denied" in refused.stderr
    allowed = run_in_app(volume, "0:0", "cat", "/run/secrets/db_password")
    assert allowed.code == 0 and allowed.stdout.encode() == value
