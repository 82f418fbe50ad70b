"""``parametersByPath``: every parameter under an SSM path as a file, read page by page with
GetParametersByPath, by the real process against the moto server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import REGION, SecretValues, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, throttle
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, full_state, owner_and_mode, secrets_json

BY_PATH = "AmazonSSM.GetParametersByPath"


def _env(endpoint: str, outdir: Path, *entries: dict[str, Any], **settings: str) -> dict[str, str]:
    return sidecar_env(endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries), **settings)


def _put(aws: Any, secret_values: SecretValues, parameters: dict[str, str], kind: str = "SecureString") -> None:
    for name, value in parameters.items():
        aws.ssm.put_parameter(Name=name, Value=secret_values.add(value), Type=kind)


def _tree(outdir: Path, name: str) -> dict[str, bytes]:
    root = outdir / name
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _seed_app(aws: Any, secret_values: SecretValues) -> dict[str, bytes]:
    """Thirteen parameters under /prod/app at three depths (two pages of ten), SecureString and String,
    and neighbours that are not under it."""
    secure = {f"/prod/app/db/replica{i:02d}": f"replica-password-{i:02d}" for i in range(9)}
    secure |= {"/prod/app/db/password": "db-pa55-w0rd", "/prod/app/api/keys/stripe": "sk-stripe-123"}
    _put(aws, secret_values, secure)
    _put(aws, secret_values, {"/prod/app/region": "eu-west-1-text", "/prod/app/feature": "flag-on-value"}, "String")
    _put(aws, secret_values, {"/prod/apple/pie": "not-in-the-tree", "/prod/other": "also-not-in-it"})
    return {name.removeprefix("/prod/app/"): value.encode() for name, value in {**secure,
            "/prod/app/region": "eu-west-1-text", "/prod/app/feature": "flag-on-value"}.items()}


def test_a_recursive_tree_of_more_than_a_page_is_written_decrypted(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    expected = _seed_app(aws, secret_values)
    assert len(expected) == 13

    result = run_sidecar(_env(aws.endpoint, outdir, {"name": "app", "parametersByPath": "/prod/app/", "mode": "0440"}))

    done = assert_ok(result)
    assert _tree(outdir, "app") == expected  # SecureString values decrypted, byte for byte
    assert owner_and_mode(outdir / "app" / "db" / "password")[2] == "0440"
    # 13 parameters at 10 a page: two pages, each its own API call.
    pages = api_calls(result, "GetParametersByPath")
    assert len(pages) == 2 and all(call["outcome"] == "ok" for call in pages)
    assert done["api_calls"] == 2
    assert done["files"] == 13
    manifest = json.loads((outdir / "..manifest.json").read_bytes())
    (record,) = manifest["entries"]
    assert record["source"] == {"service": "ssm", "region": REGION, "servedBy": REGION,
                                "parametersByPath": "/prod/app", "recursive": True}
    assert {f["path"]: f["versionId"] for f in record["files"]}["app/db/password"] == "1"


def test_without_recursion_only_the_first_level_is_written(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    _seed_app(aws, secret_values)

    result = run_sidecar(_env(aws.endpoint, outdir,
                              {"name": "app", "parametersByPath": "/prod/app", "recursive": False}))

    assert_ok(result)
    assert _tree(outdir, "app") == {"feature": b"flag-on-value", "region": b"eu-west-1-text"}
    assert result.event("done")["api_calls"] == 1


def test_each_page_is_retried_on_its_own_and_the_pages_before_it_are_kept(
    aws: Any, outdir: Path, moto: str, secret_values: SecretValues
) -> None:
    expected = _seed_app(aws, secret_values)
    with FaultProxy(moto) as proxy:
        second_page = throttle(BY_PATH, count=1)
        second_page.request_contains = b'"NextToken"'
        proxy.add(second_page)
        result = run_sidecar(_env(proxy.url, outdir, {"name": "app", "parametersByPath": "/prod/app"}))

    done = assert_ok(result)
    assert _tree(outdir, "app") == expected
    assert second_page.hits == 1
    assert [c["outcome"] for c in api_calls(result, "GetParametersByPath")] == ["ok", "ThrottlingException", "ok"]
    assert (done["api_calls"], done["retries"]) == (3, 1)


def test_an_empty_tree_fails_with_exit_3_and_leaves_the_previous_set(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    _put(aws, secret_values, {"/prod/apple/pie": "not-in-the-tree"})
    before = full_state(previous)

    result = run_sidecar(_env(aws.endpoint, previous, {"name": "app", "parametersByPath": "/prod/app"}))

    failed = assert_failed(result, 3)
    assert failed["reason"] == f"'app': there is no parameter under /prod/app in {REGION} (at any depth)"
    assert full_state(previous) == before


def test_an_optional_empty_tree_is_skipped_with_a_warning(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    _put(aws, secret_values, {"/prod/api/key": "api-key-value"})

    result = run_sidecar(_env(aws.endpoint, outdir,
                              {"name": "app", "parametersByPath": "/prod/app", "optional": True},
                              {"name": "key", "valueFrom": "/prod/api/key"}))

    done = assert_ok(result)
    assert result.event("optional_skipped")["name"] == "app"
    assert not (outdir / "app").exists()
    assert (outdir / "key").read_bytes() == b"api-key-value"
    assert (done["entries"], done["skipped"]) == (1, 1)


def test_a_parameter_whose_name_cannot_be_a_file_fails_by_position(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    # "..data" is a valid parameter name level, but a file name the sidecar keeps for its own files.
    _put(aws, secret_values, {"/prod/app/a": "first-value", "/prod/app/..data": "reserved-name-value"})
    before = full_state(previous)

    result = run_sidecar(_env(aws.endpoint, previous, {"name": "app", "parametersByPath": "/prod/app"}))

    failed = assert_failed(result, 3)
    assert failed["reason"] == (
        "'app': parameter #1 (in name order) under /prod/app cannot be a file: its name relative to the path has "
        "a component beginning with '..' (reserved for the sidecar's own files)"
    )
    assert full_state(previous) == before


def test_a_parameter_that_is_also_a_level_of_the_tree_fails(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    _put(aws, secret_values, {"/prod/app/db": "db-as-a-value", "/prod/app/db/password": "db-password-below"})
    before = full_state(previous)

    result = run_sidecar(_env(aws.endpoint, previous, {"name": "app", "parametersByPath": "/prod/app"}))

    assert_failed(result, 3, "'app': the parameters under /prod/app cannot all be files: 'app/db' is a file, so "
                  "'app/db/password' cannot be inside it")
    assert full_state(previous) == before


def test_an_arn_or_a_misplaced_key_is_a_configuration_error(
    aws: Any, previous: Path, secret_values: SecretValues
) -> None:
    cases = [
        ({"name": "app", "parametersByPath": f"arn:aws:ssm:{REGION}:123456789012:parameter/prod/app"},
         "is an ARN; GetParametersByPath takes a path beginning with '/'"),
        ({"name": "app", "parametersByPath": "/prod/app", "valueFrom": "/prod/app/db"},
         "give either valueFrom or parametersByPath, not both"),
        ({"name": "app", "parametersByPath": "/prod/app", "expand": True},
         "'expand' does not apply to a parametersByPath entry"),
        ({"name": "app", "parametersByPath": "prod/app"}, "must begin with '/'"),
        ({"name": "app", "valueFrom": "/prod/app/db", "recursive": False},
         "recursive applies only to parametersByPath"),
    ]
    before = full_state(previous)
    for entry, fragment in cases:
        result = run_sidecar(_env(aws.endpoint, previous, entry))
        assert_failed(result, 2, fragment)
        assert api_calls(result) == []
    assert full_state(previous) == before


def test_check_shows_the_path_and_its_recursion_offline(moto: str, outdir: Path, secret_values: SecretValues) -> None:
    env = _env(moto, outdir, {"name": "app", "parametersByPath": "/prod/app/"},
               {"name": "top", "parametersByPath": "/prod/top", "recursive": False, "optional": True})

    text = run_sidecar(env, "check", timeout=20)
    as_json = run_sidecar(env, "check", "--json", timeout=20)

    assert text.code == 0, text.stdout + text.stderr
    assert "configuration is valid: 2 entries, 2 API call(s)" in text.stdout
    assert (f"  call  ssm GetParametersByPath in {REGION}: parameters under /prod/app at every depth in {REGION}\n"
            in text.stdout)
    assert (f"  file  app/<each parameter>  mode 0400  owner {_ids()}  <- parametersByPath /prod/app (recursive) "
            f"in {REGION}\n" in text.stdout)
    assert (f"  file  top/<each parameter>  mode 0400  owner {_ids()} (optional)  <- parametersByPath /prod/top "
            f"(first level only) in {REGION}\n" in text.stdout)
    files = {f["name"]: f for f in json.loads(as_json.stdout)["files"]}
    assert (files["app/<each parameter>"]["parametersByPath"], files["app/<each parameter>"]["recursive"]) == (
        "/prod/app", True)
    assert files["top/<each parameter>"]["recursive"] is False
    assert api_calls(text) == [] and os.listdir(outdir) == []


def _ids() -> str:
    return f"{os.getuid()}:{os.getgid()}"
