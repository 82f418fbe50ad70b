"""What each optional feature adds to a run, measured side by side in one run against the same secrets.

    .venv/bin/python bench/features.py               5 runs per case at 0 and 25 ms; prints the table
    .venv/bin/python bench/features.py --smoke       1 run per case at 0 ms: every case runs and is checked

One moto server (in this process) holds 10 Secrets Manager secrets (JSON, replicated to a second region) and
10 SSM SecureString parameters under one path; the latency proxy of ``bench/run.py`` adds the same round-trip
delay to every request, counts the API calls, and can play a region that is down. Each case is the installed
``secrets-sidecar`` started fresh, interleaved case by case, its files checked against the seeded values:

  plain                   the 20 entries, none of the features (the baseline every ratio is against)
  botocore floor          bench/cases/floor_botocore.py on the same 20 references
  jmesPath                the 10 secrets each with ``"jmesPath": "db.primary.password"``
  parametersByPath        the 10 parameters as one tree entry instead of 10 entries
  roleArn                 every entry read through SIDECAR_ROLE_ARN (one sts:AssumeRole more)
  failover, primary up    SIDECAR_FAILOVER_REGION set and never needed
  metrics                 SIDECAR_METRICS=emf (no ECS task metadata endpoint here, as outside ECS)
  failover, primary down  the 10 secrets only, their primary region answering 503: served by the replica region
  secrets only            the 10 secrets only, primary up: the baseline of the row above
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from latencyproxy import LatencyProxy  # noqa: E402
from run import REGION, base_env, measure, sidecar_command  # noqa: E402

FAILOVER_REGION = "eu-central-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bench-reader"
TREE = "/bench/tree/"
SIZE = 10


@dataclass(frozen=True)
class Seeded:
    secret_arns: list[str]
    parameter_names: list[str]

    @staticmethod
    def password(i: int) -> str:
        return f"bench-password-{i:03d}-" + "y" * 16

    def document(self, i: int) -> str:
        return json.dumps({"db": {"primary": {"password": self.password(i), "port": 5432}}})

    @staticmethod
    def parameter(i: int) -> str:
        return f"bench-parameter-{i:03d}-" + "z" * 16


@dataclass(frozen=True)
class Case:
    label: str
    entries: list[dict[str, object]]
    expected: dict[str, str]  # file -> content
    env: dict[str, str] = field(default_factory=dict)
    floor_spec: list[dict[str, str]] | None = None  # set: the botocore floor script instead of the sidecar
    down: frozenset[str] = frozenset()  # regions the proxy answers 503 for


def seed(endpoint: str) -> Seeded:
    import boto3

    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    sm, ssm, iam = (session.client(s, endpoint_url=endpoint) for s in ("secretsmanager", "ssm", "iam"))
    iam.create_role(RoleName="bench-reader", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "sts:AssumeRole"}]}))
    seeded = Seeded([], [f"{TREE}p-{i:03d}" for i in range(SIZE)])
    for i in range(SIZE):
        created = sm.create_secret(Name=f"bench/feature-{i:03d}", SecretString=seeded.document(i),
                                   AddReplicaRegions=[{"Region": FAILOVER_REGION}])
        seeded.secret_arns.append(created["ARN"])
    for i, name in enumerate(seeded.parameter_names):
        ssm.put_parameter(Name=name, Value=seeded.parameter(i), Type="SecureString")
    return seeded


def cases(seeded: Seeded) -> list[Case]:
    secrets = [{"name": f"sm-{i:03d}", "valueFrom": arn} for i, arn in enumerate(seeded.secret_arns)]
    secret_files = {f"sm-{i:03d}": seeded.document(i) for i in range(SIZE)}
    parameters = [{"name": f"ssm-{i:03d}", "valueFrom": name} for i, name in enumerate(seeded.parameter_names)]
    parameter_files = {f"ssm-{i:03d}": seeded.parameter(i) for i in range(SIZE)}
    plain = secrets + parameters
    plain_files = secret_files | parameter_files
    selected = [{**e, "jmesPath": "db.primary.password"} for e in secrets]
    selected_files = {f"sm-{i:03d}": seeded.password(i) for i in range(SIZE)}
    tree = [{"name": "tree", "parametersByPath": TREE}]
    tree_files = {f"tree/p-{i:03d}": seeded.parameter(i) for i in range(SIZE)}
    floor = [{"name": e["name"], "service": "secretsmanager", "id": e["valueFrom"]} for e in secrets]
    floor += [{"name": e["name"], "service": "ssm", "id": e["valueFrom"]} for e in parameters]
    return [
        Case("plain", plain, plain_files),
        Case("botocore floor", plain, plain_files, floor_spec=floor),  # type: ignore[arg-type]
        Case("jmesPath", selected + parameters, selected_files | parameter_files),
        Case("parametersByPath", secrets + tree, secret_files | tree_files),
        Case("roleArn", plain, plain_files, {"SIDECAR_ROLE_ARN": ROLE_ARN}),
        Case("failover, primary up", plain, plain_files, {"SIDECAR_FAILOVER_REGION": FAILOVER_REGION}),
        Case("metrics", plain, plain_files, {"SIDECAR_METRICS": "emf"}),
        Case("secrets only", secrets, secret_files),
        Case("failover, primary down", secrets, secret_files, {"SIDECAR_FAILOVER_REGION": FAILOVER_REGION},
             down=frozenset({REGION})),
    ]


BASELINES = {"failover, primary down": "secrets only"}  # every other row is compared with "plain"


@dataclass
class Measured:
    walls: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)


def run_case(case: Case, proxy: LatencyProxy, env: dict[str, str], sidecar: str, workdir: Path) -> Measured:
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    if case.floor_spec is not None:
        spec = workdir / "floor.json"
        spec.write_text(json.dumps(case.floor_spec))
        argv, extra = [sys.executable, str(BENCH / "cases" / "floor_botocore.py"), str(spec), str(outdir)], {}
    else:
        argv = [sidecar]
        extra = {"SIDECAR_SECRETS": json.dumps(case.entries), "SIDECAR_OUTPUT_DIR": str(outdir), **case.env}
    proxy.unavailable_regions = set(case.down)
    proxy.take_counts()
    code, run = measure(argv, {**env, **extra})
    calls = proxy.take_counts()
    proxy.unavailable_regions = set()
    if code != 0:
        raise SystemExit(f"{case.label} exited {code}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}")
    for name, content in case.expected.items():
        if (outdir / name).read_text() != content:
            raise SystemExit(f"{case.label}: {name} does not hold the seeded value")
    shutil.rmtree(outdir)
    return Measured([run.wall_s], calls)


def table(latency_ms: int, results: dict[str, Measured]) -> str:
    lines = [f"\n{latency_ms} ms added round trip", "",
             "| case | median wall ms | x its baseline | API calls per run |", "|---|---:|---:|---|"]
    for label, measured in results.items():
        baseline = results[BASELINES.get(label, "plain")]
        wall = statistics.median(measured.walls)
        ratio = wall / statistics.median(baseline.walls)
        runs = len(measured.walls)
        calls = ", ".join(f"{op.rsplit('.', 1)[-1]} {n // runs}" for op, n in sorted(measured.calls.items()))
        lines.append(f"| {label} | {wall * 1000:.0f} | {ratio:.2f} | {calls} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="1 run per case at 0 ms")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", help="comma-separated case labels to run (default: all)")
    args = parser.parse_args(argv)
    repeats, latencies = (1, [0]) if args.smoke else (args.repeats, [0, 25])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-features-"))
    started = time.monotonic()
    try:
        host, port = server.get_host_and_port()
        seeded = seed(f"http://{host}:{port}")
        sidecar = sidecar_command()
        with LatencyProxy(f"http://{host}:{port}") as proxy:
            env = base_env(proxy.url, {})
            chosen = set(args.cases.split(",")) if args.cases else None
            all_cases = [c for c in cases(seeded) if chosen is None or c.label in chosen | {"plain", "secrets only"}]
            for case in all_cases if not args.smoke else ():  # warm-up: page cache, bytecode
                run_case(case, proxy, env, sidecar, workdir)
            for latency_ms in latencies:
                proxy.latency = latency_ms / 1000
                results = {case.label: Measured() for case in all_cases}
                for _ in range(repeats):
                    for case in all_cases:
                        one = run_case(case, proxy, env, sidecar, workdir)
                        results[case.label].walls += one.walls
                        results[case.label].calls += one.calls
                print(table(latency_ms, results), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        server.stop()
    print(f"\n{repeats} run(s) per case, interleaved; {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
