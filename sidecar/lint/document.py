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
