"""A hostile endpoint sending a huge body: the sidecar reads no more than the bound SIDECAR_MAX_BYTES allows,
exits 3, and its memory stays bounded. Peak RSS is the sidecar process's own, measured by a fresh parent."""

from __future__ import annotations

import http.server
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SIDECAR, SecretValues, SidecarResult, run_captured, run_sidecar, sidecar_env
from tests.e2e.faultproxy import FaultProxy, rewrite
from tests.e2e.helpers import assert_failed, assert_ok

HUGE_BODY_BYTES = 200 * 1024 * 1024
PEAK_RSS_BOUND_KB = 150 * 1024  # about 45 MB measured with the bound; over 450 MB without it
MAX_BYTES = 65536
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"
_MEASURE = ("import resource, subprocess, sys\n"
            "code = subprocess.call(sys.argv[1:])\n"
            "print('peak-rss-kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)\n")


class _Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    chunked = False

    def log_message(self, *_args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        head, tail = b'{"Name": "x", "SecretString": "', b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(head) + HUGE_BODY_BYTES + len(tail)))
        self.end_headers()
        block = b"A" * (1 << 20)
        try:
            for part in (head, *(block for _ in range(HUGE_BODY_BYTES // len(block))), tail):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if self.chunked else part)
            if self.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the sidecar hung up: what it should do


@pytest.fixture(params=[False, True], ids=["content-length", "chunked"])
def hostile(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Hostile,), {"chunked": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(("secrets", "batch", "operation"), [
    ([{"name": "db", "valueFrom": ARN}], "never", "GetSecretValue"),
    ([{"name": "db", "valueFrom": ARN}, {"name": "db2", "valueFrom": ARN.replace("db-", "db2-")}], "always",
     "BatchGetSecretValue"),
    ([{"name": "token", "valueFrom": "/app/token"}], "never", "GetParameters"),
    ([{"name": "app", "parametersByPath": "/app"}], "never", "GetParametersByPath"),
], ids=["GetSecretValue", "BatchGetSecretValue", "GetParameters", "GetParametersByPath"])
def test_a_huge_body_is_refused_with_memory_bounded(
    secrets: list[dict[str, str]], batch: str, operation: str, hostile: str, tmp_path: Any
) -> None:
    env = sidecar_env(hostile, SIDECAR_OUTPUT_DIR=str(tmp_path), SIDECAR_SECRETS=json.dumps(secrets),
                      SIDECAR_MAX_BYTES=str(MAX_BYTES), SIDECAR_SM_BATCH=batch, SIDECAR_TIMEOUT="60")
    completed = run_captured([sys.executable, "-c", _MEASURE, SIDECAR], env, timeout=120)
    stderr = completed.stderr.decode()
    peak_kb = int(stderr.rsplit("peak-rss-kb", 1)[1].split()[0])
    result = SidecarResult(completed.returncode, completed.stdout.decode(), stderr.rsplit("peak-rss-kb", 1)[0])
    failed = assert_failed(result, 3, f"larger than SIDECAR_MAX_BYTES ({MAX_BYTES} bytes)", operation)
    assert "retry" not in [e["event"] for e in result.events]  # the same endpoint would send the same again
    assert peak_kb < PEAK_RSS_BOUND_KB, f"peak RSS {peak_kb} kB; {failed['reason']}"
    assert list(tmp_path.iterdir()) == []


def test_the_largest_legitimate_values_pass_the_bound(aws: Any, outdir: Any, secret_values: SecretValues) -> None:
    """A SecretString of MAX_BYTES control characters (six bytes each on the wire) and a SecretBinary of
    MAX_BYTES bytes (base64) are within the bound: it refuses hostile bodies, not large values."""
    control = secret_values.add("\x01\x1f" * (MAX_BYTES // 2))
    binary = secret_values.add(bytes(range(256)) * (MAX_BYTES // 256))
    text_arn = aws.secretsmanager.create_secret(Name="big/text", SecretString=control)["ARN"]
    binary_arn = aws.secretsmanager.create_secret(Name="big/binary", SecretBinary=binary)["ARN"]
    aws.ssm.put_parameter(Name="/big/param", Value=secret_values.add("\x01" * 4096), Type="SecureString",
                          Tier="Advanced")
    secrets = [{"name": "text", "valueFrom": text_arn}, {"name": "binary", "valueFrom": binary_arn},
               {"name": "param", "valueFrom": "/big/param"}]
    for batch in ("never", "always"):
        env = sidecar_env(aws.endpoint, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=json.dumps(secrets),
                          SIDECAR_MAX_BYTES=str(MAX_BYTES), SIDECAR_SM_BATCH=batch)
        assert_ok(run_sidecar(env))
        assert (outdir / "text").read_bytes() == str(control).encode()
        assert (outdir / "binary").read_bytes() == binary


def _surrogate_value(_request: bytes, response: bytes) -> bytes:
    return response.replace(b"plain-to-be-replaced", b"before\\ud800after")


@pytest.mark.parametrize(("operation", "entry"), [
    ("secretsmanager.GetSecretValue", {"name": "db", "valueFrom": "{arn}"}),
    ("AmazonSSM.GetParameters", {"name": "token", "valueFrom": "/app/plain"}),
], ids=["SecretString", "parameter-Value"])
def test_an_endpoint_answering_a_lone_surrogate_is_bad_content(
    operation: str, entry: dict[str, str], aws: Any, proxy: FaultProxy, outdir: Any, secret_values: SecretValues
) -> None:
    """A JSON body can escape a lone surrogate, which no UTF-8 file can hold: exit 3, not a traceback."""
    arn = aws.secretsmanager.create_secret(Name="app/plain", SecretString=secret_values.add("plain-to-be-replaced"))
    aws.ssm.put_parameter(Name="/app/plain", Value="plain-to-be-replaced", Type="SecureString")
    proxy.add(rewrite(operation, _surrogate_value))
    resolved = {**entry, "valueFrom": entry["valueFrom"].format(arn=arn["ARN"])}
    env = sidecar_env(proxy.url, SIDECAR_OUTPUT_DIR=str(outdir), SIDECAR_SECRETS=json.dumps([resolved]))
    assert_failed(run_sidecar(env), 3, "is not valid Unicode text (a lone surrogate)")
