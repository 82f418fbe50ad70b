"""A thousand mutated task definitions through ``lint-task-definition``: never a traceback, never an internal
error, an exit code that matches the report, and never a seeded value in any output.

Every base is a shipped example or a real-world-shaped fixture. Mutations break types (null, huge numbers,
lone surrogates, nesting around the 32-level limit and far beyond it), users (``"²"``), ordering, volumes
and the sidecar's own settings; seeded secret values go only where values go (environment, native
``secrets``, ``SIDECAR_SECRETS`` entries, command words), never into names, which the report shows.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.lint.command import INTERNAL_ERROR, lint_command
from sidecar.lint.document import MAX_DEPTH

from .tasks import EXAMPLES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASES = [json.loads(p.read_text()) for p in [*sorted(EXAMPLES.glob("*.json")), *sorted(FIXTURES.glob("*.json"))]]
MARK = "zq7SEEDx"  # in every seeded value; appears in no name, key or message of the linter
SEEDS = [
    f"{MARK}01-plain-value",
    f"postgres://app:{MARK}02@db.internal:5432/orders",
    f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{MARK}03:a:b",
    f"/prod/{MARK}04:x:y",
    f"s3://{MARK}05-bucket/key",
    f"AKIA{MARK.upper()}0600000",
    f"-----BEGIN PRIVATE KEY-----\n{MARK}07\n-----END PRIVATE KEY-----",
    f"{MARK}08 with spaces and 'quotes' and \"doubles\"",
    f"{MARK}09\ud800lone",
    f"{{{{ {MARK}10 }}}}",
]
DEEP = "__deep__"  # replaced by nested arrays in the serialized text (Python's json cannot build them)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["²", "\ud800", "0", "-1", "1e10", "nan", "inf", "10001:1000", "", " ", "\n", "0440", DEEP]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SEED = st.sampled_from(SEEDS)
ENTRY = st.fixed_dictionaries(
    {"name": st.sampled_from(["db", "api_key", "tls/cert.pem", "../x", "a b", ""])},
    optional={
        "valueFrom": SEED | JSON, "mode": st.sampled_from(["0400", "0440", "0444", "0666", "²"]) | JSON,
        "uid": JSON, "gid": JSON, "template": SEED, "templateFile": SEED, "inputs": st.dictionaries(
            st.sampled_from(["a", "db", "x-y"]), SEED | JSON, max_size=2),
        "expand": JSON, "optional": JSON, "parametersByPath": SEED | JSON, "recursive": JSON,
    },
)
SIDECAR_VALUE = st.one_of(
    SEED,
    st.lists(ENTRY, max_size=3).map(json.dumps),
    st.sampled_from(["60", "1e10", "-5", "0", "²", "nan", "[" * 1100 + "]" * 1100, "{", "[]", "0440", "auto"]),
)
VARIABLES = st.sampled_from([
    "SIDECAR_SECRETS", "SIDECAR_SECRET_db", "SIDECAR_TIMEOUT", "SIDECAR_FILE_MODE", "SIDECAR_UID", "SIDECAR_GID",
    "SIDECAR_REFRESH_INTERVAL", "SIDECAR_NOTIFY_COMMAND", "SIDECAR_NOTIFY_SIGNAL", "SIDECAR_CONFIG_FILE",
    "SIDECAR_SM_BATCH", "DB_PASSWORD", "API_TOKEN", "AWS_REGION",
])
# Paths the report names on purpose (where the volume is mounted, which file the env file is): not values.
PATH_VARIABLES = st.sampled_from(["SIDECAR_OUTPUT_DIR", "SIDECAR_ENV_FILE"])
PATHS = st.sampled_from(["/run/secrets", "/secrets/", "relative", "", "../x", ".env", "\ud800", "a\nb"]) | JSON
CONTAINER_KEYS = st.sampled_from([
    "name", "image", "essential", "user", "dependsOn", "mountPoints", "volumesFrom", "environment", "secrets",
    "command", "entryPoint", "healthCheck", "startTimeout", "readonlyRootFilesystem", "restartPolicy",
    "linuxParameters", "logConfiguration", "essentail",
])
TASK_KEYS = st.sampled_from([
    "family", "taskRoleArn", "volumes", "containerDefinitions", "cpu", "networkMode", "pidMode",
    "requiresCompatibilities", "proxyConfiguration",
])
USERS = st.sampled_from(["²", "²:1000", "0", "0:0", "root", "10001", "10001:1000", "1000:1000", "1000", "app",
                         "", ":", "4294967296:1", "\ud800", "\u0661\u0660\u0660\u0660"]) | JSON

MUTATION = st.one_of(
    st.tuples(st.just("env"), st.integers(0, 3), VARIABLES, SIDECAR_VALUE),
    st.tuples(st.just("env"), st.integers(0, 3), PATH_VARIABLES, PATHS),
    st.tuples(st.just("field"), st.integers(0, 3), CONTAINER_KEYS, JSON),
    st.tuples(st.just("drop"), st.integers(0, 3), CONTAINER_KEYS, st.none()),
    st.tuples(st.just("top"), st.just(0), TASK_KEYS, JSON),
    st.tuples(st.just("user"), st.integers(0, 3), st.just("user"), USERS),
    st.tuples(st.just("secrets"), st.integers(0, 3), st.sampled_from(["DB_PASSWORD", "SIDECAR_SECRETS"]), SEED),
    st.tuples(st.just("command"), st.integers(0, 3), st.sampled_from(["--timeout", "--secrets", "--sm-batch", "x"]),
              SEED | SIDECAR_VALUE),
    st.tuples(st.just("depends"), st.integers(0, 3), st.sampled_from(["START", "SUCCESS", "HEALTHY", "COMPLETE",
                                                                     "SUCCES", None]), st.integers(0, 3)),
    st.tuples(st.just("tmpfs"), st.just(0), st.sampled_from(["mode=0750", "uid=x", "mode=9", "", "uid=1,gid=2"]),
              st.booleans()),
    st.tuples(st.just("copy"), st.integers(0, 3), st.just(""), st.integers(0, 3)),
    st.tuples(st.just("deep"), st.integers(0, 3), st.just(""), st.sampled_from([5, MAX_DEPTH - 8, MAX_DEPTH, 1200])),
)
FUZZ = settings(
    max_examples=1000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _mutate(task: dict[str, Any], mutation: tuple[str, int, Any, Any]) -> int:
    """Apply one mutation; return how deep a nested array it asks for (0: none)."""
    kind, index, key, value = mutation
    definitions = task.get("containerDefinitions")
    if kind == "top":
        task[key] = value
        return 0
    if not isinstance(definitions, list) or not definitions:
        return 0
    target = definitions[index % len(definitions)]
    if not isinstance(target, dict):
        return 0
    if kind == "env":
        entries = target.get("environment") if isinstance(target.get("environment"), list) else []
        target["environment"] = [e for e in entries if not (isinstance(e, dict) and e.get("name") == key)]
        target["environment"].append({"name": key, "value": value})
    elif kind in ("field", "user"):
        target[key] = value
    elif kind == "drop":
        target.pop(key, None)
    elif kind == "secrets":
        target["secrets"] = [{"name": key, "valueFrom": value}]
    elif kind == "command":
        target["command"] = ["run", key, value]
    elif kind == "depends":
        other = definitions[value % len(definitions)]
        name = other.get("name") if isinstance(other, dict) else "x"
        target["dependsOn"] = [{"containerName": name, "condition": key}]
    elif kind == "tmpfs":
        task["volumes"] = [{"name": "secrets", "dockerVolumeConfiguration": {
            "scope": "task", "driver": "local", "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": key}}}]
    elif kind == "copy":
        definitions.append(copy.deepcopy(definitions[value % len(definitions)]))
    elif kind == "deep":
        target["linuxParameters"] = DEEP
        return int(value)
    return 0


def leaked(output: str) -> list[str]:
    """The seeds found in ``output``, in any form a careless message could take."""
    forms = [MARK, MARK.upper()]
    forms += [base64.b64encode(seed.encode("utf-8", "surrogatepass")).decode()[:16] for seed in SEEDS]
    return [form for form in forms if form in output]


@FUZZ
@given(
    base=st.sampled_from(range(len(BASES))),
    mutations=st.lists(MUTATION, min_size=1, max_size=6),
    output_format=st.sampled_from(["text", "json"]),
    described=st.booleans(),
)
def test_a_mutated_task_definition_gets_a_report_or_a_reason_never_a_crash_or_a_value(
    base: int, mutations: list[tuple[str, int, Any, Any]], output_format: str, described: bool
) -> None:
    task = copy.deepcopy(BASES[base])
    depth = max(_mutate(task, mutation) for mutation in mutations)
    document = {"taskDefinition": task} if described else task
    text = json.dumps(document)
    text = text.replace(json.dumps(DEEP), "[" * depth + "]" * depth if depth else "null")
    out, err = io.StringIO(), io.StringIO()
    code = lint_command("-", output_format, stdin=io.StringIO(text), stdout=out, stderr=err)  # type: ignore[arg-type]
    stdout, stderr = out.getvalue(), err.getvalue()
    assert "Traceback" not in stdout + stderr
    assert INTERNAL_ERROR not in stderr, stderr
    assert code in (0, 1, 2)
    assert leaked(stdout + stderr) == []
    if code == 2:
        assert stdout == ""
        assert stderr.count("\n") == 1 and stderr.startswith("secrets-sidecar lint-task-definition: ")
        return
    assert stderr == ""
    if output_format == "json":
        report = json.loads(stdout)
        assert len(report["findings"]) == report["errors"] + report["warnings"]
        assert code == (1 if report["errors"] else 0)
    else:
        verdict = stdout.splitlines()[-1]
        assert (": fails: " in verdict) == (code == 1)
        assert (": passes: 0 errors" in verdict) == (code == 0)
