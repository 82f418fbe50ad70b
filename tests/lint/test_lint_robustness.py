"""The linter reports malformed input as findings; it never crashes on it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.lint import lint
from sidecar.lint.model import input_shape

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
CONTAINER_KEYS = sorted(input_shape().members["containerDefinitions"].member.members)
SIDECARISH = st.fixed_dictionaries({
    "name": st.sampled_from(["secrets-sidecar", "app"]) | JSON,
    "image": st.sampled_from(["example.com/ecs-secrets-sidecar:1", "example.com/app:1"]) | JSON,
    "environment": st.lists(
        st.fixed_dictionaries({"name": st.sampled_from(["SIDECAR_SECRETS", "SIDECAR_OUTPUT_DIR", "X_TOKEN"]) | JSON,
                               "value": JSON}),
        max_size=3,
    ) | JSON,
    "command": st.lists(st.sampled_from(["run", "--output-dir", "/run/secrets", "secrets-sidecar"]) | JSON,
                        max_size=4) | JSON,
}, optional={key: JSON for key in CONTAINER_KEYS if key not in ("name", "image", "environment", "command")})


@settings(max_examples=150, deadline=None)
@given(
    containers=st.lists(SIDECARISH | JSON, max_size=3),
    top=st.dictionaries(st.sampled_from(["family", "taskRoleArn", "volumes", "cpu", "networkMode", "x"]), JSON),
)
def test_any_shape_gives_findings_not_exceptions(containers: list[Any], top: dict[str, Any]) -> None:
    findings = lint({**top, "containerDefinitions": containers})
    assert all(f.severity in ("error", "warning") and f.message and f.fix for f in findings)
