"""Benchmark: how long it takes to get N secrets into files, the sidecar against what users write today.

    make bench                          full run (about 10 minutes on 2 cores); writes docs/performance-results.md
                                        and docs/performance.png
    .venv/bin/python bench/run.py --quick   fewer repeats; writes into bench/results/
    .venv/bin/python bench/run.py --smoke   1 secret, 1 repeat, 0 ms, no AWS CLI: a check that every case runs

One moto server (in this process, on 127.0.0.1) holds the secrets; a latency proxy in front of it adds the
same round-trip delay to every request of every case and counts the API calls. Each case is a whole process,
started fresh every run with an empty output directory:

  secrets-sidecar   the installed console script
  shell + aws CLI   the hand-written entrypoint: one `aws secretsmanager get-secret-value` or
                    `aws ssm get-parameter` per secret, each redirected into a file (AWS CLI v1, installed by this
                    script into its own virtual environment under bench/results/ because it pins botocore)
  boto3 naive       a Python script: boto3, one call per secret, one after another
  botocore floor    the smallest Python script that makes the fewest calls the APIs allow with botocore alone
                    (BatchGetSecretValue by 20, GetParameters by 10), one after another, and writes the files

Wall time is the median over the runs; peak RSS comes from os.wait4 (for the shell loop: the largest of the
shell and every aws process it waited for). Runs are interleaved case by case so that noise on this shared
machine falls on every case alike. Every run's files are checked against the seeded values.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
AWSCLI_VENV = RESULTS / "awscli-venv"
AWSCLI_REQUIREMENT = "awscli>=1.33,<2"  # v1 from PyPI; it pins its own botocore, hence its own venv
REGION = "eu-west-1"
RUN_TIMEOUT_SECONDS = 300.0

CASES = ("sidecar", "shell", "naive", "floor")
LABELS = {
    "sidecar": "secrets-sidecar",
    "shell": "shell + aws CLI",
    "naive": "boto3 naive",
    "floor": "botocore floor",
}
COLORS = {"sidecar": "#1f77b4", "shell": "#d62728", "naive": "#ff7f0e", "floor": "#2ca02c"}


# --- what the benchmark needs, installed by itself ----------------------------------------------------------


def extra_requirements(extra: str) -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["optional-dependencies"][extra])


def _missing(requirements: Iterable[str]) -> list[str]:
    missing = []
    for requirement in requirements:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def ensure_installed(requirements: Iterable[str]) -> None:
    missing = _missing(requirements)
    if missing:
        print(f"installing {' '.join(missing)} into {sys.prefix}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True, timeout=900)
        importlib.invalidate_caches()


def ensure_awscli() -> Path:
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print(f"installing {AWSCLI_REQUIREMENT} into {AWSCLI_VENV}", flush=True)
        shutil.rmtree(AWSCLI_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True, timeout=300)
        subprocess.run([str(AWSCLI_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", AWSCLI_REQUIREMENT],
                       check=True, timeout=900)
    return aws


def sidecar_command() -> str:
    script = Path(sys.executable).parent / "secrets-sidecar"
    found = str(script) if script.exists() else shutil.which("secrets-sidecar")
    if not found:
        sys.exit("secrets-sidecar is not installed in this environment: run `make bench` (or pip install -e .)")
    return found


# --- the secrets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str  # file name
    service: str  # "secretsmanager" or "ssm"
    id: str  # secret ARN, or parameter name
    value: str


def secret_set(size: int, secret_arns: list[str], parameter_names: list[str]) -> list[Entry]:
    """``size`` secrets: half (rounded up) Secrets Manager, the rest SSM SecureString parameters."""
    n_sm = (size + 1) // 2
    entries = [Entry(f"sm-{i:03d}", "secretsmanager", secret_arns[i], seeded_value("sm", i)) for i in range(n_sm)]
    entries += [Entry(f"ssm-{i:03d}", "ssm", parameter_names[i], seeded_value("ssm", i))
                for i in range(size - n_sm)]
    return entries


def seeded_value(kind: str, i: int) -> str:
    return f"bench-{kind}-{i:03d}-" + "x" * 24


def seed(endpoint: str, count: int) -> tuple[list[str], list[str]]:
    import boto3

    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    arns = [sm.create_secret(Name=f"bench/secret-{i:03d}", SecretString=seeded_value("sm", i))["ARN"]
            for i in range(count)]
    names = [f"/bench/param-{i:03d}" for i in range(count)]
    for i, name in enumerate(names):
        ssm.put_parameter(Name=name, Value=seeded_value("ssm", i), Type="SecureString")
    return arns, names


# --- the cases --------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """The files each case reads for one secret-set size."""

    entries: list[Entry]
    spec: Path  # JSON list for the Python scripts
    shell_script: Path
    sidecar_secrets: str


def prepare(workdir: Path, entries: list[Entry]) -> Workload:
    size = len(entries)
    spec = workdir / f"spec-{size}.json"
    spec.write_text(json.dumps([{"name": e.name, "service": e.service, "id": e.id} for e in entries]))
    lines = ["#!/bin/sh", "# The usual hand-written entrypoint: one AWS CLI call per secret.", "set -eu", 'out="$1"']
    for e in entries:
        if e.service == "secretsmanager":
            lines.append(f"aws secretsmanager get-secret-value --secret-id '{e.id}' "
                         f"--query SecretString --output text > \"$out/{e.name}\"")
        else:
            lines.append(f"aws ssm get-parameter --name '{e.id}' --with-decryption "
                         f"--query Parameter.Value --output text > \"$out/{e.name}\"")
    script = workdir / f"entrypoint-{size}.sh"
    script.write_text("\n".join(lines) + "\n")
    secrets = json.dumps([{"name": e.name, "valueFrom": e.id} for e in entries])
    return Workload(entries, spec, script, secrets)


def command(case: str, work: Workload, outdir: Path, tools: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    if case == "sidecar":
        return [tools["sidecar"]], {"SIDECAR_SECRETS": work.sidecar_secrets, "SIDECAR_OUTPUT_DIR": str(outdir)}
    if case == "shell":
        return ["/bin/sh", str(work.shell_script), str(outdir)], {}
    script = {"naive": "naive_boto3.py", "floor": "floor_botocore.py"}[case]
    return [sys.executable, str(BENCH / "cases" / script), str(work.spec), str(outdir)], {}


def base_env(endpoint: str, tools: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIDECAR_", "PYTHON", "VIRTUAL_ENV"))}
    path = os.pathsep.join(p for p in (tools.get("aws_bin"), keep.get("PATH", "/usr/bin:/bin")) if p)
    return {
        **keep,
        "PATH": path,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --- measuring one run ------------------------------------------------------------------------------------


@dataclass
class Run:
    wall_s: float
    peak_rss_mib: float
    calls: Counter[str]
    stdout: str = ""
    stderr: str = ""


def measure(argv: list[str], env: dict[str, str], timeout: float = RUN_TIMEOUT_SECONDS) -> tuple[int, Run]:
    """Run the command through bench/spawn.py: wall time, exit code and peak RSS (with waited-for children)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as result:
        subprocess.run([sys.executable, "-S", "-E", str(BENCH / "spawn.py"), result.name, str(timeout), *argv],
                       env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout + 30, check=True)
        measured = json.load(result)
        out.seek(0)
        err.seek(0)
        run = Run(measured["wall_s"], measured["peak_rss_kib"] / 1024, Counter(),
                  out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    return measured["exit_code"], run


def check_files(case: str, outdir: Path, entries: list[Entry]) -> None:
    for e in entries:
        text = (outdir / e.name).read_text()
        if case == "shell":
            text = text.removesuffix("\n")  # `--output text` ends the value with a newline
        if text != e.value:
            raise AssertionError(f"{case}: {e.name} does not hold the seeded value")


# --- the whole benchmark ----------------------------------------------------------------------------------


@dataclass
class Plan:
    sizes: list[int]
    latencies_ms: list[int]
    repeats: int
    shell_repeats_at_100: int
    cases: list[str]
    warmup: bool
    out: Path
    plot: bool
    importtime_runs: int
    cell_budget_s: float  # no further run of a cell once its runs took this long (the shell loop at 100 secrets)


@dataclass
class Results:
    runs: dict[tuple[int, int, str], list[Run]] = field(default_factory=dict)
    imports: list[tuple[str, float, float]] = field(default_factory=list)  # module, cumulative ms, self ms
    import_roots: list[tuple[str, float]] = field(default_factory=list)  # package, self ms
    import_total_ms: float = 0.0
    sidecar_reported_ms: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the start and at the end


def repeats_for(plan: Plan, case: str, size: int) -> int:
    if case == "shell" and size >= 100:
        return min(plan.repeats, plan.shell_repeats_at_100)
    return plan.repeats


def run_benchmark(plan: Plan) -> Results:  # noqa: PLR0915 - one sequence of steps, read top to bottom
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    sys.path.insert(0, str(BENCH))
    from latencyproxy import LatencyProxy

    tools = {"sidecar": sidecar_command()}
    if "shell" in plan.cases:
        tools["aws_bin"] = str(ensure_awscli().parent)
    results = Results()
    load_at_start = os.getloadavg()[0]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    try:
        host, port = server.get_host_and_port()
        moto = f"http://{host}:{port}"
        biggest = max(plan.sizes)
        arns, names = seed(moto, (biggest + 1) // 2)
        workloads = {size: prepare(workdir, secret_set(size, arns, names)) for size in plan.sizes}
        with LatencyProxy(moto) as proxy:
            env = base_env(proxy.url, tools)

            def one(case: str, work: Workload) -> Run:
                outdir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{case}-"))
                argv, extra = command(case, work, outdir, tools)
                proxy.take_counts()
                code, run = measure(argv, {**env, **extra})
                run.calls = proxy.take_counts()
                if code != 0:
                    raise SystemExit(f"{LABELS[case]} exited {code} with {len(work.entries)} secrets\n"
                                     f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}")
                check_files(case, outdir, work.entries)
                shutil.rmtree(outdir)
                return run

            if plan.warmup:  # page cache, bytecode, first-use costs: not measured
                for case in plan.cases:
                    one(case, workloads[min(plan.sizes)])
            total = len(plan.latencies_ms) * sum(repeats_for(plan, c, s) for c in plan.cases for s in plan.sizes)
            done = 0
            for latency_ms in plan.latencies_ms:
                proxy.latency = latency_ms / 1000
                for size in plan.sizes:
                    for repeat in range(plan.repeats):
                        for case in plan.cases:
                            runs = results.runs.get((latency_ms, size, case), [])
                            spent = sum(r.wall_s for r in runs)
                            if repeat >= repeats_for(plan, case, size) or spent > plan.cell_budget_s:
                                continue
                            run = one(case, workloads[size])
                            results.runs.setdefault((latency_ms, size, case), []).append(run)
                            done += 1
                            print(f"\r  {done}/{total} runs: {latency_ms} ms, {size} secrets, {LABELS[case]}: "
                                  f"{run.wall_s * 1000:.0f} ms ".ljust(78), end="", flush=True)
            print(flush=True)
            if plan.importtime_runs:
                proxy.latency = 0
                size = 10 if 10 in workloads else min(plan.sizes)
                measure_imports(results, plan.importtime_runs, workloads[size], env=env, tools=tools, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        server.stop()
    results.load = (load_at_start, os.getloadavg()[0])
    return results


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def measure_imports(results: Results, runs: int, work: Workload, *, env: dict[str, str], tools: dict[str, str],
                    workdir: Path) -> None:
    """`python -X importtime` on real runs of the sidecar: the median per top-level import, and self time
    summed by root package."""
    top: dict[str, list[tuple[float, float]]] = {}
    roots: dict[str, list[float]] = {}
    totals: list[float] = []
    reported: list[float] = []
    for _ in range(runs):
        outdir = Path(tempfile.mkdtemp(dir=workdir, prefix="importtime-"))
        argv, extra = command("sidecar", work, outdir, tools)
        code, run = measure(argv, {**env, **extra, "PYTHONPROFILEIMPORTTIME": "1"})
        if code != 0:
            raise SystemExit(f"secrets-sidecar exited {code} under -X importtime\n{run.stderr[-3000:]}")
        parsed = [(int(m[1]), int(m[2]), len(m[3]), m[4]) for m in map(_IMPORT_LINE.match, run.stderr.splitlines())
                  if m]
        level = min(p[2] for p in parsed)
        per_root: Counter[str] = Counter()
        total = 0.0
        for self_us, cumulative_us, indent, module in parsed:
            per_root[module.split(".")[0]] += self_us / 1000
            if indent == level:
                top.setdefault(module, []).append((cumulative_us / 1000, self_us / 1000))
                total += cumulative_us / 1000
        for root, ms in per_root.items():
            roots.setdefault(root, []).append(ms)
        totals.append(total)
        done = [json.loads(line) for line in run.stdout.splitlines() if '"done"' in line]
        if done:
            reported.append(float(done[-1].get("duration_ms", 0)))
        shutil.rmtree(outdir)
    results.imports = sorted(
        ((m, statistics.median(c for c, _ in v), statistics.median(s for _, s in v)) for m, v in top.items()),
        key=lambda item: -item[1],
    )
    results.import_roots = sorted(((r, statistics.median(v)) for r, v in roots.items()), key=lambda item: -item[1])
    results.import_total_ms = statistics.median(totals)
    results.sidecar_reported_ms = statistics.median(reported) if reported else 0.0


# --- reporting --------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("botocore", "boto3", "moto"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
    aws = AWSCLI_VENV / "bin" / "aws"
    if aws.exists():
        cli = subprocess.run([str(aws), "--version"], capture_output=True, text=True, timeout=60, check=False)
        versions.append((cli.stdout or cli.stderr).split()[0])
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"CPython {platform.python_version()}; {', '.join(versions)}")


def _median_wall(runs: list[Run]) -> float:
    return statistics.median(r.wall_s for r in runs) * 1000


def _median_rss(runs: list[Run]) -> float:
    return statistics.median(r.peak_rss_mib for r in runs)


def _calls(runs: list[Run]) -> str:
    counts = runs[0].calls
    if any(r.calls != counts for r in runs):
        return "varies: " + ", ".join(str(sum(r.calls.values())) for r in runs)
    detail = ", ".join(f"{n} {op.split('.')[-1]}" for op, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({detail})"


def table(plan: Plan, results: Results) -> str:
    rows = [
        "| latency | secrets | entrypoint | wall ms (median) | x sidecar | fastest ms | peak RSS MiB | x sidecar "
        "| API calls | runs |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for latency_ms in plan.latencies_ms:
        for size in plan.sizes:
            base = results.runs.get((latency_ms, size, "sidecar"))
            for case in plan.cases:
                runs = results.runs.get((latency_ms, size, case))
                if not runs:
                    continue
                wall, rss = _median_wall(runs), _median_rss(runs)
                wall_ratio = f"{wall / _median_wall(base):.2f}" if base else "-"
                rss_ratio = f"{rss / _median_rss(base):.2f}" if base else "-"
                fastest = min(r.wall_s for r in runs) * 1000
                rows.append(f"| {latency_ms} ms | {size} | {LABELS[case]} | {wall:.0f} | {wall_ratio} | "
                            f"{fastest:.0f} | {rss:.1f} | {rss_ratio} | {_calls(runs)} | {len(runs)} |")
    return "\n".join(rows)


def import_table(results: Results, top: int = 12) -> str:
    rows = ["| top-level import (in import order's tree) | cumulative ms | self ms |", "|---|---:|---:|"]
    rows += [f"| `{m}` | {c:.1f} | {s:.1f} |" for m, c, s in results.imports[:top]]
    rows += ["", "| package (self time summed over all its modules) | ms |", "|---|---:|"]
    rows += [f"| `{r}` | {ms:.1f} |" for r, ms in results.import_roots[:top]]
    return "\n".join(rows)


def write_markdown(plan: Plan, results: Results, path: Path, elapsed_s: float) -> None:
    parts = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.py` (`make bench`); the discussion is in [performance.md](performance.md).",
        "",
        f"- Machine: {machine()}.",
        f"- Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed_s:.0f} s; {plan.repeats} runs per "
        f"cell{' after one warm-up run of each case' if plan.warmup else ''} (the shell loop at 100 secrets: at most "
        f"{min(plan.repeats, plan.shell_repeats_at_100)}; no cell gets another run once its runs took "
        f"{plan.cell_budget_s:.0f} s); runs interleaved case by case.",
        f"- Load average (1 min) at the start and the end of the run: {results.load[0]:.1f}, {results.load[1]:.1f} "
        f"on {os.cpu_count()} cores.",
        "- Latency: added by the proxy to every request before it reaches moto (one round trip per API call).",
        "",
        table(plan, results),
    ]
    if results.imports:
        parts += [
            "",
            "## Where the sidecar's start-up goes (`python -X importtime`, 10 secrets, 0 ms)",
            "",
            f"Median of {plan.importtime_runs} runs. Sum of top-level imports: {results.import_total_ms:.0f} ms. "
            f"The sidecar's own `done` event reports {results.sidecar_reported_ms:.0f} ms from `main()` to the "
            "last file (import time inflates under -X importtime, so compare shares, not sums).",
            "",
            import_table(results),
        ]
    path.write_text("\n".join(parts) + "\n")


def plot(plan: Plan, results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(plan.latencies_ms) + 1, figsize=(5 * (len(plan.latencies_ms) + 1), 4.2))
    for ax, latency_ms in zip(axes, plan.latencies_ms, strict=False):
        for case in plan.cases:
            points = [(s, _median_wall(results.runs[(latency_ms, s, case)]) / 1000) for s in plan.sizes
                      if (latency_ms, s, case) in results.runs]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=LABELS[case], color=COLORS[case])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(plan.sizes, [str(s) for s in plan.sizes])
        ax.set_xlabel("secrets (half Secrets Manager, half SSM)")
        ax.set_ylabel("wall time, s (median, log scale)")
        ax.set_title(f"whole process, {latency_ms} ms per round trip")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[-1]
    width = 0.8 / len(plan.cases)
    latency_ms = plan.latencies_ms[0]
    for i, case in enumerate(plan.cases):
        xs, ys = [], []
        for j, s in enumerate(plan.sizes):
            if (latency_ms, s, case) in results.runs:
                xs.append(j + i * width)
                ys.append(_median_rss(results.runs[(latency_ms, s, case)]))
        ax.bar(xs, ys, width=width, label=LABELS[case], color=COLORS[case])
    ax.set_xticks([j + width * (len(plan.cases) - 1) / 2 for j in range(len(plan.sizes))],
                  [str(s) for s in plan.sizes])
    ax.set_xlabel("secrets")
    ax.set_ylabel("peak RSS, MiB (median)")
    ax.set_title(f"peak memory, {latency_ms} ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 runs per cell (1 for the shell loop at 100 secrets)")
    mode.add_argument("--smoke", action="store_true", help="1 secret, 1 run, 0 ms, no AWS CLI, no plot")
    parser.add_argument("--repeats", type=int, help="runs per cell (default 7; --quick 2)")
    parser.add_argument("--sizes", help="comma-separated secret counts (default 1,10,100)")
    parser.add_argument("--latencies", help="comma-separated added round-trip latencies in ms (default 0,25)")
    parser.add_argument("--no-cli", action="store_true", help="leave out the shell + aws CLI case")
    parser.add_argument("--out", type=Path, help="where the table and plot go (default docs/; with --quick or "
                        "--smoke bench/results/)")
    args = parser.parse_args(argv)
    smoke, quick = args.smoke, args.quick
    repeats = args.repeats or (1 if smoke else 2 if quick else 7)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([1] if smoke else [1, 10, 100])
    latencies = [int(s) for s in args.latencies.split(",")] if args.latencies else ([0] if smoke else [0, 25])
    if not 1 <= repeats <= 50 or not all(1 <= s <= 500 for s in sizes) or not all(0 <= x <= 1000 for x in latencies):
        parser.error("repeats must be 1-50, sizes 1-500, latencies 0-1000 ms")
    cases = [c for c in CASES if not (c == "shell" and (smoke or args.no_cli))]
    out = args.out or (RESULTS if smoke or quick else ROOT / "docs")
    return Plan(sizes=sorted(set(sizes)), latencies_ms=sorted(set(latencies)), repeats=repeats,
                shell_repeats_at_100=1 if quick else 2, cases=cases, warmup=not smoke, out=out, plot=not smoke,
                importtime_runs=0 if smoke else (3 if quick else 7), cell_budget_s=30 if quick else 45)


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(argv)
    # moto and boto3 come with the test extra (`make bench` installs it); matplotlib with the bench extra.
    needed = [r for r in extra_requirements("test") if r.startswith(("moto", "boto3"))]
    ensure_installed(needed + (extra_requirements("bench") if plan.plot else []))
    started = time.monotonic()
    results = run_benchmark(plan)
    elapsed = time.monotonic() - started
    print(table(plan, results))
    if results.imports:
        print()
        print(import_table(results))
    plan.out.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = plan.out / "performance-results.md"
    write_markdown(plan, results, markdown, elapsed)
    written = [markdown]
    if plan.plot:
        png = plan.out / "performance.png"
        plot(plan, results, png)
        written.append(png)
    raw = {f"{k[0]}ms/{k[1]}/{k[2]}": [{"wall_s": r.wall_s, "peak_rss_mib": r.peak_rss_mib, "calls": dict(r.calls)}
                                       for r in v] for k, v in results.runs.items()}
    (plan.out / "last-run.json" if plan.out != ROOT / "docs" else RESULTS / "last-run.json").write_text(
        json.dumps(raw, indent=1))
    print(f"\nwrote {', '.join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written)} "
          f"in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
