"""The metrics line in-process: the EMF document built from counts, dimensions and a clock, held to a checker
written from the EMF specification (tests/emf_spec.py); the namespace rules; the task metadata's reading;
the meter that writes one line per run or cycle. No sidecar process, no network."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sidecar import metrics
from sidecar.errors import ConfigError, FetchError, Interrupted
from sidecar.metrics import (
    ENDED_WELL,
    METRICS,
    Counts,
    Emitter,
    Ending,
    Meter,
    Task,
    cluster_name,
    document,
    namespace_problem,
    render,
)
from sidecar.settings.load import metrics_namespace, settings_from
from sidecar.task_metadata import ENV, TaskMetadata, parse_task
from tests.emf_spec import MAX_DIMENSIONS, MAX_METRICS, parse_line, problems

NOW_MS = 1_764_676_800_123  # 2025-12-02T12:00:00.123Z
COUNTS = Counts(duration_ms=412.34, api_calls=3, retries=1, throttled=1, failovers=1, bytes_written=96,
                files_written=4)
TASK = Task("prod", "my-app")
SECRET_ARGS = {"process_uid": 1000, "process_gid": 1000}
ENV_BASE = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRET_x": "/p/x"}


def test_the_document_holds_the_counts_the_dimensions_and_the_time() -> None:
    doc = document("SecretsSidecar", COUNTS, ENDED_WELL, phase="start", task=TASK, timestamp_ms=NOW_MS)

    assert doc == {
        "_aws": {
            "Timestamp": NOW_MS,
            "CloudWatchMetrics": [{
                "Namespace": "SecretsSidecar",
                "Dimensions": [
                    ["ClusterName", "TaskDefinitionFamily", "Phase"],
                    ["ClusterName", "TaskDefinitionFamily", "Phase", "Outcome", "ExitCode"],
                ],
                "Metrics": [
                    {"Name": "Duration", "Unit": "Milliseconds"}, {"Name": "ApiCalls", "Unit": "Count"},
                    {"Name": "Retries", "Unit": "Count"}, {"Name": "ThrottledCalls", "Unit": "Count"},
                    {"Name": "Failovers", "Unit": "Count"}, {"Name": "BytesWritten", "Unit": "Bytes"},
                    {"Name": "FilesWritten", "Unit": "Count"}, {"Name": "Failed", "Unit": "Count"},
                ],
            }],
        },
        "event": "metrics", "level": "info", "timestamp": "2025-12-02T12:00:00.123000Z",
        "ClusterName": "prod", "TaskDefinitionFamily": "my-app", "Phase": "start", "Outcome": "success",
        "ExitCode": "0",
        "Duration": 412.3, "ApiCalls": 3, "Retries": 1, "ThrottledCalls": 1, "Failovers": 1, "BytesWritten": 96,
        "FilesWritten": 4, "Failed": 0,
    }
    assert problems(doc) == []


@pytest.mark.parametrize(("ending", "failed"), [
    (ENDED_WELL, 0),
    (Ending("fetch_error", 3), 1),
    (Ending("configuration_error", 2), 1),
    (Ending("write_error", 4), 1),
    (Ending("unexpected", 1), 1),
    (Ending("stopped", 143), 0),  # asked to stop: not the sidecar failing
])
def test_the_outcome_is_a_dimension_and_a_failure_counts_one(ending: Ending, failed: int) -> None:
    doc = document("N", Counts(5.0), ending, phase="start", task=Task(), timestamp_ms=NOW_MS)

    assert (doc["Outcome"], doc["ExitCode"], doc["Failed"]) == (ending.outcome, str(ending.exit_code), failed)
    assert problems(doc) == []


def test_without_task_metadata_the_sets_hold_the_phase_and_the_outcome_only() -> None:
    doc = document("N", COUNTS, ENDED_WELL, phase="refresh", task=Task(), timestamp_ms=NOW_MS)

    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Phase"], ["Phase", "Outcome", "ExitCode"]]
    assert "ClusterName" not in doc and "TaskDefinitionFamily" not in doc
    assert problems(doc) == []


def test_the_line_is_one_json_object_and_nothing_else() -> None:
    line = render(document("N", COUNTS, ENDED_WELL, phase="start", task=TASK, timestamp_ms=NOW_MS))

    assert "\n" not in line and line.startswith("{") and line.endswith("}")
    assert parse_line(line) == json.loads(line)
    assert line.isascii()


def test_the_sidecar_stays_within_the_specifications_limits() -> None:
    doc = document("N", COUNTS, Ending("fetch_error", 3), phase="start", task=TASK, timestamp_ms=NOW_MS)
    directive = doc["_aws"]["CloudWatchMetrics"][0]

    assert len(directive["Metrics"]) == len(METRICS) <= MAX_METRICS == metrics.MAX_METRICS_PER_DIRECTIVE
    assert max(len(s) for s in directive["Dimensions"]) <= MAX_DIMENSIONS == metrics.MAX_DIMENSIONS_PER_SET


_DIMENSION_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=1024).filter(
    lambda t: bool(t.strip()))


@given(
    counts=st.builds(Counts, duration_ms=st.floats(0, 1e9), api_calls=st.integers(0, 10**6),
                     retries=st.integers(0, 10**6), throttled=st.integers(0, 10**6), failovers=st.integers(0, 10**4),
                     bytes_written=st.integers(0, 2**40), files_written=st.integers(0, 10**5)),
    cluster=st.none() | _DIMENSION_TEXT, family=st.none() | _DIMENSION_TEXT,
    ending=st.sampled_from([ENDED_WELL, Ending("fetch_error", 3), Ending("stopped", 130)]),
    phase=st.sampled_from(["start", "refresh"]), timestamp=st.integers(0, 2**42),
)
def test_every_document_is_valid_emf(counts: Counts, cluster: str | None, family: str | None, ending: Ending,
                                     phase: Any, timestamp: int) -> None:
    line = render(document("N", counts, ending, phase=phase, task=Task(cluster, family), timestamp_ms=timestamp))
    doc = parse_line(line)

    assert problems(doc) == []
    assert (doc.get("ClusterName"), doc.get("TaskDefinitionFamily")) == (cluster, family)
    assert (doc["ApiCalls"], doc["BytesWritten"]) == (counts.api_calls, counts.bytes_written)


@pytest.mark.parametrize(("breakage", "problem"), [
    (lambda d: d.pop("ApiCalls"), "metric 'ApiCalls' is not a number"),
    (lambda d: d.update(Retries="1"), "metric 'Retries' is not a number"),
    (lambda d: d.update(Phase=0), "dimension 'Phase' is not a string"),
    (lambda d: d.update(ClusterName="x" * 1025), "dimension 'ClusterName' has 1025 characters"),
    (lambda d: d["_aws"].update(Timestamp=1.5), "Timestamp is not a whole number"),
    (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].append([f"k{i}" for i in range(31)]),
     "a DimensionSet holds 31 keys"),
    (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"].extend([{"Name": "Duration"}] * 93),
     "Metrics holds 101 definitions"),
    (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"), "not a CloudWatch unit"),
    (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Extra=1), "not exactly Namespace, Dimensions, Metrics"),
])
def test_the_checker_finds_each_breakage(breakage: Any, problem: str) -> None:
    """The checker can fail: each break of the specification is reported."""
    doc = document("N", COUNTS, ENDED_WELL, phase="start", task=TASK, timestamp_ms=NOW_MS)
    breakage(doc)
    assert any(problem in found for found in problems(doc)), problems(doc)


# --- namespaces -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["SecretsSidecar", "Team/App", "a.b-c_d#e:f g", "x" * 255])
def test_cloudwatch_namespaces_are_accepted(namespace: str) -> None:
    assert namespace_problem(namespace) is None


@pytest.mark.parametrize(("namespace", "problem"), [
    ("", "needs at least one character other than a space"),
    ("   ", "needs at least one character other than a space"),
    ("x" * 256, "is 256 characters long; CloudWatch allows at most 255"),
    ("app$", "contains '$'"),
    ("café", "contains 'é'"),
    (":app", "may not begin with ':'"),
    ("AWS/ECS", "may not begin with 'AWS/'"),
])
def test_other_namespaces_are_refused_with_the_reason(namespace: str, problem: str) -> None:
    assert (namespace_problem(namespace) or "").startswith(problem)


def test_a_bad_namespace_is_a_configuration_error_naming_the_variable() -> None:
    environ = {**ENV_BASE, "SIDECAR_METRICS": "emf", "SIDECAR_METRICS_NAMESPACE": "AWS/Mine"}
    with pytest.raises(ConfigError) as caught:
        settings_from({}, environ, {}, **SECRET_ARGS)
    assert caught.value.message == ("SIDECAR_METRICS_NAMESPACE: the CloudWatch namespace 'AWS/Mine' may not begin "
                                    "with 'AWS/', which AWS services' namespaces use")


def test_a_namespace_without_metrics_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"^metricsNamespace applies only with SIDECAR_METRICS=emf$"):
        settings_from({}, {**ENV_BASE, "SIDECAR_METRICS_NAMESPACE": "Mine"}, {}, **SECRET_ARGS)


def test_metrics_are_off_unless_asked_for() -> None:
    assert settings_from({}, ENV_BASE, {}, **SECRET_ARGS).metrics == "off"
    on = settings_from({"metrics": "EMF"}, ENV_BASE, {}, **SECRET_ARGS)
    assert (on.metrics, on.metrics_namespace) == ("emf", "SecretsSidecar")


@pytest.mark.parametrize(("flags", "environ", "namespace"), [
    ({}, {}, None),
    ({}, {"SIDECAR_METRICS": "emf"}, "SecretsSidecar"),
    ({"metrics": "emf"}, {"SIDECAR_METRICS_NAMESPACE": "Mine"}, "Mine"),
    ({}, {"SIDECAR_METRICS": "off", "SIDECAR_METRICS_NAMESPACE": "Mine"}, None),
    ({}, {"SIDECAR_METRICS": "bogus"}, None),  # the broken setting itself: nothing to count in
    ({}, {"SIDECAR_METRICS": "emf", "SIDECAR_METRICS_NAMESPACE": "AWS/x"}, None),
])
def test_a_failed_start_up_is_counted_as_flags_and_environment_say(
    flags: dict[str, str], environ: dict[str, str], namespace: str | None
) -> None:
    assert metrics_namespace(flags, environ) == namespace


# --- task metadata ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cluster", "name"), [
    ("arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "prod"),
    ("arn:aws-cn:ecs:cn-north-1:123456789012:cluster/a-b_c", "a-b_c"),
    ("default", "default"),
    ("arn:aws:ecs:eu-west-1:123456789012:cluster/", "arn:aws:ecs:eu-west-1:123456789012:cluster/"),
])
def test_the_cluster_dimension_is_the_short_name(cluster: str, name: str) -> None:
    assert cluster_name(cluster) == name


def test_the_task_response_gives_cluster_and_family() -> None:
    body = json.dumps({"Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default", "TaskARN": "arn:x",
                       "Family": "curltest", "Revision": "26", "Containers": []}).encode()
    assert parse_task(body) == (Task("default", "curltest"), None)


@pytest.mark.parametrize(("body", "task", "problem"), [
    (b"<html>", Task(), "the /task response is not JSON"),
    (b"[]", Task(), "the /task response is not a JSON object"),
    (b'{"Cluster": "prod"}', Task("prod", None), "the /task response has no usable Family"),
    (b'{"Cluster": 7, "Family": " "}', Task(), "the /task response has no usable Cluster or Family"),
    (b'{"Cluster": "prod", "Family": "caf\\u00e9"}', Task("prod", None), "the /task response has no usable Family"),
])
def test_a_broken_task_response_leaves_dimensions_out_and_says_why(body: bytes, task: Task, problem: str) -> None:
    assert parse_task(body) == (task, problem)


def test_outside_ecs_there_are_no_task_dimensions_and_one_debug_line() -> None:
    with capture_logs() as logs:
        reader = TaskMetadata({}, structlog.get_logger()).start()
        assert reader.task(wait=5.0) == Task()
        assert reader.task(wait=5.0) == Task()
    assert [(e["event"], e["log_level"]) for e in logs] == [("task_metadata_unavailable", "debug")]
    assert ENV in logs[0]["reason"]


def test_an_endpoint_that_refuses_connections_is_a_warning() -> None:
    with socket.socket() as unused:  # a port nothing listens on once closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with capture_logs() as logs:
        reader = TaskMetadata({ENV: f"http://127.0.0.1:{port}/v4/abc"}, structlog.get_logger()).start()
        assert reader.task(wait=5.0) == Task()
    assert [(e["event"], e["log_level"], e["reason"]) for e in logs] == [
        ("task_metadata_unavailable", "warning", "the endpoint could not be read: ConnectionRefusedError")]


def test_the_wait_for_a_hanging_endpoint_ends_when_the_caller_says() -> None:
    """At the deadline the run waits no longer, whatever the read's own timeout."""
    with socket.socket() as listening:  # accepts connections (the backlog) and never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        uri = f"http://127.0.0.1:{listening.getsockname()[1]}/v4/abc"
        with capture_logs() as logs:
            reader = TaskMetadata({ENV: uri}, structlog.get_logger(), timeout=30.0).start()
            began = time.monotonic()
            assert reader.task(wait=0.05) == Task()
            waited = time.monotonic() - began
    assert waited < 1.0
    assert [(e["event"], e["log_level"], e["reason"]) for e in logs] == [
        ("task_metadata_unavailable", "warning", "no answer within 30 s")]


# --- the meter --------------------------------------------------------------------------------------------


class _Stats:
    api_calls, retries, throttled, failovers = 7, 2, 1, 1


def _emitter(lines: list[str], task: Task = TASK) -> Emitter:
    return Emitter("N", lines.append, task=lambda: task, clock_ms=lambda: NOW_MS)


def test_a_meter_writes_its_run_once_with_the_watched_counts() -> None:
    lines: list[str] = []
    clock = iter([10.0, 10.25]).__next__
    meter = Meter(_emitter(lines), "start", started=10.0 - 0.5, clock=clock)
    meter.watch(_Stats())
    meter.wrote(files=3, size=120)

    meter.finish(ENDED_WELL)
    meter.finish(Ending("fetch_error", 3))  # already written: a later failure adds no second line

    (line,) = lines
    doc = parse_line(line)
    assert problems(doc) == []
    assert {k: doc[k] for k in ("Duration", "ApiCalls", "Retries", "ThrottledCalls", "Failovers", "FilesWritten",
                                "BytesWritten", "Outcome", "Phase")} == {
        "Duration": 500.0, "ApiCalls": 7, "Retries": 2, "ThrottledCalls": 1, "Failovers": 1, "FilesWritten": 3,
        "BytesWritten": 120, "Outcome": "success", "Phase": "start"}


def test_a_meter_that_saw_no_fetch_counts_zero_calls() -> None:
    lines: list[str] = []
    Meter(_emitter(lines, Task()), "start", started=0.0, clock=lambda: 0.002).finish(Ending("configuration_error", 2))

    doc = parse_line(lines[0])
    assert (doc["ApiCalls"], doc["Failed"], doc["Outcome"], doc["ExitCode"]) == (0, 1, "configuration_error", "2")


def test_an_error_names_its_own_outcome() -> None:
    assert (FetchError("x").kind, FetchError("x").exit_code) == ("fetch_error", 3)
    stopped = Interrupted("SIGTERM", 15)
    assert not Ending(stopped.kind, stopped.exit_code).failed
    assert Ending(FetchError("x").kind, 3).failed
