"""Rule ``tmpfs-run-once``: a run-once sidecar must not write into a Docker tmpfs volume.

A ``dockerVolumeConfiguration`` with the ``local`` driver and ``driverOpts`` ``type=tmpfs`` is mounted when
the first container using it starts and unmounted, files and all, when the last one stops (moby's
volume/local/local.go: ``Unmount`` unmounts once the volume's active mount count reaches zero). A run-once
sidecar exits before the app starts, so the app would find an empty volume. A refresh-mode sidecar keeps
running, and the volume mounted, while the app reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import is_refresh_mode, roles

RULE: Final = "tmpfs-run-once"
TMPFS: Final = "tmpfs"
LOCAL_DRIVER: Final = "local"


def check_tmpfs_run_once(task: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for sidecar in roles(task).sidecars:
        if sidecar.volume is None or is_refresh_mode(sidecar.container):
            continue
        if sidecar.volume in docker_tmpfs_volumes(task):
            findings.append(Finding(
                RULE, "error", sidecar.name,
                f"the sidecar runs once and writes into {sidecar.volume!r}, a Docker tmpfs volume "
                "(dockerVolumeConfiguration, local driver, type=tmpfs): Docker unmounts such a volume, and "
                "its files with it, when the last container using it stops, and a run-once sidecar stops "
                "before the app starts, so the app would find the volume empty",
                "run the sidecar in refresh mode, which keeps the volume mounted: SIDECAR_REFRESH_INTERVAL, "
                "\"essential\": true, the secrets-sidecar healthcheck, and the app waiting for HEALTHY (as in "
                "task-definitions/ec2-tmpfs.json); or use a volume that is not tmpfs",
            ))
    return findings


def docker_tmpfs_volumes(task: Mapping[str, Any]) -> set[str]:
    """Names of the task's volumes that Docker's local driver mounts as tmpfs."""
    found = task.get("volumes")
    names = set()
    for volume in found if isinstance(found, list) else []:
        if not isinstance(volume, Mapping) or not isinstance(volume.get("name"), str):
            continue
        config = volume.get("dockerVolumeConfiguration")
        if not isinstance(config, Mapping) or config.get("driver", LOCAL_DRIVER) != LOCAL_DRIVER:
            continue
        options = config.get("driverOpts")
        if isinstance(options, Mapping) and TMPFS in (options.get("type"), options.get("device")):
            names.add(volume["name"])
    return names
