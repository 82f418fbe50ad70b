"""Shared fixtures: one moto server over real HTTP per session, and the secrecy guard.

Every value a test seeds into AWS goes through ``secret_values.add``, which also records it for the whole
session. After every test, whether or not it seeded anything, the guard scans all output the test captured
(the sidecar processes' stdout and stderr, pytest's captured streams and log records) for every value
seeded so far in the session, and fails the test if one appears.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGION = "eu-west-1"
ACCOUNT = "123456789012"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SIDECAR = shutil.which("secrets-sidecar", path=os.path.dirname(sys.executable)) or "secrets-sidecar"
_MIN_SCANNED_LENGTH = 4  # shorter values ("app", "1") occur in ordinary text by chance
_SESSION_VALUES: set[bytes] = set()  # every value seeded by any test so far
_PROCESS_OUTPUTS: list[bytes] = []  # what sidecar processes printed during the current test


@dataclass
class SecretValues:
    """Values seeded into the fake AWS, and every output that must never contain them."""

    values: set[bytes] = field(default_factory=set)
    outputs: list[bytes] = field(default_factory=list)

    def add(self, value: str | bytes) -> str | bytes:
        raw = value.encode() if isinstance(value, str) else value
        if len(raw) >= _MIN_SCANNED_LENGTH:
            self.values.add(raw)
            _SESSION_VALUES.add(raw)
            if isinstance(value, str):
                # A JSON secret: every string inside it is a secret too.
                try:
                    document = json.loads(value)
                except ValueError:
                    document = None
                if isinstance(document, dict):
                    for item in document.values():
                        if isinstance(item, str | int | float) and not isinstance(item, bool):
                            self.add(str(item))
        return value

    def leaks(self) -> list[str]:
        found = []
        for output in self.outputs:
            for value in self.values | _SESSION_VALUES:
                if value in output:
                    found.append(f"{value[:12]!r}... in {output[:200]!r}")
        return found


@pytest.fixture(autouse=True)
def _secrecy_guard(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[SecretValues]:
    _PROCESS_OUTPUTS.clear()
    guard = SecretValues()
    yield guard
    out, err = capfd.readouterr()
    guard.outputs += [out.encode(), err.encode(), caplog.text.encode(), *_PROCESS_OUTPUTS]
    sys.stdout.write(out)
    sys.stderr.write(err)
    leaks = guard.leaks()
    assert not leaks, f"secret values leaked into output: {leaks}"


@pytest.fixture
def secret_values(_secrecy_guard: SecretValues) -> SecretValues:
    """Register every value a test seeds: ``secret_values.add(value)`` returns the value."""
    return _secrecy_guard


# --- moto -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """A moto server with empty state."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback URL we built
        pass
    return moto_endpoint


@pytest.fixture
def aws(moto: str) -> Any:
    """boto3 clients on the moto server, for seeding."""
    import boto3

    session = boto3.Session(
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )

    class Clients:
        endpoint = moto
        secretsmanager = session.client("secretsmanager", endpoint_url=moto)
        ssm = session.client("ssm", endpoint_url=moto)
        s3 = session.client("s3", endpoint_url=moto)
        kms = session.client("kms", endpoint_url=moto)

    return Clients


def sidecar_env(endpoint: str, **settings: str) -> dict[str, str]:
    """A clean environment for a sidecar process: dummy credentials, the moto endpoint, the settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIDECAR_"))}
    return {
        **base,
        **DUMMY_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        **settings,
    }


def record_process_output(*outputs: bytes) -> None:
    """For tests that start sidecar processes by other means: their output is scanned too."""
    _PROCESS_OUTPUTS.extend(outputs)


@dataclass
class SidecarResult:
    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any]:
        matches = [e for e in self.events if e.get("event") == name]
        assert len(matches) == 1, f"expected one {name!r} event, got {len(matches)}: {self.stdout}"
        return matches[0]

    @property
    def final(self) -> dict[str, Any]:
        return self.events[-1]


def run_sidecar(
    env: Mapping[str, str],
    *args: str,
    guard: SecretValues | None = None,
    timeout: float = 60,
) -> SidecarResult:
    """Run the installed ``secrets-sidecar`` console script as a real process."""
    completed = subprocess.run(
        [SIDECAR, *args], env=dict(env), capture_output=True, timeout=timeout, check=False
    )
    _PROCESS_OUTPUTS.extend([completed.stdout, completed.stderr])
    if guard is not None:
        guard.outputs += [completed.stdout, completed.stderr]
    return SidecarResult(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def snapshot(directory: Path) -> dict[str, tuple[str, bytes | str]]:
    """Everything under ``directory``: regular files' bytes, links' targets, directories."""
    result: dict[str, tuple[str, bytes | str]] = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if path.is_symlink():
            result[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            result[relative] = ("dir", "")
        else:
            result[relative] = ("file", path.read_bytes())
    return result
