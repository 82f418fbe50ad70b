"""Fuzzing with teeth: generated configurations (deep nesting, lone surrogates, huge numbers, wrong types,
hostile file names and files) through ``secrets-sidecar check`` in this process. Each must end in a documented
exit code (0 valid, 2 configuration error) with one final line saying why, no traceback, and nothing of the
process environment's secrets in anything printed.

The ``fuzz`` profile runs FUZZ_EXAMPLES examples, with no deadline and no "too slow" health check: on a loaded
machine a slow example is not a failure. tests/e2e/test_hostile_config.py runs a sample through the real
process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar import aws
from sidecar.cli import main
from sidecar.settings.entries import ENTRY_KEYS
from sidecar.settings.options import OPTIONS
from tests.conftest import SecretValues

pytestmark = pytest.mark.slow  # 1,100 configurations: a minute on a loaded machine, not the fast tier

FUZZ_EXAMPLES = 1_000
settings.register_profile(
    "fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)

# Secrets a task's environment may hold beside the sidecar's settings: no message may ever print them.
ENVIRONMENT_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "fuzz-aws-secret-key-7f3a9c",
    "AWS_SESSION_TOKEN": "fuzz-session-token-b81e44",
    "DB_PASSWORD": "fuzz-db-password-19d0e2",
}


def deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


_FILES = Path(tempfile.mkdtemp(prefix="sidecar-fuzz-"))
(_FILES / "nul.tmpl").write_bytes(b"a\x00b {{ s }}")
(_FILES / "latin1.tmpl").write_bytes(b"caf\xe9 {{ s }}")
(_FILES / "ok.tmpl").write_bytes(b"url={{ s | url }}")
(_FILES / "deep.json").write_text('{"secrets": ' + deep(50_000) + "}")
(_FILES / "not-utf8.json").write_bytes(b'{"secrets": "\xff"}')
(_FILES / "dir").mkdir()
os.mkfifo(_FILES / "fifo")  # a templateFile that is a FIFO must not block the configuration

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udcff", "\udfff\ud800", "..", "../x", "/abs", "..data", "a//b", "a/",
    "k" * 400, "line\nbreak", "\x1b[31m", "\u202e", "0", "-1", "1e10", "1e300", "1e400", "inf", "-inf", "nan",
    "9" * 5000, "0o777", "0777", "4777", "HUP", "SIGKILL", "auto", "json", "eu-west-1", "us-gov-west-1",
    "/app/db", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:key::", "s3://bucket/key", "s3://",
    "arn:aws:ssm:eu-west-1:123456789012:parameter/x", "{{ s }}", "{{", "{{ s | nope }}", deep(1200), deep(10),
    deep(1200, "{\"a\":", "}").replace("}" * 1200, "1" + "}" * 1200), '["/bin/true"]', '["/bin/x", "a\\u0000b"]',
    '["\\ud800"]', "[]", "{}", str(_FILES / "nul.tmpl"), str(_FILES / "latin1.tmpl"), str(_FILES / "ok.tmpl"),
    str(_FILES / "dir"), str(_FILES / "missing"), str(_FILES / "fifo"),
]
text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12),
                 st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Lo", "Nd"]), max_size=6))
numbers = st.one_of(st.integers(), st.integers(min_value=10**20, max_value=10**300), st.floats(),
                    st.sampled_from([0, -1, 1, 2**32, 2**63, 1e10, 1e308]))
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner,
                                                                                               max_size=3),
                           max_leaves=6)


@st.composite
def entries(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even an object
    keys = draw(st.lists(st.sampled_from([*ENTRY_KEYS, "valuefrom", "extra"]), max_size=6, unique=True))
    entry: dict[str, object] = {"name": draw(text), "valueFrom": draw(text)} if draw(st.booleans()) else {}
    for key in keys:
        entry[key] = draw(st.one_of(json_values, text, st.dictionaries(text, text, max_size=2)))
    return entry


def _json(value: object) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (ValueError, RecursionError):
        return "null"


VALID_REFERENCES = ["/app/db", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:user::", "s3://bucket/key.json",
                    "arn:aws:ssm:us-east-1:123456789012:parameter/x"]
valid_entries = st.builds(
    lambda name, reference, extra: {"name": name, "valueFrom": reference, **extra},
    st.sampled_from(["db", "api_key", "dir/x", "tls.pem"]), st.sampled_from(VALID_REFERENCES),
    st.fixed_dictionaries({}, optional={"mode": st.sampled_from(["0400", "0440"]), "optional": st.booleans(),
                                        "uid": st.integers(0, 65534)}))


@st.composite
def configurations(draw: st.DrawFn) -> tuple[list[str], dict[str, str]]:
    """Half start from a valid configuration and change at most one thing; half are built from anything."""
    environ: dict[str, str] = {"AWS_REGION": "eu-west-1", **ENVIRONMENT_SECRETS}
    if draw(st.booleans()):
        listed = draw(st.lists(valid_entries, min_size=1, max_size=3, unique_by=lambda e: e["name"]))
        environ["SIDECAR_SECRETS"] = _json(listed)
        if draw(st.booleans()):
            environ[draw(st.sampled_from(OPTIONS)).env] = draw(text)
        return [], environ
    environ["AWS_REGION"] = draw(st.sampled_from(["eu-west-1", "\ud800", "mars-north-9"]))
    for option in draw(st.lists(st.sampled_from(OPTIONS), max_size=6, unique=True)):
        environ[option.env] = draw(text)
    if draw(st.booleans()):
        listed = draw(st.lists(entries(), max_size=4))
        environ["SIDECAR_SECRETS"] = draw(st.one_of(st.just(_json(listed)), text))
    for _ in range(draw(st.integers(0, 2))):
        environ[f"SIDECAR_SECRET_{draw(text)}"] = draw(text)
    if draw(st.integers(0, 5)) == 0:
        environ[draw(st.sampled_from(["SIDECAR_BOGUS", "SIDECAR_SECRET_", "SIDECAR_CONFIG_FILE"]))] = draw(text)
    if draw(st.integers(0, 4)) == 0:
        path = _FILES / f"config-{draw(st.integers(0, 10**9))}.json"
        content = draw(st.one_of(
            st.builds(lambda secrets, extra: _json({"secrets": secrets, **extra}), st.lists(entries(), max_size=3),
                      st.dictionaries(st.sampled_from([o.key for o in OPTIONS] + ["bogus"]), json_values,
                                      max_size=3)),
            text, st.sampled_from([(_FILES / "deep.json").read_text()])))
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        environ["SIDECAR_CONFIG_FILE"] = draw(st.sampled_from([str(path), str(path), str(_FILES / "not-utf8.json"),
                                                               str(_FILES / "dir"), str(_FILES / "missing")]))
    flags: list[str] = []
    for option in draw(st.lists(st.sampled_from(OPTIONS), max_size=2, unique=True)):
        flags += [option.flag, draw(text)]
    return flags, environ


_REGIONS = aws.known_regions()


def _known_regions(_session: object = None) -> frozenset[str]:
    return _REGIONS


def check(flags: list[str], environ: dict[str, str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    # botocore's endpoint data parsed once, not once per example: the examples test the configuration.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch("sidecar.aws.known_regions", _known_regions):
        code = main(["check", *flags], environ)
    structlog.reset_defaults()
    return code, out.getvalue() + err.getvalue()


def assert_documented_outcome(code: int, output: str, configuration: object) -> None:
    assert code in (0, 2), f"exit {code} for {configuration!r}:\n{output[-2000:]}"
    assert "Traceback" not in output, output[-2000:]
    for secret in ENVIRONMENT_SECRETS.values():
        assert secret not in output, f"{secret} printed for {configuration!r}"
    if code == 2 and output:
        lines = output.splitlines()
        if lines[-1].startswith("{"):  # argparse's own usage errors come before the log line
            failed = json.loads(lines[-1])
            assert (failed["event"], failed["exit_code"]) == ("failed", 2), lines[-1]


@settings(settings.get_profile("fuzz"))
@given(configuration=configurations())
def test_generated_configurations_end_in_a_documented_exit_code(configuration: tuple[list[str], dict[str, str]],
                                                                secret_values: SecretValues) -> None:
    flags, environ = configuration
    for secret in ENVIRONMENT_SECRETS.values():
        secret_values.add(secret)
    code, output = check(flags, environ)
    assert_documented_outcome(code, output, configuration)


def test_the_fuzzer_reaches_valid_configurations_and_every_hostile_form() -> None:
    """A fuzzer that only ever produced garbage would prove little: some examples must be valid."""
    seen: dict[int, int] = {}

    @settings(settings.get_profile("fuzz"), max_examples=100)
    @given(configurations())
    def sample(configuration: tuple[list[str], dict[str, str]]) -> None:
        code, _ = check(*configuration)
        seen[code] = seen.get(code, 0) + 1

    sample()
    assert seen.get(2, 0) > 0
    assert seen.get(0, 0) > 0, seen
