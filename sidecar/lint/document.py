"""Read a task definition document: registered JSON, or ``aws ecs describe-task-definition`` output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

# Fields ECS adds when it describes a registered revision; RegisterTaskDefinition does not accept them.
READ_ONLY_FIELDS: Final = frozenset({
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
})
DESCRIBE_WRAPPER: Final = "taskDefinition"
# The deepest path of a real task definition is about eight levels (containerDefinitions, a container,
# linuxParameters, capabilities, add, an item; a describe wrapper adds one). Far deeper input is not a task
# definition, and the rules' walks need not guard against it.
MAX_DEPTH: Final = 32


class UnreadableTaskDefinition(Exception):
    """The input is not a task definition at all; no rule can run."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_task_definition(text: str | bytes, source: str) -> dict[str, Any]:
    """Parse ``text`` into the RegisterTaskDefinition input it describes.

    Unwraps ``{"taskDefinition": {...}}`` and drops the read-only fields of a described revision.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder's message never quotes the document; its position is enough to find the mistake.
        raise UnreadableTaskDefinition(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise UnreadableTaskDefinition(f"{source} is not UTF-8 text") from None
    except RecursionError:
        raise UnreadableTaskDefinition(_too_deep(source)) from None
    if _depth(document) > MAX_DEPTH:
        raise UnreadableTaskDefinition(_too_deep(source))
    if isinstance(document, Mapping) and isinstance(document.get(DESCRIBE_WRAPPER), Mapping):
        document = document[DESCRIBE_WRAPPER]
    if not isinstance(document, Mapping):
        raise UnreadableTaskDefinition(
            f"{source} holds a JSON {_json_type(document)}, not a task definition object"
        )
    if not isinstance(document.get("containerDefinitions"), list):
        raise UnreadableTaskDefinition(
            f"{source} has no containerDefinitions array: expected a task definition (as registered, or "
            "the output of aws ecs describe-task-definition)"
        )
    return {key: value for key, value in document.items() if key not in READ_ONLY_FIELDS}


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _too_deep(source: str) -> str:
    return f"{source} nests deeper than {MAX_DEPTH} levels, which no task definition does"


def _depth(document: object) -> int:
    """How deeply ``document`` nests arrays and objects, found without recursion."""
    deepest = 0
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(node, list):
            stack += [(item, depth + 1) for item in node]
        elif isinstance(node, dict):
            stack += [(item, depth + 1) for item in node.values()]
    return deepest
