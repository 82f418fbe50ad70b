"""SIDECAR_TIMEOUT lasts to the last file, and SIDECAR_MAX_BYTES bounds template output: checked with an
injected clock, no real time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sidecar import commit
from sidecar.config import load_settings
from sidecar.deadline import Deadline
from sidecar.errors import FetchError, WriteError
from sidecar.outcomes import Fetched
from sidecar.output import OutputFile
from sidecar.render import render
from sidecar.secret import SecretBytes
from sidecar.template import parse_template, render_template
from tests.conftest import snapshot

UID, GID = os.getuid(), os.getgid()


class Ticks:
    """A clock that advances one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _files(count: int) -> list[OutputFile]:
    return [OutputFile(f"set/f{i}", SecretBytes(b"v"), 0o400, UID, GID) for i in range(count)]


def _manifest() -> list[OutputFile]:
    return [OutputFile(commit.MANIFEST, SecretBytes(b"{}"), 0o400, UID, GID)]


def test_a_deadline_passing_while_writing_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    commit.commit(str(tmp_path), [OutputFile("old", SecretBytes(b"x"), 0o400, UID, GID)], _manifest(),
                  dir_uid=UID, dir_gid=GID)
    before = snapshot(tmp_path)
    deadline = Deadline(10.5, clock=Ticks())  # ten reads of the clock, then it has passed
    with pytest.raises(WriteError) as caught:
        commit.commit(str(tmp_path), _files(100), _manifest(), dir_uid=UID, dir_gid=GID, deadline=deadline)
    assert caught.value.message.startswith("the SIDECAR_TIMEOUT deadline passed before the new set was in place: ")
    assert "of 101 files were written" in caught.value.message
    assert caught.value.exit_code == 4
    assert snapshot(tmp_path) == before


def test_the_deadline_is_checked_once_more_before_the_swap(tmp_path: Path) -> None:
    deadline = Deadline(len(_files(3)) + 1.5, clock=Ticks())  # enough for every file, not for the swap
    with pytest.raises(WriteError, match="all 4 files were written"):
        commit.commit(str(tmp_path), _files(3), _manifest(), dir_uid=UID, dir_gid=GID, deadline=deadline)
    assert os.listdir(tmp_path) == []


def test_a_set_written_in_time_is_committed(tmp_path: Path) -> None:
    commit.commit(str(tmp_path), _files(3), _manifest(), dir_uid=UID, dir_gid=GID, deadline=Deadline(60))
    assert (tmp_path / "set" / "f2").read_bytes() == b"v"


def test_a_deadline_passing_while_rendering_is_a_failed_run() -> None:
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(
        [{"name": f"e{i}", "valueFrom": f"/p/{i}"} for i in range(5)])}
    settings = load_settings({}, environ, process_uid=UID, process_gid=GID)
    outcomes = {e.reference.target: Fetched(SecretBytes(b"v"), "1") for e in settings.entries if e.reference}
    with pytest.raises(FetchError, match="deadline passed while rendering: 3 of 5 entries rendered"):
        render(settings, outcomes, deadline=Deadline(3.5, clock=Ticks()))
    assert len(render(settings, outcomes, deadline=Deadline(60)).files) == 5


def test_template_output_is_bounded_by_max_bytes() -> None:
    template = parse_template("{{ a }}" * 1000, "'t'")
    value = {"a": SecretBytes(b"x" * 2048)}
    with pytest.raises(FetchError) as caught:
        render_template(template, value, "'t'", 2048)
    assert caught.value.message == "'t': the rendered template is larger than SIDECAR_MAX_BYTES (2048 bytes)"
    assert render_template(parse_template("{{ a }}", "'t'"), value, "'t'", 2048).reveal() == b"x" * 2048
