"""SIDECAR_METRICS=emf end to end: the real process against moto over HTTP writes exactly one Embedded Metric
Format line per run, on success and on failure, whose counts are the run's own log's; the task's cluster and
family come from a stand-in task metadata endpoint, and an endpoint that hangs or fails costs neither the run
nor its deadline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sidecar.task_metadata import TIMEOUT_SECONDS
from tests.conftest import SecretValues, SidecarResult, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, json_error, stall
from tests.e2e.helpers import api_calls, assert_failed, assert_ok, secrets_json
from tests.emf_spec import parse_line, problems

CLUSTER_ARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod-cluster"
FAMILY = "my-app"


def metrics_lines(result: SidecarResult) -> list[dict[str, Any]]:
    """The run's EMF lines, each checked against the specification."""
    lines = [parse_line(line) for line in result.stdout.splitlines() if '"_aws"' in line]
    for document in lines:
        assert problems(document) == [], document
    return lines


def the_line(result: SidecarResult) -> dict[str, Any]:
    """The one EMF line of a run, which comes right before the run's last line (``done`` or ``failed``)."""
    (line,) = metrics_lines(result)
    assert result.events[-2] == line, "the metrics line comes just before the last line"
    return line


def _seed(aws: Any, secret_values: SecretValues) -> list[dict[str, str]]:
    arn = aws.secretsmanager.create_secret(Name="metrics/database-credential",
                                           SecretString=secret_values.add("metrics-db-s3cret"))["ARN"]
    aws.ssm.put_parameter(Name="/metrics/api-token", Value=secret_values.add("metrics-api-t0ken"),
                          Type="SecureString")
    return [{"name": "database-credential", "valueFrom": arn},
            {"name": "api-token", "valueFrom": "/metrics/api-token"}]


class MetadataEndpoint:
    """A stand-in for the ECS task metadata endpoint v4: answers ``/task`` as told, or not at all."""

    def __init__(self, status: int = 200, body: bytes = b"", hang: bool = False) -> None:
        self.requests: list[str] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests.append(self.path)
                if hang:
                    endpoint.release.wait(30)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v4/0123abcd-metadata"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints() -> Iterator[list[MetadataEndpoint]]:
    started: list[MetadataEndpoint] = []
    yield started
    for endpoint in started:
        endpoint.close()


def test_a_successful_run_writes_one_line_with_the_runs_counts(
    aws: Any, outdir: Path, secret_values: SecretValues
) -> None:
    entries = _seed(aws, secret_values)
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf")

    result = run_sidecar(env)

    done = assert_ok(result)
    line = the_line(result)
    files = [e for e in result.events if e.get("event") == "file"]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SecretsSidecar"
    assert (line["ApiCalls"], line["Retries"], line["ThrottledCalls"], line["Failovers"]) == (
        done["api_calls"], done["retries"], 0, done["failovers"])
    assert (line["FilesWritten"], line["BytesWritten"]) == (done["files"], sum(f["bytes"] for f in files)) == (
        2, len("metrics-db-s3cret") + len("metrics-api-t0ken"))
    assert (line["Phase"], line["Outcome"], line["ExitCode"], line["Failed"]) == ("start", "success", "0", 0)
    assert 0 < line["Duration"] <= done["duration_ms"]
    # Not on ECS: no task dimensions, and a debug line only (not shown at the default level).
    assert "ClusterName" not in line and "TaskDefinitionFamily" not in line
    assert [e for e in result.events if e.get("event") == "task_metadata_unavailable"] == []
    # Counts only: no name, reference or path of the configuration is in the line.
    raw = next(text for text in result.stdout.splitlines() if '"_aws"' in text)
    for word in ("database-credential", "api-token", "metrics/", str(outdir)):
        assert word not in raw


def test_the_line_is_written_whatever_the_log_level(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    entries = _seed(aws, secret_values)
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf", SIDECAR_LOG_LEVEL="error")

    result = run_sidecar(env)

    assert result.code == 0
    (line,) = metrics_lines(result)
    assert result.events == [line]  # info lines such as done are filtered out; the metrics line is not
    assert (line["Outcome"], line["FilesWritten"]) == ("success", 2)


def test_a_fetch_failure_writes_the_line_before_failed(aws: Any, outdir: Path, secret_values: SecretValues) -> None:
    entries = _seed(aws, secret_values)
    entries.append({"name": "absent", "valueFrom": "/metrics/not-there"})
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf", SIDECAR_METRICS_NAMESPACE="Team/Secrets")

    result = run_sidecar(env)

    assert_failed(result, 3, "/metrics/not-there")
    line = the_line(result)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Team/Secrets"
    assert (line["Outcome"], line["ExitCode"], line["Failed"]) == ("fetch_error", "3", 1)
    retries = [e for e in result.events if e.get("event") == "retry"]
    assert (line["ApiCalls"], line["Retries"]) == (len(api_calls(result)), len(retries))
    assert line["ApiCalls"] >= 1
    assert (line["FilesWritten"], line["BytesWritten"]) == (0, 0)


def test_throttled_calls_are_counted(aws: Any, outdir: Path, proxy: FaultProxy, secret_values: SecretValues) -> None:
    entries = _seed(aws, secret_values)
    proxy.add(json_error("secretsmanager.GetSecretValue", "ThrottlingException", "Rate exceeded", count=2))
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf", SIDECAR_SM_BATCH="never")

    result = run_sidecar(env)

    done = assert_ok(result)
    line = the_line(result)
    throttled = [c for c in api_calls(result) if c["outcome"] == "ThrottlingException"]
    assert (line["ThrottledCalls"], line["Retries"], line["ApiCalls"]) == (len(throttled), done["retries"],
                                                                           done["api_calls"]) == (2, 2, 4)


@pytest.mark.parametrize(("env", "outcome"), [
    ({"SIDECAR_SECRETS": "[{"}, "configuration_error"),  # the configuration does not load
    ({"SIDECAR_CONFIG_FILE": "/nonexistent/sidecar.json"}, "configuration_error"),  # nor does its file
])
def test_a_configuration_error_is_counted_when_the_environment_asks(moto: str, env: dict[str, str],
                                                                    outcome: str) -> None:
    result = run_sidecar(sidecar_env(moto, SIDECAR_METRICS="emf", **env))

    assert_failed(result, 2)
    line = the_line(result)
    assert (line["Outcome"], line["ExitCode"], line["Failed"], line["ApiCalls"]) == (outcome, "2", 1, 0)


def test_a_write_error_is_counted(moto: str, tmp_path: Path) -> None:
    result = run_sidecar(sidecar_env(moto, SIDECAR_METRICS="emf", SIDECAR_SECRET_x="/metrics/x",
                                     SIDECAR_OUTPUT_DIR=str(tmp_path / "missing")))

    assert_failed(result, 4)
    line = the_line(result)
    assert (line["Outcome"], line["ExitCode"], line["Failed"], line["ApiCalls"]) == ("write_error", "4", 1, 0)


def test_a_usage_error_is_counted_too(moto: str) -> None:
    result = run_sidecar(sidecar_env(moto, SIDECAR_METRICS="emf"), "run", "--ouput-dir", "/x")

    assert_failed(result, 2, "unrecognized arguments")
    assert the_line(result)["Outcome"] == "configuration_error"


@pytest.mark.parametrize("env", [
    {},  # the default
    {"SIDECAR_METRICS": "off"},
])
def test_metrics_off_writes_no_line(aws: Any, outdir: Path, secret_values: SecretValues, env: dict[str, str]) -> None:
    entries = _seed(aws, secret_values)
    result = run_sidecar(sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir),
                                     SIDECAR_SECRETS=secrets_json(*entries), **env))

    assert_ok(result)
    assert "_aws" not in result.stdout
    assert [e for e in result.events if e.get("event") == "metrics"] == []


def test_a_broken_metrics_setting_is_a_configuration_error_without_a_line(moto: str) -> None:
    result = run_sidecar(sidecar_env(moto, SIDECAR_METRICS="cloudwatch", SIDECAR_SECRET_x="/p/x"))

    assert_failed(result, 2, "SIDECAR_METRICS: 'cloudwatch' is not one of off, emf")
    assert metrics_lines(result) == []


# --- the task metadata endpoint ---------------------------------------------------------------------------


def test_the_task_metadata_endpoint_gives_cluster_and_family(
    aws: Any, outdir: Path, secret_values: SecretValues, endpoints: list[MetadataEndpoint]
) -> None:
    body = json.dumps({"Cluster": CLUSTER_ARN, "TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/prod-cluster/1",
                       "Family": FAMILY, "Revision": "7", "Containers": []}).encode()
    endpoint = MetadataEndpoint(body=body)
    endpoints.append(endpoint)
    entries = _seed(aws, secret_values)
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf", ECS_CONTAINER_METADATA_URI_V4=endpoint.uri)

    result = run_sidecar(env)

    assert_ok(result)
    line = the_line(result)
    assert (line["ClusterName"], line["TaskDefinitionFamily"]) == ("prod-cluster", FAMILY)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["ClusterName", "TaskDefinitionFamily", "Phase"],
        ["ClusterName", "TaskDefinitionFamily", "Phase", "Outcome", "ExitCode"],
    ]
    assert endpoint.requests == ["/v4/0123abcd-metadata/task"]
    assert [e for e in result.events if e.get("event") == "task_metadata_unavailable"] == []


@pytest.mark.parametrize(("endpoint_kwargs", "reason"), [
    ({"hang": True}, f"no answer within {TIMEOUT_SECONDS:g} s"),
    ({"status": 500, "body": b"{}"}, "the endpoint answered HTTP 500"),
    ({"body": b"not json"}, "the /task response is not JSON"),
])
def test_a_hanging_or_broken_endpoint_costs_only_the_dimensions(
    aws: Any, outdir: Path, secret_values: SecretValues, endpoints: list[MetadataEndpoint],
    endpoint_kwargs: dict[str, Any], reason: str,
) -> None:
    endpoint = MetadataEndpoint(**endpoint_kwargs)
    endpoints.append(endpoint)
    entries = _seed(aws, secret_values)
    timeout = 10.0
    env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=secrets_json(*entries),
                      SIDECAR_METRICS="emf", SIDECAR_TIMEOUT=f"{timeout:g}",
                      ECS_CONTAINER_METADATA_URI_V4=endpoint.uri)

    began = time.monotonic()
    result = run_sidecar(env)
    elapsed = time.monotonic() - began

    done = assert_ok(result)
    line = the_line(result)
    assert "ClusterName" not in line and "TaskDefinitionFamily" not in line
    warning = result.event("task_metadata_unavailable")
    assert (warning["level"], warning["reason"]) == ("warning", reason)
    # The endpoint is waited for at most its own short timeout: the run ends far within its deadline.
    assert done["duration_ms"] < timeout * 1000
    assert elapsed < timeout
    assert (outdir / "api-token").read_bytes() == b"metrics-api-t0ken"


def test_a_deadline_failure_does_not_wait_for_the_endpoint(
    moto: str, outdir: Path, endpoints: list[MetadataEndpoint]
) -> None:
    """The run's deadline has passed when it fails: the metrics line goes out at once, without task dimensions."""
    endpoint = MetadataEndpoint(hang=True)
    endpoints.append(endpoint)
    with FaultProxy(moto) as proxy:
        proxy.add(stall("AmazonSSM.GetParameters"))
        env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRET_x="/metrics/x",
                          SIDECAR_METRICS="emf", SIDECAR_TIMEOUT="3", ECS_CONTAINER_METADATA_URI_V4=endpoint.uri)
        result = run_sidecar(env)

    assert_failed(result, 3, "deadline passed with 1 API call(s) still unanswered")
    line = the_line(result)
    assert (line["Outcome"], line["ExitCode"], line["ApiCalls"]) == ("fetch_error", "3", 1)
    assert "ClusterName" not in line
    assert line["Duration"] < 3000 + 500  # the deadline, and the time to write two lines
