"""The wheel and sdist as a user gets them: built from a clean copy of the checkout, checked by twine,
installed into a clean virtualenv, run."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from sidecar import __version__

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BUILD_TIMEOUT_SECONDS = 600
SETUPTOOLS_FOR_SPDX_LICENSE = 77  # the first setuptools that accepts `license = "<SPDX expression>"`


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = BUILD_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=timeout, check=False)
    assert completed.returncode == 0, f"{args} exited {completed.returncode}:\n{completed.stdout[-3000:]}\n" \
                                      f"{completed.stderr[-3000:]}"
    return completed


def clean_copy(target: Path) -> Path:
    """The files a fresh clone has (tracked, plus new files not ignored), without build output or virtualenvs."""
    listed = run("git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build`: the sdist, then the wheel built from the sdist, as the release workflow does."""
    source = clean_copy(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, source)
    return out


def test_build_system_requires_a_setuptools_that_knows_spdx_licenses() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert requires == [f"setuptools>={SETUPTOOLS_FOR_SPDX_LICENSE}"]


@pytest.mark.slow
def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    files = sorted(p.name for p in dist.iterdir())
    assert files == [f"ecs_secrets_sidecar-{__version__}-py3-none-any.whl", f"ecs_secrets_sidecar-{__version__}.tar.gz"]
    result = run(BIN / "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert result.stdout.count("PASSED") == 2, result.stdout


@pytest.mark.slow
def test_packages_carry_the_license_and_the_version(dist: Path) -> None:
    wheel = dist / f"ecs_secrets_sidecar-{__version__}-py3-none-any.whl"
    info = f"ecs_secrets_sidecar-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = email.message_from_bytes(whl.read(f"{info}/METADATA"))
        license_text = whl.read(f"{info}/licenses/LICENSE")
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    assert license_text == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in license_text and b"Version 2.0, January 2004" in license_text
    assert "sidecar/lint/__init__.py" in names
    assert not any(name.startswith("tests/") for name in names)
    with tarfile.open(dist / f"ecs_secrets_sidecar-{__version__}.tar.gz") as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"LICENSE", "README.md", "pyproject.toml", "sidecar/__init__.py"} <= members


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    wheel = dist / f"ecs_secrets_sidecar-{__version__}-py3-none-any.whl"
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    sidecar = venv / "bin" / "secrets-sidecar"
    # Only the installed package, from outside the checkout: nothing can come from the source tree.
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "eu-west-1", "SIDECAR_SECRET_api_key": "/prod/api/key",
           "HOME": str(tmp_path)}
    version = run(sidecar, "--version", cwd=tmp_path, env=env)
    assert version.stdout.split() == ["secrets-sidecar", __version__]
    check = run(sidecar, "check", cwd=tmp_path, env=env)
    assert check.stdout.startswith("configuration is valid: 1 entries, 1 API call(s)")
    assert "file  api_key  mode 0400" in check.stdout
    where = run(venv / "bin" / "python", "-c", "import sidecar; print(sidecar.__file__)", cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv)
    assert os.access(sidecar, os.X_OK)


def test_no_string_literal_holds_a_lone_surrogate() -> None:
    """Python 3.13 refuses to compile a module whose string literal (a docstring included) holds a lone
    surrogate such as an unescaped ``"\\ud800"``; 3.11 accepts it, so only the image build and 3.13 would fail."""
    import ast

    offenders = []
    for path in sorted((ROOT / "sidecar").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    node.value.encode("utf-8")
                except UnicodeEncodeError:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders
