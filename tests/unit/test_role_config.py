"""The role to assume: SIDECAR_ROLE_ARN / --role-arn / the file's roleArn, and an entry's own roleArn. Its ARN's
shape is checked at load (exit 2, one line); ``check`` shows the role of every call and file."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import structlog

from sidecar.cli import main
from sidecar.config import load_settings
from sidecar.errors import ConfigError
from sidecar.settings.model import Settings

READER = "arn:aws:iam::111111111111:role/reader"
AUDITOR = "arn:aws:iam::222222222222:role/team/auditor"
SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:shared/db-AbCdEf"
BASE_ENV = {"AWS_REGION": "eu-west-1"}
SHAPE = "arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME"


def load(env: dict[str, str], **flags: str) -> Settings:
    return load_settings(flags, {**BASE_ENV, **env}, process_uid=1000, process_gid=1000)


def error(env: dict[str, str], **flags: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(env, **flags)
    return caught.value.message


def secrets(*entries: dict[str, object]) -> dict[str, str]:
    return {"SIDECAR_SECRETS": json.dumps(list(entries))}


def roles(settings: Settings) -> dict[str, list[str | None]]:
    return {e.name: [ref.target.role_arn for ref in e.references] for e in settings.entries}


def test_no_role_by_default() -> None:
    settings = load(secrets({"name": "a", "valueFrom": "/p/a"}))
    assert (settings.role_arn, roles(settings)) == (None, {"a": [None]})


def test_the_global_role_reads_every_entry_without_its_own_and_an_entrys_own_wins() -> None:
    settings = load({
        **secrets(
            {"name": "a", "valueFrom": "/p/a"},
            {"name": "b", "valueFrom": SECRET, "roleArn": AUDITOR},
            {"name": "t", "template": "{{ x }}:{{ y }}", "inputs": {"x": "/p/x", "y": f"{SECRET}:user::"},
             "roleArn": AUDITOR},
            {"name": "u", "template": "{{ x }}", "inputs": {"x": "/p/x"}},
        ),
        "SIDECAR_ROLE_ARN": READER, "SIDECAR_SECRET_short": "/p/s",
    })
    assert settings.role_arn == READER
    assert roles(settings) == {"a": [READER], "b": [AUDITOR], "t": [AUDITOR, AUDITOR], "u": [READER],
                               "short": [READER]}


def test_the_flag_wins_over_the_environment_and_the_environment_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"roleArn": AUDITOR, "secrets": [{"name": "a", "valueFrom": "/p/a"}]}))
    from_file = load({"SIDECAR_CONFIG_FILE": str(config)})
    from_env = load({"SIDECAR_CONFIG_FILE": str(config), "SIDECAR_ROLE_ARN": READER})
    from_flag = load({"SIDECAR_CONFIG_FILE": str(config), "SIDECAR_ROLE_ARN": READER}, roleArn=AUDITOR)
    assert [s.role_arn for s in (from_file, from_env, from_flag)] == [AUDITOR, READER, AUDITOR]


@pytest.mark.parametrize(("role", "message"), [
    ("reader", f"'reader' is not an ARN; expected {SHAPE}"),
    ("arn:aws:iam::111111111111:user/bob", f"'arn:aws:iam::111111111111:user/bob' names an IAM user, not a role; "
     f"expected {SHAPE}"),
    ("arn:aws:iam:eu-west-1:111111111111:role/reader", "'arn:aws:iam:eu-west-1:111111111111:role/reader': an IAM "
     f"ARN has no region ('eu-west-1'); expected {SHAPE}"),
    ("arn:aws:iam::1111:role/reader", "'arn:aws:iam::1111:role/reader': the account '1111' is not 12 digits"),
    ("arn:aws:sts::111111111111:assumed-role/reader/session", "'arn:aws:sts::111111111111:assumed-role/reader/"
     f"session' is a role session's ARN (sts:...:assumed-role/...); give the role's own ARN, {SHAPE}"),
    ("arn:aws:iam::111111111111:role/read er", "'arn:aws:iam::111111111111:role/read er': the role name 'read er' "
     "is not 1-64 letters, digits and +=,.@_-"),
    ("arn:aws:iam::111111111111:role/" + "r" * 65, f"'arn:aws:iam::111111111111:role/{'r' * 65}': the role name "
     f"'{'r' * 65}' is not 1-64 letters, digits and +=,.@_-"),
    ("arn:aws:iam::111111111111:role//reader", "'arn:aws:iam::111111111111:role//reader': the role path '//' is "
     "not / or printable ASCII between two slashes, at most 512 characters in all"),
    ("arn:aws:s3:::bucket", f"'arn:aws:s3:::bucket' is not an IAM role ARN; expected {SHAPE}"),
    (" " + READER, f"' {READER}' has whitespace or a NUL character; expected {SHAPE}"),
    ("", f"must be an IAM role ARN, {SHAPE}"),
])
def test_a_role_arn_of_the_wrong_shape_is_a_precise_configuration_error(role: str, message: str) -> None:
    assert error({**secrets({"name": "a", "valueFrom": "/p/a"}), "SIDECAR_ROLE_ARN": role}) == (
        f"SIDECAR_ROLE_ARN: {message}")
    assert error({**secrets({"name": "a", "valueFrom": "/p/a"})}, roleArn=role) == f"--role-arn: {message}"


@pytest.mark.parametrize("role", [
    READER, "arn:aws-cn:iam::111111111111:role/reader", "arn:aws-us-gov:iam::111111111111:role/a/b/c/reader",
    "arn:aws:iam::111111111111:role/service-role/x+=,.@_-y", "arn:aws:iam::111111111111:role/" + "r" * 64,
])
def test_role_arns_of_every_partition_and_path_are_accepted(role: str) -> None:
    assert load({**secrets({"name": "a", "valueFrom": "/p/a"}), "SIDECAR_ROLE_ARN": role}).role_arn == role


def test_an_entrys_role_arn_is_checked_and_named_with_the_entry() -> None:
    assert error(secrets({"name": "a", "valueFrom": "/p/a", "roleArn": 7})) == (
        f"SIDECAR_SECRETS[0] ('a'): roleArn: must be an IAM role ARN, {SHAPE}")
    assert error(secrets({"name": "t", "template": "{{ x }}", "inputs": {"x": "/p/x"}, "roleArn": "x"})) == (
        f"SIDECAR_SECRETS[0] ('t'): roleArn: 'x' is not an ARN; expected {SHAPE}")
    assert error(secrets({"name": "a", "valueFrom": "/p/a", "rolearn": READER})) == (
        "SIDECAR_SECRETS[0]: unknown key 'rolearn' (did you mean roleArn?)")


def check(environ: dict[str, str], *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", *args], {**BASE_ENV, **environ})
    structlog.reset_defaults()
    return code, out.getvalue()


def test_check_shows_the_role_of_each_call_and_file() -> None:
    environ = {**secrets({"name": "a", "valueFrom": "/p/a"}, {"name": "b", "valueFrom": "/p/a", "roleArn": AUDITOR},
                         {"name": "c", "valueFrom": "/p/c"}),
               "SIDECAR_SECRET_d": "/p/d", "SIDECAR_UID": "1000", "SIDECAR_GID": "1000"}
    code, text = check(environ)
    assert code == 0, text
    assert "  call  ssm GetParameters in eu-west-1: parameter /p/a in eu-west-1, parameter /p/c in eu-west-1, " \
        "parameter /p/d in eu-west-1\n" in text
    assert f"  call  ssm GetParameters in eu-west-1 as {AUDITOR}: parameter /p/a in eu-west-1\n" in text
    assert f"  file  b  mode 0400  owner 1000:1000  <- /p/a  as {AUDITOR}\n" in text
    assert "  file  a  mode 0400  owner 1000:1000  <- /p/a\n" in text
    code, text = check(environ, "--json", "--role-arn", READER)
    plan = json.loads(text)
    assert [(c["operation"], c.get("roleArn"), len(c["targets"])) for c in plan["calls"]] == [
        ("GetParameters", READER, 3), ("GetParameters", AUDITOR, 1)]
    assert {f["name"]: f.get("roleArn") for f in plan["files"]} == {"a": READER, "b": AUDITOR, "c": READER,
                                                                   "d": READER}
