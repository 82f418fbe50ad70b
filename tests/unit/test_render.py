from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.config import load_settings
from sidecar.errors import FetchError
from sidecar.outcomes import Failure, Fetched
from sidecar.render import render
from sidecar.secret import SecretBytes

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"


def settings_for(*entries: dict[str, object], **env: str):  # type: ignore[no-untyped-def]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(list(entries)), **env}
    return load_settings({}, environ, process_uid=1000, process_gid=1000)


def fetched(value: bytes | str, version: str | None = "v1") -> Fetched:
    return Fetched(SecretBytes(value.encode() if isinstance(value, str) else value), version)


def files_of(settings, outcomes) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {f.path: f.content.reveal() for f in render(settings, outcomes).files}


DOC = json.dumps({"username": "app", "port": 5432, "tls": True, "opts": {"b": 1, "a": [1, "x"]}, "none": None})


@pytest.mark.parametrize(
    ("key", "expected"),
    [("username", b"app"), ("port", b"5432"), ("tls", b"true"), ("opts", b'{"a":[1,"x"],"b":1}'), ("none", b"null")],
)
def test_json_key_values(key: str, expected: bytes) -> None:
    settings = settings_for({"name": "v", "valueFrom": f"{ARN}:{key}::"})
    assert files_of(settings, {settings.entries[0].reference.target: fetched(DOC)}) == {"v": expected}


def test_values_are_written_exactly() -> None:
    settings = settings_for({"name": "bin", "valueFrom": ARN}, {"name": "text", "valueFrom": "/p/t"})
    binary = bytes(range(256))
    outcomes = {settings.entries[0].reference.target: fetched(binary),
                settings.entries[1].reference.target: fetched("line\n")}
    assert files_of(settings, outcomes) == {"bin": binary, "text": b"line\n"}


def test_expand_writes_one_file_per_key() -> None:
    settings = settings_for({"name": "db", "valueFrom": ARN, "expand": True, "mode": "0440"})
    result = render(settings, {settings.entries[0].reference.target: fetched(DOC)})
    assert {f.path: f.content.reveal() for f in result.files} == {
        "db/username": b"app", "db/port": b"5432", "db/tls": b"true", "db/opts": b'{"a":[1,"x"],"b":1}',
        "db/none": b"null",
    }
    assert {f.mode for f in result.files} == {0o440}


@pytest.mark.parametrize(("bad_key", "why"), [
    ("../x", "beginning with '..'"), ("a/b", "contains '/' or NUL"), ("", "empty path component"),
    ("..hidden-key", "beginning with '..'"), ("x\x00", "contains '/' or NUL"), ("k" * 400, "longer than 255 bytes"),
    ("line-one\nline-two", "control character"),
])
def test_expand_rejects_keys_that_are_not_file_names_without_showing_them(bad_key: str, why: str) -> None:
    """A key is secret content: the message says which key (its position) and why, never the key."""
    settings = settings_for({"name": "db", "valueFrom": ARN, "expand": True})
    document = {"good": "s3cr3t-value", bad_key: "s3cr3t-value"}
    with pytest.raises(FetchError) as caught:
        render(settings, {settings.entries[0].reference.target: fetched(json.dumps(document))})
    assert caught.value.message.startswith("'db': key #2 of the JSON secret cannot be a file name: it ")
    assert why in caught.value.message
    assert "s3cr3t" not in caught.value.message
    parts = {bad_key, *bad_key.split("/"), *bad_key.split("\n"), repr(bad_key)[1:-1]}
    for part in [p for p in parts if len(p) >= 3]:
        assert part not in caught.value.message, part


def test_files_of_expanded_keys_are_shown_by_position() -> None:
    expand = {"name": "db", "valueFrom": ARN, "expand": True}
    settings = settings_for(expand, SIDECAR_ENV_FILE="app.env")
    target = settings.entries[0].reference.target
    files = render(settings, {target: fetched(json.dumps({"port": "1", "user_key_text": "x"}))}).files
    assert [(f.path, f.shown) for f in files[:2]] == [("db/port", "db/<key #1>"), ("db/user_key_text", "db/<key #2>")]
    with pytest.raises(FetchError) as caught:
        render(settings, {target: fetched(json.dumps({"port": "1", "user-key-text": "x"}))})
    assert caught.value.message == (
        "'db': the name of 'db/<key #2>' cannot be an environment variable name in the env file")
    twice = settings_for(expand, {"name": "db_user_key_text", "valueFrom": "/p/a"}, SIDECAR_ENV_FILE="app.env")
    with pytest.raises(FetchError) as caught:
        render(twice, {target: fetched(json.dumps({"user_key_text": "x"})),
                       twice.entries[1].reference.target: fetched(b"y")})
    assert "'db/<key #1>' and 'db_user_key_text' would both be the same variable" in caught.value.message
    inside = settings_for(expand, {"name": "db/user_key_text", "valueFrom": "/p/a"})
    with pytest.raises(FetchError) as caught:
        render(inside, {target: fetched(json.dumps({"user_key_text": "x"})),
                        inside.entries[1].reference.target: fetched(b"y")})
    assert caught.value.message == (
        "expanded keys collide: names 'db/<key #1>' and 'db/user_key_text' are the same file")


@pytest.mark.parametrize(
    ("value", "entry", "message"),
    [
        ("not json s3cr3t", {"valueFrom": f"{ARN}:k::"}, "is not JSON"),
        ('["s3cr3t"]', {"valueFrom": f"{ARN}:k::"}, "holds a JSON list"),
        ('{"other": "s3cr3t"}', {"valueFrom": f"{ARN}:k::"}, "has no key 'k'"),
        ('"s3cr3t"', {"valueFrom": ARN, "expand": True}, "holds a JSON str"),
    ],
)
def test_json_errors_name_secret_and_key_never_the_value(value: str, entry: dict[str, object], message: str) -> None:
    settings = settings_for({"name": "n", **entry})
    with pytest.raises(FetchError) as caught:
        render(settings, {settings.entries[0].reference.target: fetched(value)})
    assert message in caught.value.message
    assert "prod/db-AbCdEf" in caught.value.message
    assert "s3cr3t" not in caught.value.message
    assert (caught.value.__cause__ is None and caught.value.__context__ is None) or "s3cr3t" not in repr(
        caught.value.__context__
    )


def test_failures_fail_the_run_except_optional_not_found() -> None:
    settings = settings_for({"name": "a", "valueFrom": "/p/a", "optional": True}, {"name": "b", "valueFrom": "/p/b"})
    a, b = (e.reference.target for e in settings.entries)
    result = render(settings, {a: Failure("ParameterNotFound", "gone", not_found=True), b: fetched("x")})
    assert [f.path for f in result.files] == ["b"]
    assert result.skipped == (("a", "gone"),)
    with pytest.raises(FetchError, match="'b': denied"):
        render(settings, {a: fetched("x"), b: Failure("AccessDeniedException", "denied")})
    with pytest.raises(FetchError, match="'a': denied"):
        render(settings, {a: Failure("AccessDeniedException", "denied"), b: fetched("x")})


def test_manifest_is_value_free() -> None:
    settings = settings_for({"name": "a", "valueFrom": f"{ARN}:password::"})
    result = render(settings, {settings.entries[0].reference.target: fetched('{"password": "s3cr3t-value"}', "v7")})
    manifest = json.loads(result.manifest)
    assert b"s3cr3t" not in result.manifest
    assert manifest["entries"] == [{
        "name": "a",
        "source": {"service": "secretsmanager", "region": "eu-west-1", "servedBy": "eu-west-1",
                   "valueFrom": f"{ARN}:password::", "versionId": "v7"},
        "files": [{"path": "a", "bytes": 12, "mode": "0400", "uid": 1000, "gid": 1000}],
    }]


NASTY = ["plain", "it's", "a'b'c''", "$HOME `id` $(id)", "back\\slash\\", "new\nline\n", "tab\tend", "ünï €", "", " "]


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_env_file_round_trips_through_posix_shells(shell: str) -> None:
    entries = [{"name": f"V{i}", "valueFrom": f"/p/{i}"} for i in range(len(NASTY))]
    settings = settings_for(*entries, SIDECAR_ENV_FILE="app.env")
    outcomes = {e.reference.target: fetched(v) for e, v in zip(settings.entries, NASTY, strict=True)}
    env_file = files_of(settings, outcomes)["app.env"]
    script = "set -a; . /dev/stdin; " + "; ".join(f'printf "%s\\0" "$V{i}"' for i in range(len(NASTY)))
    out = subprocess.run([shell, "-c", script], input=env_file, capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [v.encode() for v in NASTY]


def test_env_file_rejects_nul() -> None:
    settings = settings_for({"name": "A", "valueFrom": "/p/a"}, SIDECAR_ENV_FILE="app.env")
    with pytest.raises(FetchError, match="'A': the value holds a NUL byte"):
        render(settings, {settings.entries[0].reference.target: fetched(b"a\x00b")})


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=8), max_size=8))
def test_expanded_files_land_under_their_keys(document: dict[str, str]) -> None:
    settings = settings_for({"name": "d", "valueFrom": ARN, "expand": True})
    try:
        files = files_of(settings, {settings.entries[0].reference.target: fetched(json.dumps(document))})
    except FetchError as exc:
        assert "cannot be a file name" in exc.message or "collide" in exc.message
    else:
        assert files == {f"d/{k}": v.encode() for k, v in document.items()}
