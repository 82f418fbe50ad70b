"""The run-once job: configuration -> plan -> fetch -> render -> commit, with one log line per step."""

from __future__ import annotations

import time
from typing import Any

from sidecar import commit
from sidecar.config import Settings
from sidecar.errors import ConfigError
from sidecar.plan import Call, make_plan
from sidecar.render import OutputFile, render
from sidecar.secret import SecretBytes

Log = Any


def plan_for(settings: Settings) -> tuple[Call, ...]:
    targets = (ref.target for entry in settings.entries for ref in entry.references)
    return make_plan(targets, settings.sm_batch, settings.concurrency)


def check_regions(settings: Settings) -> None:
    """A region botocore's endpoint data does not know is a configuration error (a typo would otherwise
    surface as a DNS failure after every retry)."""
    from sidecar.aws import known_regions

    regions = known_regions()
    for entry in settings.entries:
        for reference in entry.references:
            region = reference.target.region
            if region not in regions:
                raise ConfigError(
                    f"{entry.name!r}: region {region!r} is not a known AWS region ({reference.target.describe()})"
                )


def run(settings: Settings, log: Log, started: float) -> None:
    """Write every required secret, or raise a ``SidecarError`` leaving the output directory untouched."""
    from sidecar.aws import ClientFactory
    from sidecar.fetch import Deadline, Fetcher

    deadline = Deadline(max(0.0, settings.timeout_seconds - (time.monotonic() - started)))
    check_regions(settings)
    calls = plan_for(settings)
    log.info(
        "start",
        entries=len(settings.entries),
        planned_calls=len(calls),
        output_dir=settings.output_dir,
        timeout_s=settings.timeout_seconds,
    )
    for warning in settings.warnings:
        log.warning("config_warning", reason=warning)
    owners = {(e.uid, e.gid) for e in settings.entries} | {(settings.uid, settings.gid)}
    commit.preflight(settings.output_dir, owners)

    clients = ClientFactory(concurrency=settings.concurrency, read_timeout=min(10.0, settings.timeout_seconds))
    fetcher = Fetcher(clients, deadline, log, concurrency=settings.concurrency, max_bytes=settings.max_bytes)
    if calls:
        fetcher.resolve_credentials()
    outcomes = fetcher.fetch(calls)
    rendered = render(settings, outcomes)
    for name, reason in rendered.skipped:
        log.warning("optional_skipped", name=name, reason=reason)

    # The manifest holds no value; it goes through the same writer, so it shares mode, owner and commit.
    manifest = OutputFile(
        commit.MANIFEST, SecretBytes(rendered.manifest), settings.file_mode, settings.uid, settings.gid
    )
    committed = commit.commit(
        settings.output_dir, rendered.files, manifest, dir_uid=settings.uid, dir_gid=settings.gid
    )
    for file in rendered.files:
        owner = f"{file.uid}:{file.gid}"
        log.info("file", name=file.path, bytes=len(file.content), mode=f"{file.mode:04o}", owner=owner)
    for name in committed.removed:
        log.info("file_removed", name=name, reason="no longer configured")
    log.info(
        "done",
        entries=len(settings.entries) - len(rendered.skipped),
        skipped=len(rendered.skipped),
        files=len(rendered.files),
        api_calls=fetcher.stats.api_calls,
        retries=fetcher.stats.retries,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )

