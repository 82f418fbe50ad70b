"""``reader-cannot-read`` / ``reader-user-unknown``: each reader can read each file, as the kernel decides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.lint import lint
from sidecar.lint.readability import Node, can_access

from .tasks import EXAMPLES, container, good_task, hits, refresh_task, rules_hit, set_env, unset_env

SIDECAR = "secrets-sidecar"
Task = dict[str, Any]


def readme_snippet_as_first_shipped() -> Task:
    """The README's snippet before it was fixed: sidecar "10001", default mode 0400, app "1000:1000"."""
    task = good_task()
    container(task, SIDECAR)["user"] = "10001"
    unset_env(task, SIDECAR, "SIDECAR_FILE_MODE")
    return task


def test_the_readme_snippet_as_first_shipped_is_an_error_naming_the_fix() -> None:
    task = readme_snippet_as_first_shipped()
    assert rules_hit(task) == {("reader-cannot-read", "error", "app")}
    (finding,) = hits(task, "reader-cannot-read")
    assert "runs as '1000:1000' and cannot read 'db_password', 'db_username', 'api_key', 'tls/server.pem'" \
        in finding.message
    assert "(mode and owner 0400 10001:10001)" in finding.message
    assert '"user": "10001:1000" on \'secrets-sidecar\' with SIDECAR_FILE_MODE "0440"' in finding.fix
    assert "or run the reader as the files' owner, uid 10001" in finding.fix


@pytest.mark.parametrize(
    ("sidecar_user", "mode", "app_user", "readable"),
    [
        ("10001:1000", "0440", "1000:1000", True),  # the recommended design: the app's group
        ("10001:1000", "0400", "1000:1000", False),  # group, but the group may not read
        ("10001", "0400", "10001:10001", True),  # the same uid
        ("10001", "0400", "10001", True),  # the same uid, gid from the app's image: the owner's bits decide
        ("10001", "0444", "2000:2000", True),  # world-readable (sidecar-config warns about it)
        ("10001:1000", "0440", "2000:3000", False),
        (None, "0400", "1000:1000", False),  # no user: the image's 10001:10001
        ("0", "0400", "0", True),  # root reads through CAP_DAC_OVERRIDE
    ],
)
def test_the_kernels_rule_decides(sidecar_user: str | None, mode: str, app_user: str, readable: bool) -> None:
    task = good_task()
    if sidecar_user is None:
        container(task, SIDECAR).pop("user")
    else:
        container(task, SIDECAR)["user"] = sidecar_user
    set_env(task, SIDECAR, "SIDECAR_FILE_MODE", mode)
    container(task, "app")["user"] = app_user
    assert [f.severity for f in hits(task, "reader-cannot-read")] == ([] if readable else ["error"])


def test_a_root_reader_that_dropped_its_capabilities_is_an_ordinary_uid() -> None:
    task = good_task()
    container(task, "app")["user"] = "0:0"
    assert hits(task, "reader-cannot-read") == []
    container(task, "app")["linuxParameters"] = {"capabilities": {"drop": ["ALL"]}}
    assert [f.container for f in hits(task, "reader-cannot-read")] == ["app"]
    container(task, "app")["linuxParameters"]["capabilities"]["add"] = ["CAP_DAC_READ_SEARCH"]
    assert hits(task, "reader-cannot-read") == []


def test_per_entry_modes_and_owners_are_checked_entry_by_entry() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", json.dumps([
        {"name": "shared", "valueFrom": "/prod/app/shared"},
        {"name": "private", "valueFrom": "/prod/app/private", "mode": "0400"},
        {"name": "other-group", "valueFrom": "/prod/app/other", "gid": 2000},
    ]))
    (finding,) = hits(task, "reader-cannot-read")
    assert "cannot read 'private', 'other-group'" in finding.message
    assert "modes and owners 0400 10001:1000, 0440 10001:2000" in finding.message


def test_a_parameter_trees_files_are_checked_as_its_directorys() -> None:
    task = good_task()
    set_env(task, SIDECAR, "SIDECAR_SECRETS", json.dumps([
        {"name": "shared", "parametersByPath": "/prod/app/shared"},
        {"name": "private", "parametersByPath": "/prod/app/private", "mode": "0400"},
    ]))
    (finding,) = hits(task, "reader-cannot-read")
    assert "cannot read 'private/*'" in finding.message
    assert "'shared" not in finding.message


def test_a_numeric_uid_without_gid_is_a_warning_when_the_group_decides() -> None:
    task = good_task()
    container(task, "app")["user"] = "1000"
    (finding,) = hits(task, "reader-user-unknown")
    assert finding.severity == "warning"
    assert '"1000:1000"' in finding.fix


@pytest.mark.parametrize("user", [None, "app", "app:app"])
def test_a_reader_without_a_numeric_user_is_a_warning(user: str | None) -> None:
    task = good_task()
    if user is None:
        container(task, "app").pop("user")
    else:
        container(task, "app")["user"] = user
    assert rules_hit(task) == {("reader-user-unknown", "warning", "app")}
    set_env(task, SIDECAR, "SIDECAR_FILE_MODE", "0444")
    assert hits(task, "reader-user-unknown") == []  # anyone can read them


def test_every_reader_is_checked_and_containers_that_do_not_mount_the_volume_are_not() -> None:
    task = good_task()
    worker = {**container(task, "app"), "name": "worker", "user": "2000:2000"}
    log_router = {"name": "log_router", "image": "example.com/fluent-bit:1", "user": "0:0",
                  "linuxParameters": {"capabilities": {"drop": ["ALL"]}}}
    task["containerDefinitions"] += [worker, log_router]
    assert [f.container for f in hits(task, "reader-cannot-read")] == ["worker"]


def test_a_tmpfs_directory_the_reader_cannot_enter_is_an_error() -> None:
    task = json.loads((EXAMPLES / "ec2-tmpfs.json").read_text())
    assert lint(task) == []
    task["volumes"][0]["dockerVolumeConfiguration"]["driverOpts"]["o"] = "size=1m,uid=10001,gid=10001,mode=0750"
    (finding,) = hits(task, "reader-cannot-read")
    assert "cannot enter the secrets volume" in finding.message
    assert "0750 10001:10001" in finding.message


def test_the_refresh_example_reads_as_the_files_owner() -> None:
    task = refresh_task()
    assert container(task, "app")["user"] == "10001:1000"
    assert hits(task, "reader-cannot-read") == []


@pytest.mark.parametrize(
    ("uid", "gid", "expected"),
    [(10001, None, True), (1000, 1000, True), (1000, 2000, False), (1000, None, None), (0, 0, True)],
)
def test_can_access_is_the_kernels_owner_group_other_rule(uid: int, gid: int | None, expected: bool | None) -> None:
    assert can_access(Node("f", 0o440, 10001, 1000), uid, gid, privileged=True) is expected
