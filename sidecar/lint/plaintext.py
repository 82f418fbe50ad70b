"""Rule ``plain-secret``: a value that looks like a secret sits in a container's plain ``environment``.

Plain environment values are stored in the task definition, readable by anyone who may describe it, and
shown in the console. Two heuristics: the variable's name says it holds a secret and its value is not a
reference (an ARN, an S3 URL, a path), or the value itself has the shape of a credential. A finding names the
variable and the kind of match, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sidecar.lint.finding import Finding
from sidecar.lint.task import containers, environment
from sidecar.settings.options import ENV_PREFIX

RULE: Final = "plain-secret"
SECRET_NAME: Final = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH_?KEY",
    re.IGNORECASE,
)
# Names that hold where a secret is, or a property of it, rather than the secret.
NOT_A_SECRET_SUFFIX: Final = re.compile(
    r"_(FILE|PATH|DIR|ARN|NAME|ID|URI|REF|TTL|TIMEOUT|ENABLED|LENGTH|EXPIRY|EXPIRES|HEADER)$", re.IGNORECASE
)
REFERENCE_PREFIXES: Final = ("arn:", "s3://", "/", "{{resolve:", "${")
HARMLESS_VALUES: Final = frozenset({"", "true", "false", "yes", "no", "on", "off", "none", "null"})
VALUE_PATTERNS: Final = (
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("a PEM block", re.compile(r"-----BEGIN [A-Z0-9 ]+-----")),
    ("a URL with a password", re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("a GitHub token", re.compile(r"\b(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
)
FIX: Final = (
    "move the value into a secret store and hand it to the app through the sidecar (SIDECAR_SECRETS, read "
    "from the secrets volume) or the container's secrets with valueFrom; rotate the value, since the "
    "task definition has already exposed it"
)


def check_plain_secrets(task: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for container_name, container in containers(task):
        for variable, value in environment(container).items():
            reason = _why_secret(variable, value)
            if reason:
                findings.append(Finding(
                    RULE, "warning", container_name,
                    f"the environment variable {variable} is set in plain text and {reason}: anyone who "
                    "can describe the task definition can read it",
                    FIX,
                ))
    return findings


def _why_secret(variable: str, value: str) -> str | None:
    for kind, pattern in VALUE_PATTERNS:
        if pattern.search(value):
            return f"its value looks like {kind}"
    if variable.startswith(ENV_PREFIX) or not SECRET_NAME.search(variable) or NOT_A_SECRET_SUFFIX.search(variable):
        return None
    if value.strip().lower() in HARMLESS_VALUES or value.strip().isdigit() or value.startswith(REFERENCE_PREFIXES):
        return None
    return "its name suggests a secret while its value is not a reference (an ARN, s3:// URL or path)"
