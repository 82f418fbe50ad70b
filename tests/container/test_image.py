"""What the image is: its configuration, its contents, its size. Built once per session (``images``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sidecar import __version__
from tests.conftest import run_captured
from tests.container.conftest import BASE_IMAGE, SIDECAR_IMAGE, SIDECAR_UID, docker, source_revision

pytestmark = [pytest.mark.container, pytest.mark.slow]

# docs/container-image.md documents this bound and the measured numbers: the project's own layers (the
# virtualenv with the trimmed botocore, and the user and directory) measure about 8.7 MB.
MAX_BYTES_ABOVE_BASE = 12_000_000
# The pull size (gzip-compressed layers) above the base, measured by scripts/image-size: about 3 MB.
MAX_COMPRESSED_BYTES_ABOVE_BASE = 5_000_000
DOCUMENTED_TOLERANCE = 0.20
ROOT = Path(__file__).resolve().parents[2]
BOTOCORE_DATA = {
    "_retry.json", "endpoints.json", "partitions.json", "sdk-default-configuration.json",
    "secretsmanager", "ssm", "s3", "kms", "sts", "ecs",
}


def probe(script: str, *options: str) -> dict[str, Any]:
    """Run a Python snippet in the image, read-only and offline; it prints one JSON document."""
    completed = docker("run", "--rm", "--read-only", "--network", "none", *options, "--entrypoint", "python",
                       SIDECAR_IMAGE, "-c", textwrap.dedent(script))
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def test_image_configuration(images: tuple[str, str]) -> None:
    config = json.loads(docker("image", "inspect", SIDECAR_IMAGE).stdout)[0]["Config"]
    assert config["User"] == f"{SIDECAR_UID}:{SIDECAR_UID}"
    assert config["Entrypoint"] == ["secrets-sidecar"]
    assert config["Cmd"] == ["run"]
    assert list(config["Volumes"]) == ["/run/secrets"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "ecs-secrets-sidecar"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"] == "docker.io/library/python:3.13-slim"
    assert labels["org.opencontainers.image.source"] == "https://github.com/ecs-secrets-sidecar/ecs-secrets-sidecar"


def test_labels_carry_the_package_version_and_the_revision(images: tuple[str, str]) -> None:
    """One source for the version: the label is sidecar.__version__, which the console script reports too."""
    labels = json.loads(docker("image", "inspect", SIDECAR_IMAGE).stdout)[0]["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] == source_revision() != "unknown"
    reported = run_captured(["docker", "run", "--rm", "--read-only", "--network", "none", SIDECAR_IMAGE,
                             "--version"]).stdout.decode()
    assert reported.split() == ["secrets-sidecar", __version__]


def test_runs_as_fixed_user_and_owns_only_the_output_directory(images: tuple[str, str]) -> None:
    found = probe("""
        import json, os, pwd
        print(json.dumps({
            "ids": [os.getuid(), os.getgid()],
            "name": pwd.getpwuid(os.getuid()).pw_name,
            "output": [os.stat("/run/secrets").st_uid, os.stat("/run/secrets").st_gid,
                       oct(os.stat("/run/secrets").st_mode & 0o7777)],
            "writable_code": os.access("/opt/sidecar", os.W_OK)
                             or os.stat("/opt/sidecar").st_uid == os.getuid(),
        }))
    """)
    assert found == {
        "ids": [SIDECAR_UID, SIDECAR_UID], "name": "sidecar",
        "output": [SIDECAR_UID, SIDECAR_UID, "0o755"], "writable_code": False,
    }


@pytest.mark.parametrize(("user", "ids"), [("10001", [SIDECAR_UID, SIDECAR_UID]), ("10001:3000", [SIDECAR_UID, 3000])])
def test_ecs_user_forms_give_the_expected_groups(images: tuple[str, str], user: str, ids: list[int]) -> None:
    """ECS "user": "10001" takes gid 10001 from the image's passwd entry (without one it would be 0);
    "10001:3000" has group 3000 and no other, which is what the files can be given to."""
    script = "import json, os; print(json.dumps({'ids': [os.getuid(), os.getgid()], 'groups': os.getgroups()}))"
    assert probe(script, "--user", user) == {"ids": ids, "groups": [ids[1]]}


def test_no_installer_and_no_compiler(images: tuple[str, str]) -> None:
    found = probe("""
        import importlib.util, json, shutil
        print(json.dumps({
            "modules": {m: importlib.util.find_spec(m) is not None
                        for m in ("pip", "setuptools", "wheel", "ensurepip", "boto3")},
            "programs": {p: shutil.which(p) for p in ("pip", "pip3", "gcc", "cc", "make", "g++")},
        }))
    """)
    assert found["modules"] == dict.fromkeys(("pip", "setuptools", "wheel", "ensurepip", "boto3"), False)
    assert found["programs"] == dict.fromkeys(("pip", "pip3", "gcc", "cc", "make", "g++"))


def test_botocore_keeps_only_the_services_the_sidecar_uses(images: tuple[str, str]) -> None:
    found = probe("""
        import json, os, botocore
        from botocore.exceptions import UnknownServiceError
        from botocore.session import get_session
        session = get_session()
        made = []
        for service in ("secretsmanager", "ssm", "s3", "kms", "sts"):
            session.create_client(service, region_name="eu-west-1",
                                  aws_access_key_id="x", aws_secret_access_key="y")
            made.append(service)
        try:
            session.create_client("lambda", region_name="eu-west-1")
            removed = "created"
        except UnknownServiceError:
            removed = "UnknownServiceError"
        data = os.path.join(os.path.dirname(botocore.__file__), "data")
        ecs = [os.path.relpath(os.path.join(d, f), data) for d, _, files in os.walk(os.path.join(data, "ecs"))
               for f in files]
        print(json.dumps({"data": sorted(os.listdir(data)), "made": made, "lambda": removed, "ecs": ecs}))
    """)
    assert set(found["data"]) == BOTOCORE_DATA
    assert found["made"] == ["secretsmanager", "ssm", "s3", "kms", "sts"]
    assert found["lambda"] == "UnknownServiceError"
    # lint-task-definition reads the RegisterTaskDefinition shape: of the ecs model, only that file stays.
    (ecs_model,) = found["ecs"]
    assert ecs_model.startswith("ecs/") and ecs_model.endswith("/service-2.json.gz")


def test_bytecode_is_shipped_for_every_module_a_run_imports(images: tuple[str, str]) -> None:
    """Under a read-only root nothing can be compiled at run time: every imported module has its .pyc,
    and the project's own files are hash-based and unchecked, so copying them never makes them stale."""
    found = probe("""
        import importlib.util, json, os, sys, sysconfig
        from sidecar import cli, run, aws, fetch, commit, render
        factory = aws.ClientFactory(concurrency=2)
        for service in ("secretsmanager", "ssm", "s3"):
            factory.client(service, "eu-west-1")
        missing = sorted(name for name, module in list(sys.modules.items())
                         if (getattr(module, "__file__", None) or "").endswith(".py")
                         and not os.path.exists(importlib.util.cache_from_source(module.__file__)))
        site = sysconfig.get_path("purelib")
        sources = [os.path.join(d, f) for d, _, files in os.walk(site) for f in files if f.endswith(".py")]
        flags = set()
        for source in sources:
            with open(importlib.util.cache_from_source(source), "rb") as handle:
                flags.add(int.from_bytes(handle.read(8)[4:8], "little"))
        print(json.dumps({"imported": len(sys.modules), "missing": missing,
                          "site_sources": len(sources), "flags": sorted(flags)}))
    """)
    assert found["missing"] == []
    assert found["imported"] > 100
    assert found["site_sources"] > 100
    assert found["flags"] == [1]  # PEP 552: hash-based (bit 0), source not checked (bit 1 clear)


def test_image_size_report(images: tuple[str, str]) -> None:
    """Total size and the size of the layers above the base, against the documented bound."""
    image = json.loads(docker("image", "inspect", SIDECAR_IMAGE).stdout)[0]
    base = json.loads(docker("image", "inspect", BASE_IMAGE).stdout)[0]
    base_layers = base["RootFS"]["Layers"]
    assert image["RootFS"]["Layers"][: len(base_layers)] == base_layers, "the image is not built on the base"

    def history(name: str) -> list[int]:
        out = docker("history", "--no-trunc", "-H=false", "--format", "{{.Size}}", name).stdout
        return [int(size) for size in out.split()]

    ours = history(SIDECAR_IMAGE)[: len(history(SIDECAR_IMAGE)) - len(history(BASE_IMAGE))]
    above = sum(ours)
    assert above == image["Size"] - base["Size"]
    print(  # shown with pytest -s or -rP; nothing is written to the repository
        f"image size report: total {image['Size'] / 1e6:.1f} MB, base {BASE_IMAGE} {base['Size'] / 1e6:.1f} MB, "
        f"layers above the base {above / 1e6:.2f} MB in {len(image['RootFS']['Layers']) - len(base_layers)} "
        f"layer(s) (bound {MAX_BYTES_ABOVE_BASE / 1e6:.0f} MB)"
    )
    assert 1_000_000 < above <= MAX_BYTES_ABOVE_BASE


def test_pull_size_matches_the_documented_figures(images: tuple[str, str]) -> None:
    """scripts/image-size on the image the suite built: the compressed layers above the base stay under the
    bound, and the figure docs/container-image.md and the README state is the measured one."""
    measured = subprocess.run([sys.executable, str(ROOT / "scripts" / "image-size"), "--json", SIDECAR_IMAGE,
                               BASE_IMAGE], capture_output=True, text=True, timeout=600, check=True)
    figures = json.loads(measured.stdout)
    above, base, total = figures["above_base"], figures["base_layers"], figures["total"]
    layers = figures["layers_above_base"]

    def layer_count(image: str) -> int:
        return len(json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout))

    assert len(layers) == layer_count(SIDECAR_IMAGE) - layer_count(BASE_IMAGE)
    assert above["compressed"] == sum(layer["compressed"] for layer in layers)
    assert total["compressed"] == above["compressed"] + base["compressed"]
    assert 1_000_000 < above["compressed"] < above["uncompressed"]
    assert above["compressed"] <= MAX_COMPRESSED_BYTES_ABOVE_BASE

    doc = (ROOT / "docs" / "container-image.md").read_text()
    documented = re.search(r"\*\*layers above the base\*\*.*?\*\*([0-9.]+) MB\*\*", doc)
    readme = re.search(r"([0-9.]+) MB compressed above", (ROOT / "README.md").read_text())
    assert documented and readme, "the pull size is no longer stated where this test looks for it"
    for stated in (float(documented.group(1)), float(readme.group(1))):
        assert abs(stated * 1e6 - above["compressed"]) <= DOCUMENTED_TOLERANCE * above["compressed"], (
            f"documented {stated} MB, measured {above['compressed'] / 1e6:.2f} MB: update the docs")
