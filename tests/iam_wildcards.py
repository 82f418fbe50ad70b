"""IAM's matching of a resource pattern against an ARN, for tests that check a policy against real ARNs."""

from __future__ import annotations

import re


def iam_matches(pattern: str, arn: str) -> bool:
    """``*`` matches any run of characters, ``?`` exactly one, and ``${*}``, ``${?}``, ``${$}`` are those
    characters themselves (IAM User Guide: wildcards in the Resource element; policy variables, special
    characters)."""
    parts = re.split(r"(\$\{[*?$]\}|\*|\?)", pattern)
    regex = "".join({"*": ".*", "?": "."}.get(p, re.escape(p[2] if p.startswith("${") else p)) for p in parts)
    return re.fullmatch(regex, arn) is not None
