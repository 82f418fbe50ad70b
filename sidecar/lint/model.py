"""Rule ``register-input``: the document must be valid input to ECS ``RegisterTaskDefinition``.

Checked against botocore's own service model, loaded from the installed botocore (no network): required
members, unknown keys and types through botocore's ``ParamValidator``, and enum values (which
``ParamValidator`` does not check) through a walk over the input shape. Messages name the path and the
expected type, never the offending value: a misplaced value may be a secret.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from sidecar.lint.finding import Finding

if TYPE_CHECKING:
    from botocore.model import Shape, StructureShape
    from botocore.validate import ValidationErrors

RULE: Final = "register-input"
SERVICE: Final = "ecs"
OPERATION: Final = "RegisterTaskDefinition"
_CONTAINER_PATH = re.compile(r"^containerDefinitions\[(\d+)\]")
_PYTHON_TO_JSON: Final = {
    "str": "string",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "Decimal": "number",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "datetime": "timestamp",
    "bytes": "blob",
    "bytearray": "blob",
    "NoneType": "null",
}
UNREADABLE_REPORT: Final = "the document does not match the request syntax (the installed botocore reports its " \
    "problems in a form this linter does not know, so they are not shown)"
_CLASS_NAME = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


@functools.cache
def input_shape() -> StructureShape:
    """The RegisterTaskDefinition input shape from the installed botocore's ECS model."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    model = ServiceModel(create_loader().load_service_model(SERVICE, "service-2"), service_name=SERVICE)
    shape = model.operation_model(OPERATION).input_shape
    assert shape is not None  # noqa: S101 - the operation has had an input since ECS began
    return shape


def check_register_input(task: Mapping[str, Any]) -> list[Finding]:
    from botocore.exceptions import DataNotFoundError
    from botocore.validate import ParamValidator

    try:
        shape = input_shape()
    except DataNotFoundError:  # UnknownServiceError too: a botocore trimmed of its ECS model
        return [Finding(
            rule=RULE,
            severity="warning",
            container=None,
            message=f"the installed botocore has no {SERVICE} model, so the document was not checked against "
            f"the {OPERATION} request syntax",
            fix="run the linter with a complete botocore (pip install botocore), or the project's image",
        )]
    report = ParamValidator().validate(dict(task), shape)
    problems = _problems(report)
    problems += list(_enum_problems(task, shape, ""))
    return [_finding(task, path, message) for path, message in problems]


def _problems(report: ValidationErrors) -> list[tuple[str, str]]:
    """(path, message) per problem botocore found, without any value.

    botocore's ``ValidationErrors`` has no public accessor for its findings: its ``generate_report`` quotes
    the values, which may be secrets. So the private ``_errors`` list of ``(kind, path, details)`` is read,
    defensively: a botocore that changed it yields one value-free finding instead of a traceback, and
    tests/lint/test_lint_botocore_canary.py fails first, where the change can be adapted to.
    """
    errors = getattr(report, "_errors", None)
    problems = []
    for error in errors if isinstance(errors, list) else []:
        try:
            kind, path, details = error
            problems.append(_describe(kind, path.lstrip("."), details))
        except (TypeError, ValueError, KeyError, AttributeError):
            problems.append(("", UNREADABLE_REPORT))
    if not problems and report.has_errors():
        problems.append(("", UNREADABLE_REPORT))
    return problems


def _describe(kind: str, path: str, details: Mapping[str, Any]) -> tuple[str, str]:
    where = path or "the task definition"
    if kind == "missing required field":
        required = details["required_name"]
        return f"{path}.{required}" if path else required, f"{where} lacks the required field {required!r}"
    if kind == "unknown field":
        unknown = details["unknown_param"]
        close = difflib.get_close_matches(unknown, details["valid_names"], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{path}.{unknown}" if path else unknown, f"{where} has the unknown field {unknown!r}{hint}"
    if kind == "invalid type":
        expected = " or ".join(dict.fromkeys(_json_type(t) for t in details["valid_types"]))
        actual = _json_type(f"<class '{type(details['param']).__name__}'>")
        return path, f"{where} must be of type {expected}, not {actual}"
    if kind in ("invalid range", "invalid length"):
        what = "value" if kind == "invalid range" else "length"
        return path, f"{where} is below the minimum {what} of {details['min_allowed']}"
    return path, f"{where}: {kind}"


def _json_type(python_type: str) -> str:
    match = _CLASS_NAME.match(python_type)
    name = match[1] if match else python_type
    return _PYTHON_TO_JSON.get(name, name)


def _enum_problems(value: object, shape: Shape, path: str) -> Iterator[tuple[str, str]]:
    from botocore.model import ListShape, MapShape, StringShape, StructureShape

    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for key, member in shape.members.items():
            if key in value:
                yield from _enum_problems(value[key], member, f"{path}.{key}" if path else key)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _enum_problems(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _enum_problems(item, shape.value, f"{path}.{key}")
    elif isinstance(shape, StringShape) and isinstance(value, str) and shape.enum and value not in shape.enum:
        close = difflib.get_close_matches(value.upper(), shape.enum, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        yield path, f"{path} is not one of {', '.join(shape.enum)}{hint}"


def _finding(task: Mapping[str, Any], path: str, message: str) -> Finding:
    return Finding(
        rule=RULE,
        severity="error",
        container=_container_at(task, path),
        message=f"{message}: ECS {OPERATION} would reject it",
        fix=f"correct {path or 'the document'} to match the {OPERATION} request syntax",
    )


def _container_at(task: Mapping[str, Any], path: str) -> str | None:
    match = _CONTAINER_PATH.match(path)
    if not match:
        return None
    from sidecar.lint.task import name_of

    definitions = task.get("containerDefinitions")
    index = int(match[1])
    if isinstance(definitions, list) and index < len(definitions) and isinstance(definitions[index], Mapping):
        return name_of(definitions[index], index)
    return f"containerDefinitions[{index}]"
