"""Fixtures for tests that build the image and run it in a real Docker engine.

Without an engine these tests skip with the reason, except when ``SIDECAR_REQUIRE_CONTAINER_TESTS=1``
(set by ``.ci/run``), where a missing engine or base image fails them. Images are built once per session
(the sidecar image and the moto image, concurrently); one moto container on a user-defined network serves
every test and is reset before each. The host seeds moto through a port published on 127.0.0.1 only;
containers reach it by name on the network. Every container, volume and network a test creates is removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DUMMY_CREDENTIALS, REGION, SecretValues, SidecarResult, run_captured

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "SIDECAR_REQUIRE_CONTAINER_TESTS"
BASE_IMAGE = "python:3.13-slim"
APP_IMAGE = BASE_IMAGE  # stands in for an application image: it has a shell, cat and python
TAG = "test"
SIDECAR_IMAGE = f"ecs-secrets-sidecar:{TAG}"
MOTO_IMAGE = f"ecs-secrets-sidecar-moto:{TAG}"
SIDECAR_UID = 10001
# Everything a session creates carries this label, with a value of its own: the end-of-session sweep removes
# this session's leftovers and never those of another test run using the same engine at the same time.
LABEL = f"ecs-secrets-sidecar.test={secrets.token_hex(6)}"
BUILD_TIMEOUT_SECONDS = 600
RUN_TIMEOUT_SECONDS = 120
MOTO_READY_SECONDS = 30.0


def docker(*args: str, check: bool = True, timeout: float = RUN_TIMEOUT_SECONDS,
           env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False,
        env=None if env is None else dict(env),
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} ... exited {completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    return completed


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0:
        return f"`docker info` failed: {info.stderr.strip()[:300]}"
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        return (f"the base image {BASE_IMAGE} is not in the engine and is never pulled by the tests "
                f"(on a machine without a registry: ../shared/tools/container-engine base {BASE_IMAGE})")
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    problem = _engine_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"container tests are required ({REQUIRE_ENV}=1) but cannot run: {problem}")
    pytest.skip(f"no usable Docker engine: {problem}")


@pytest.fixture(scope="module")
def _module_secret_values() -> SecretValues:
    return SecretValues()


@pytest.fixture(scope="module")
def secret_values(_module_secret_values: SecretValues) -> SecretValues:
    """The secrecy guard's record, module-scoped so that it is still there when the root ``_secrecy_guard``
    reads it at teardown (after every function-scoped fixture is gone); emptied before each test."""
    return _module_secret_values


@pytest.fixture(autouse=True)
def _fresh_secret_values(_module_secret_values: SecretValues) -> None:
    _module_secret_values.values.clear()
    _module_secret_values.outputs.clear()


def source_revision() -> str:
    """The git commit of the checkout, as `make image` and the release workflow label the image."""
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                           check=False)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def image_build_args() -> list[str]:
    """The build arguments `make image` passes: the labels carry the package version and the revision."""
    from sidecar import __version__

    return ["--build-arg", f"VERSION={__version__}", "--build-arg", f"REVISION={source_revision()}"]


@pytest.fixture(scope="session")
def images(engine: None) -> tuple[str, str]:
    """Build the sidecar image and the moto image once per session, at the same time."""
    builds = {
        SIDECAR_IMAGE: subprocess.Popen(
            ["docker", "build", "-q", *image_build_args(), "-t", SIDECAR_IMAGE, str(REPO)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ),
        MOTO_IMAGE: subprocess.Popen(
            ["docker", "build", "-q", "-t", MOTO_IMAGE, str(REPO / "docker" / "moto")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ),
    }
    failures = []
    for tag, build in builds.items():
        _, err = build.communicate(timeout=BUILD_TIMEOUT_SECONDS)
        if build.returncode != 0:
            failures.append(f"docker build {tag} exited {build.returncode}:\n{err[-3000:]}")
    assert not failures, "\n".join(failures)
    return SIDECAR_IMAGE, MOTO_IMAGE


@pytest.fixture(scope="session")
def network(engine: None) -> Iterator[str]:
    name = f"ssc-test-{secrets.token_hex(4)}"
    docker("network", "create", "--label", LABEL, name)
    yield name
    _remove_network(name)


def _remove_network(name: str) -> None:
    """Remove a network, after any container still attached to it; the engine may take a moment to release
    the endpoint of a container just removed."""
    attached = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", name, check=False)
    if attached.stdout.split():
        docker("rm", "-f", *attached.stdout.split(), check=False)
    for _ in range(10):
        if docker("network", "rm", name, check=False).returncode == 0:
            return
        if docker("network", "inspect", name, check=False).returncode != 0:
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class MotoContainer:
    name: str
    host_endpoint: str  # for the test process: http://127.0.0.1:<published port>
    network_endpoint: str = "http://moto:5000"  # for containers on the test network

    def reset(self) -> None:
        url = f"{self.host_endpoint}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - loopback URL we built
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback URL we built
            pass


@pytest.fixture(scope="session")
def moto_container(images: tuple[str, str], network: str) -> Iterator[MotoContainer]:
    name = f"ssc-moto-{secrets.token_hex(4)}"
    docker("run", "-d", "--name", name, "--label", LABEL, "--network", network, "--network-alias", "moto",
           "-p", "127.0.0.1::5000", MOTO_IMAGE)
    try:
        port = docker("port", name, "5000/tcp").stdout.split()[0].rsplit(":", 1)[1]
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + MOTO_READY_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):  # noqa: S310 - loopback
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"moto container did not answer: {docker('logs', name).stderr}") from None
                time.sleep(0.2)
        yield MotoContainer(name, endpoint)
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture
def container_aws(moto_container: MotoContainer) -> Any:
    """boto3 clients on the (freshly reset) moto container, for seeding from the test process."""
    import boto3

    moto_container.reset()
    session = boto3.Session(
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    endpoint = moto_container.host_endpoint

    class Clients:
        secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
        ssm = session.client("ssm", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        kms = session.client("kms", endpoint_url=endpoint)

    return Clients


@pytest.fixture
def volume(engine: None) -> Iterator[str]:
    """A fresh named volume, like a new ECS task's bind-mount volume; removed after the test."""
    name = f"ssc-vol-{secrets.token_hex(4)}"
    docker("volume", "create", "--label", LABEL, name)
    yield name
    docker("volume", "rm", "-f", name, check=False)


# --- running containers -----------------------------------------------------------------------------------


class ContainerResult(SidecarResult):
    """A sidecar run inside a container: the same exit code, output and log events as a local process."""

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


def fake_aws_env(endpoint: str = "http://moto:5000") -> dict[str, str]:
    return {**DUMMY_CREDENTIALS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true"}


def run_sidecar_container(
    network: str,
    volume: str,
    settings: Mapping[str, str],
    *,
    user: str | None = None,
    args: Sequence[str] = (),
    mount: str = "/run/secrets",
    extra: Sequence[str] = (),
    image: str = SIDECAR_IMAGE,
) -> ContainerResult:
    """``docker run`` the sidecar image read-only, as its own user unless told, against the moto container."""
    command = ["run", "--rm", "--read-only", "--label", LABEL, "--network", network, "-v", f"{volume}:{mount}"]
    if user is not None:
        command += ["--user", user]
    for key, value in {**fake_aws_env(), **settings}.items():
        command += ["-e", f"{key}={value}"]
    completed = run_captured(["docker", *command, *extra, image, *args], timeout=RUN_TIMEOUT_SECONDS)
    return ContainerResult(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def run_in_app(volume: str, user: str, *command: str, extra: Sequence[str] = ()) -> ContainerResult:
    """Run ``command`` in an application-like container that mounts the volume read-only at /run/secrets.

    Its output may hold secret values: it is returned for assertions, never printed or logged.
    """
    completed = docker("run", "--rm", "--read-only", "--label", LABEL, "--network", "none", "--user", user,
                       "-v", f"{volume}:/run/secrets:ro", *extra, APP_IMAGE, *command, check=False)
    return ContainerResult(completed.returncode, completed.stdout, completed.stderr)


def volume_tree(volume: str) -> dict[str, tuple[str, str, int, int, str]]:
    """Every entry in the volume: relative path -> (type, octal mode, uid, gid, link target)."""
    listing = run_in_app(volume, "0:0", "find", "/run/secrets", "-printf", r"%P\t%y\t%m\t%U\t%G\t%l\n")
    assert listing.code == 0, listing.stderr
    tree = {}
    for line in listing.stdout.splitlines():
        path, kind, mode, uid, gid, target = line.split("\t")
        tree[path or "."] = (kind, mode, int(uid), int(gid), target)
    return tree


@pytest.fixture(scope="session", autouse=True)
def _remove_leftovers() -> Iterator[None]:
    """Whatever a failed test of this session left behind (labelled containers, volumes and networks) goes at
    the end of the session."""
    yield
    if shutil.which("docker") is None or _engine_problem() is not None:
        return
    containers = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
    if containers:
        docker("rm", "-f", *containers, check=False)
    volumes = docker("volume", "ls", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)
    for leftover in docker("network", "ls", "-q", "--filter", f"label={LABEL}", check=False).stdout.split():
        _remove_network(leftover)
