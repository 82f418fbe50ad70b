"""Refresh mode end to end: the real process, kept running against the moto server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIDECAR, SecretValues, run_sidecar, sidecar_env, snapshot, spawn
from tests.e2e.faultproxy import FaultProxy, latency
from tests.emf_spec import problems

pytestmark = pytest.mark.slow


class Sidecar:
    """A long-running sidecar process whose log events can be awaited."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = spawn([SIDECAR], env)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.follow_stdout():
            if line.startswith(b"{"):
                self.events.append(json.loads(line))

    def wait_for(self, event: str, count: int = 1, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = [e for e in self.events if e["event"] == event]
            if len(matches) >= count:
                return matches[count - 1]
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} #{count} within {timeout}s; events: {[e['event'] for e in self.events]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def sidecars() -> Iterator[list[Sidecar]]:
    started: list[Sidecar] = []
    yield started
    for sidecar in started:
        if sidecar.process.poll() is None:
            sidecar.process.kill()
        sidecar.stop()


def start(sidecars: list[Sidecar], env: dict[str, str]) -> Sidecar:
    sidecar = Sidecar(env)
    sidecars.append(sidecar)
    return sidecar


@pytest.fixture
def seeded(aws: Any, secret_values: SecretValues) -> dict[str, str]:
    db = aws.secretsmanager.create_secret(
        Name="app/db", SecretString=secret_values.add(json.dumps({"username": "app", "password": "pw-one-111"}),
                                                      keys_named_in_config=CONFIGURED_KEYS)
    )
    aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("token-one-111"), Type="SecureString")
    aws.s3.create_bucket(Bucket="cfg", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws.s3.put_object(Bucket="cfg", Key="app.conf", Body=secret_values.add(b"conf-one-111"))
    return {"db": db["ARN"], "token": "/app/token", "conf": "s3://cfg/app.conf"}


CONFIGURED_KEYS = ("username", "password")  # refresh_env's configuration names these keys itself


def refresh_env(moto: str, out: Path, refs: dict[str, str], **extra: str) -> dict[str, str]:
    secrets = [
        {"name": "password", "valueFrom": f"{refs['db']}:password::"},
        {"name": "token", "valueFrom": refs["token"]},
        {"name": "app.conf", "valueFrom": refs["conf"]},
        {"name": "dsn", "template": "postgresql://{{ db.username }}:{{ db.password | url }}@db/app",
         "inputs": {"db": refs["db"]}},
    ]
    return sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(out), SIDECAR_SECRETS=json.dumps(secrets),
                       SIDECAR_REFRESH_INTERVAL="1", **extra)


def read_set(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("password", "token", "app.conf", "dsn", "..version")}


def test_rotation_reaches_the_files_within_an_interval(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    sidecar = start(sidecars, refresh_env(moto, tmp_path, seeded))
    sidecar.wait_for("refresh_started")
    assert read_set(tmp_path) == {"password": b"pw-one-111", "token": b"token-one-111", "app.conf": b"conf-one-111",
                                  "dsn": b"postgresql://app:pw-one-111@db/app", "..version": b"1\n"}
    sidecar.wait_for("refresh_check")
    assert [e for e in sidecar.events if e["event"] == "refreshed"] == []

    aws.secretsmanager.put_secret_value(
        SecretId=seeded["db"],
        SecretString=secret_values.add(json.dumps({"username": "app", "password": "pw/two"}),
                                       keys_named_in_config=CONFIGURED_KEYS),
    )
    aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("token-two-222"), Type="SecureString",
                          Overwrite=True)
    aws.s3.put_object(Bucket="cfg", Key="app.conf", Body=secret_values.add(b"conf-two-222"))
    refreshed = sidecar.wait_for("refreshed", timeout=10)
    assert refreshed["generation"] == 2
    assert len(refreshed["changed"]) == 3
    assert read_set(tmp_path) == {"password": b"pw/two", "token": b"token-two-222", "app.conf": b"conf-two-222",
                                  "dsn": b"postgresql://app:pw%2Ftwo@db/app", "..version": b"2\n"}
    manifest = json.loads((tmp_path / "..manifest.json").read_bytes())
    assert manifest["generation"] == 2
    assert sidecar.stop() == 0
    assert sidecar.events[-1]["event"] == "stopped"


def test_checks_make_one_call_per_source(
    moto: str, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    sidecar = start(sidecars, refresh_env(moto, tmp_path, seeded))
    started = sidecar.wait_for("refresh_started")
    assert started["check_calls_per_cycle"] == 3  # one BatchGetSecretValue, one GetParameters, one HeadObject
    assert started["check_calls_per_hour"] == 3 * 3600
    sidecar.wait_for("refresh_check", count=2)
    sidecar.stop()
    first_check = next(i for i, e in enumerate(sidecar.events) if e["event"] == "refresh_started")
    operations = sorted({e["operation"] for e in sidecar.events[first_check:] if e["event"] == "api_call"})
    assert operations == ["BatchGetSecretValue", "GetParameters", "HeadObject"]


def test_readers_always_see_one_whole_set(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    sidecar = start(sidecars, refresh_env(moto, tmp_path, seeded))
    sidecar.wait_for("refresh_started")
    seen: set[tuple[bytes, bytes]] = set()
    stop = threading.Event()

    def read_through_data_link() -> None:
        while not stop.is_set():
            try:
                payload = tmp_path / os.readlink(tmp_path / "..data")
                seen.add(((payload / "password").read_bytes(), (payload / "token").read_bytes()))
            except FileNotFoundError:
                continue  # the previous payload was removed after the swap: read again through the new link

    reader = threading.Thread(target=read_through_data_link)
    reader.start()
    try:
        for round_number in range(2, 5):
            password = secret_values.add(f"pw-round-{round_number}")
            aws.secretsmanager.put_secret_value(
                SecretId=seeded["db"], SecretString=json.dumps({"username": "app", "password": password})
            )
            aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add(f"tk-round-{round_number}"),
                                  Type="SecureString", Overwrite=True)
            sidecar.wait_for("refreshed", count=round_number - 1, timeout=10)
    finally:
        stop.set()
        reader.join()
    sidecar.stop()
    consistent = {(b"pw-one-111", b"token-one-111")} | {
        (f"pw-round-{n}".encode(), f"tk-round-{n}".encode()) for n in range(2, 5)
    }
    assert seen <= consistent, f"mixed or partial sets observed: {seen - consistent}"
    assert len(seen) >= 2


def test_a_failing_refresh_keeps_the_files_and_the_health_check_tells(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    env = refresh_env(moto, tmp_path, seeded, SIDECAR_HEALTH_MAX_AGE="3")
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    healthy = run_sidecar(env, "healthcheck", guard=secret_values)
    assert (healthy.code, healthy.stdout.startswith("healthy: generation 1")) == (0, True)
    before = snapshot(tmp_path)

    aws.secretsmanager.delete_secret(SecretId=seeded["db"], ForceDeleteWithoutRecovery=True)
    failed = sidecar.wait_for("refresh_failed", timeout=10)
    assert failed["error"] == "fetch_error"
    assert "ResourceNotFoundException" in failed["reason"]
    time.sleep(3.5)
    unhealthy = run_sidecar(env, "healthcheck", guard=secret_values)
    assert unhealthy.code == 1
    assert unhealthy.stdout.startswith("unhealthy: last good refresh")
    assert "ResourceNotFoundException" in unhealthy.stdout
    after = snapshot(tmp_path, skip="..health")
    assert after == {k: v for k, v in before.items() if not k.startswith("..health")}
    assert sidecar.process.poll() is None  # still running, still trying
    assert sidecar.stop() == 0


def test_healthcheck_before_the_first_commit_and_outside_refresh_mode(
    moto: str, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues
) -> None:
    env = refresh_env(moto, tmp_path, seeded)
    result = run_sidecar(env, "healthcheck", guard=secret_values)
    assert result.code == 1
    assert result.stdout.strip() == "unhealthy: no health record yet: the first commit has not happened"
    once = {k: v for k, v in env.items() if k != "SIDECAR_REFRESH_INTERVAL"}
    assert run_sidecar(once, "healthcheck", guard=secret_values).code == 1


def test_sigterm_stops_promptly_with_exit_0(
    moto: str, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    env = refresh_env(moto, tmp_path, seeded)
    env["SIDECAR_REFRESH_INTERVAL"] = "300"
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    started = time.monotonic()
    assert sidecar.stop() == 0
    assert time.monotonic() - started < 3
    assert (tmp_path / "password").read_bytes() == b"pw-one-111"


def test_the_app_is_notified_by_command_and_by_signal(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    out, marker = tmp_path / "out", tmp_path / "notified"
    out.mkdir()
    app_binary = tmp_path / f"app{os.getpid() % 100000}"  # a unique process name: nothing else gets the signal
    shutil.copy("/bin/sleep", app_binary)
    app = subprocess.Popen([str(app_binary), "60"])
    try:
        command = json.dumps(["/bin/sh", "-c", f'echo "$SIDECAR_GENERATION $SIDECAR_OUTPUT_DIR" >> {marker}'])
        env = refresh_env(moto, out, seeded, SIDECAR_NOTIFY_COMMAND=command, SIDECAR_NOTIFY_SIGNAL="HUP",
                          SIDECAR_NOTIFY_PROCESS=app_binary.name)
        sidecar = start(sidecars, env)
        sidecar.wait_for("refresh_started")
        assert not marker.exists()  # the first commit happens before the app starts: nothing to tell
        aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("token-notify-3"), Type="SecureString",
                              Overwrite=True)
        sidecar.wait_for("refreshed", timeout=10)
        sidecar.wait_for("notified", count=2)
        assert marker.read_text() == f"2 {out}\n"
        assert app.wait(timeout=5) == -signal.SIGHUP
    finally:
        app.kill()
        app.wait()


@pytest.mark.parametrize("bad_key", ["../hostile-escape", "k" * 400, "line-one\nline-two-hostile"],
                         ids=["dot-dot", "400-chars", "newline"])
def test_a_rejected_key_is_named_by_position_in_the_log_the_health_file_and_the_healthcheck(
    bad_key: str, moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    """A JSON key is secret content: a key that cannot be a file name is reported by its position."""
    arn = aws.secretsmanager.create_secret(
        Name="app/keys", SecretString=secret_values.add(json.dumps({"first-good-key": "good-value-1"})))["ARN"]
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_REFRESH_INTERVAL="1",
                      SIDECAR_SECRETS=json.dumps([{"name": "db", "valueFrom": arn, "expand": True}]))
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    bad = json.dumps({"first-good-key": "good-value-2", bad_key: "bad-key-value"})
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=secret_values.add(bad))
    failed = sidecar.wait_for("refresh_failed", timeout=10)
    assert failed["reason"].startswith("'db': key #2 of the JSON secret cannot be a file name: it ")
    health = (tmp_path / "..health.json").read_bytes()
    report = run_sidecar(env, "healthcheck")
    assert sidecar.stop() == 0
    assert b"key #2 of the JSON secret" in health
    assert "key #2 of the JSON secret" in report.stdout
    shown = {bad_key, repr(bad_key)[1:-1], json.dumps(bad_key)[1:-1], "first-good-key", "hostile", "kkkk"}
    for text in shown:
        assert text.encode() not in health, text
        assert text not in report.stdout + report.stderr, text


def test_a_rotation_the_jmes_path_no_longer_matches_keeps_the_set_until_one_does(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    keys = ("db", "primary", "password")  # the expression names these itself

    def document(password: str, where: str = "primary") -> str:
        return secret_values.add(json.dumps({"db": {where: {"password": password}}}), keys_named_in_config=keys)

    aws.ssm.put_parameter(Name="/app/nested", Value=document("nested-pw-one"), Type="SecureString")
    entry = {"name": "pw", "valueFrom": "/app/nested", "jmesPath": "db.primary.password"}
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_REFRESH_INTERVAL="1",
                      SIDECAR_SECRETS=json.dumps([entry]))
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    assert (tmp_path / "pw").read_bytes() == b"nested-pw-one"
    before = snapshot(tmp_path, skip="..health")

    aws.ssm.put_parameter(Name="/app/nested", Value=document("nested-pw-two", "replica"), Type="SecureString",
                          Overwrite=True)
    failed = sidecar.wait_for("refresh_failed", timeout=10)
    assert failed["reason"] == "'pw': jmesPath 'db.primary.password' matches nothing in parameter /app/nested in " \
        "eu-west-1"
    assert snapshot(tmp_path, skip="..health") == before

    aws.ssm.put_parameter(Name="/app/nested", Value=document("nested-pw-three"), Type="SecureString",
                          Overwrite=True)
    sidecar.wait_for("refreshed", timeout=10)
    assert (tmp_path / "pw").read_bytes() == b"nested-pw-three"
    assert sidecar.stop() == 0


# --- SIGTERM in every phase ---------------------------------------------------------------------------------

STOP_KEYS = 150  # files in the set: building them (each fsynced) is the window a signal lands in


def _big_set(aws: Any, secret_values: SecretValues, label: str) -> str:
    document = {f"k{i:03d}": f"stop-{label}-value-{i:03d}" for i in range(STOP_KEYS)}
    return str(aws.secretsmanager.create_secret(Name=f"stop/{label}",
                                                SecretString=secret_values.add(json.dumps(document)))["ARN"])


def _stopped_within(sidecar: Sidecar, seconds: float) -> tuple[int, dict[str, Any]]:
    """Send SIGTERM; the exit code and the last event, asserting the process ended within ``seconds``."""
    signalled = time.monotonic()
    sidecar.process.send_signal(signal.SIGTERM)
    code = sidecar.process.wait(timeout=30)
    assert time.monotonic() - signalled < seconds, f"took {time.monotonic() - signalled:.1f}s to stop"
    sidecar._reader.join(timeout=5)
    return code, sidecar.events[-1]


def _wait_for_new_payload(out: Path, known: set[str], sidecar: Sidecar) -> None:
    deadline = time.monotonic() + 30
    while not set(_payloads(out)) - known:
        assert time.monotonic() < deadline and sidecar.process.poll() is None, "no commit began"
        time.sleep(0.0005)


def _payloads(out: Path) -> list[str]:
    return sorted(name for name in os.listdir(out) if name.startswith("..") and name[2:3].isdigit())


@pytest.mark.parametrize("mode", ["refresh", "run once"])
def test_sigterm_during_the_first_fetch_stops_at_once_and_writes_nothing(
    mode: str, moto: str, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues,
    sidecars: list[Sidecar]
) -> None:
    with FaultProxy(moto) as proxy:
        proxy.add(latency("AmazonSSM.GetParameters", 20))  # the fetch is under way, and would be for 20 s
        env = refresh_env(proxy.url, tmp_path, seeded)
        if mode == "run once":
            del env["SIDECAR_REFRESH_INTERVAL"]
        sidecar = start(sidecars, env)
        deadline = time.monotonic() + 20
        while not proxy.seen_for("AmazonSSM.GetParameters"):
            assert time.monotonic() < deadline, "the fetch never began"
            time.sleep(0.01)

        code, last = _stopped_within(sidecar, 3)

    assert code == 128 + signal.SIGTERM
    assert last["event"] == "stopped" and last["exit_code"] == 143 and last["generation"] == 0
    assert last["reason"] == "SIGTERM arrived before the new set was committed; the previous contents are untouched"
    assert os.listdir(tmp_path) == []


def test_sigterm_during_the_first_commit_lets_it_finish_then_stops(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arn = _big_set(aws, secret_values, "first")
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_REFRESH_INTERVAL="300",
                      SIDECAR_SECRETS=json.dumps([{"name": "set", "valueFrom": arn, "expand": True}]))
    sidecar = start(sidecars, env)
    _wait_for_new_payload(tmp_path, set(), sidecar)
    assert not os.path.lexists(tmp_path / "..data")  # the signal lands before the commit point

    code, last = _stopped_within(sidecar, 5)

    assert code == 0
    assert last["event"] == "stopped" and last["generation"] == 1 and last["reason"] == "SIGTERM"
    assert [e["event"] for e in sidecar.events].count("refresh_started") == 0  # no new work after the signal
    (payload,) = _payloads(tmp_path)
    assert os.readlink(tmp_path / "..data") == payload
    assert not os.path.lexists(tmp_path / "..data_tmp")
    assert len(list((tmp_path / "set").iterdir())) == STOP_KEYS


def test_sigterm_during_a_refresh_commit_finishes_it_and_runs_no_notify_command(
    moto: str, aws: Any, tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    arn = _big_set(aws, secret_values, "refresh")
    out, marker = tmp_path / "out", tmp_path / "notified"
    out.mkdir()
    command = json.dumps(["/bin/sh", "-c", f'echo "$SIDECAR_GENERATION" >> {marker}'])
    env = sidecar_env(moto, SIDECAR_OUTPUT_DIR=str(out), SIDECAR_REFRESH_INTERVAL="1", SIDECAR_NOTIFY_COMMAND=command,
                      SIDECAR_SECRETS=json.dumps([{"name": "set", "valueFrom": arn, "expand": True}]))
    sidecar = start(sidecars, env)
    sidecar.wait_for("refresh_started")
    first = os.readlink(out / "..data")
    document = {f"k{i:03d}": f"stop-rotated-value-{i:03d}" for i in range(STOP_KEYS)}
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=secret_values.add(json.dumps(document)))
    _wait_for_new_payload(out, {first}, sidecar)
    assert os.readlink(out / "..data") == first  # the signal lands before the commit point

    code, last = _stopped_within(sidecar, 5)

    assert code == 0
    assert last["event"] == "stopped" and last["generation"] == 2
    events = [e["event"] for e in sidecar.events]
    assert "notify_skipped" in events and "notified" not in events and "notify_failed" not in events
    assert not marker.exists()
    (payload,) = _payloads(out)
    assert payload != first and os.readlink(out / "..data") == payload
    assert (out / "set" / "k007").read_bytes() == b"stop-rotated-value-007"


def test_sigterm_while_the_notify_command_runs_stops_it_and_exits_promptly(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues,
    sidecars: list[Sidecar]
) -> None:
    out, started_marker = tmp_path / "out", tmp_path / "command-started"
    out.mkdir()
    command = json.dumps(["/bin/sh", "-c", f"touch {started_marker}; exec sleep 60"])
    sidecar = start(sidecars, refresh_env(moto, out, seeded, SIDECAR_NOTIFY_COMMAND=command))
    sidecar.wait_for("refresh_started")
    aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("token-stop-notify"), Type="SecureString",
                          Overwrite=True)
    deadline = time.monotonic() + 20
    while not started_marker.exists():
        assert time.monotonic() < deadline, "the notify command never started"
        time.sleep(0.02)

    code, last = _stopped_within(sidecar, 3)

    assert code == 0 and last["event"] == "stopped"
    failed = [e for e in sidecar.events if e["event"] == "notify_failed"]
    assert [e["reason"] for e in failed] == ["SIGTERM arrived: the command was stopped"]
    assert (out / "token").read_bytes() == b"token-stop-notify"


def test_each_refresh_cycle_writes_one_metrics_line(
    moto: str, aws: Any, seeded: dict[str, str], tmp_path: Path, secret_values: SecretValues, sidecars: list[Sidecar]
) -> None:
    sidecar = start(sidecars, refresh_env(moto, tmp_path, seeded, SIDECAR_METRICS="emf"))
    sidecar.wait_for("refresh_check")
    aws.ssm.put_parameter(Name="/app/token", Value=secret_values.add("token-three-333"), Type="SecureString",
                          Overwrite=True)
    sidecar.wait_for("refreshed", timeout=10)
    checks = sum(e["event"] == "refresh_check" for e in sidecar.events)
    sidecar.wait_for("refresh_check", count=checks + 1)
    assert sidecar.stop() == 0

    lines = [e for e in sidecar.events if e["event"] == "metrics"]
    assert [problems(line) for line in lines] == [[]] * len(lines)
    assert (lines[0]["Phase"], lines[0]["Outcome"], lines[0]["FilesWritten"]) == ("start", "success", 4)
    # Each cycle: its refresh_check (and refreshed, after a change), then its one line, before the next cycle.
    pending: dict[str, Any] | None = None
    cycles = changed = 0
    for event in sidecar.events[sidecar.events.index(lines[0]) + 1:]:
        if event["event"] == "refresh_check":
            assert pending is None, "a cycle ended without its metrics line"
            pending, cycles = event, cycles + 1
        elif event["event"] == "refreshed":
            assert pending is not None
            pending = event
        elif event["event"] == "metrics":
            assert pending is not None, "a metrics line without a cycle"
            assert (event["Phase"], event["Outcome"], event["Failed"]) == ("refresh", "success", 0)
            assert event["ApiCalls"] == pending["api_calls"]
            assert event["FilesWritten"] == pending.get("files", 0)
            changed += pending["event"] == "refreshed"
            pending = None
    assert pending is None
    assert cycles >= 3 and changed == 1
