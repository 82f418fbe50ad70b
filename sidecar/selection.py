"""An entry's ``jmesPath``: a JMESPath expression (https://jmespath.org/specification.html) that selects part
of a JSON value. Compiled once, when the configuration is loaded, so a syntax error is a configuration error
before any fetch.

The jmespath library's run-time errors quote the values they were given (``In function length(), invalid type
for value: <the value>``), so none of them leaves this module: each becomes a short reason that names
functions and JSON types only. (The module is not called ``select``: that would shadow the standard library's
``select`` for any script run from this directory.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jmespath
from jmespath import exceptions
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

# JSON's names for the Python types a JSON document is made of (and jmespath's names for them).
_JSON_TYPES: Final[Mapping[str, str]] = {
    "dict": "object", "object": "object", "OrderedDict": "object",
    "list": "array", "array": "array", "_Projection": "array",
    "str": "string", "string": "string",
    "int": "number", "float": "number", "number": "number",
    "bool": "boolean", "boolean": "boolean",
    "NoneType": "null", "null": "null",
    "_Expression": "expression", "expref": "expression",
}
_END_OF_EXPRESSION: Final = "EOF"  # the parser's token type where an expression stops short
# The built-in functions and how many arguments each takes: (count, variadic).
_FUNCTIONS: Final[Mapping[str, tuple[int, bool]]] = {
    name: (len(spec["signature"]), bool(spec["signature"]) and bool(spec["signature"][-1].get("variadic")))
    for name, spec in Functions.FUNCTION_TABLE.items()
}


class SelectionFailed(Exception):
    """The expression cannot be evaluated on a document; ``reason`` completes "the expression ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SelectionSyntax(Exception):
    """An expression that does not compile; ``reason`` says what and where (1-based column)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Selection:
    """A compiled ``jmesPath``; ``expression`` is its text as configured."""

    expression: str
    compiled: ParsedResult = field(compare=False, repr=False)

    def apply(self, document: object) -> object:
        """The part of ``document`` the expression selects (None: nothing matched). Raises SelectionFailed,
        whose reason never quotes the document."""
        try:
            return self.compiled.search(document)
        except exceptions.JMESPathTypeError as exc:
            raise SelectionFailed(_type_reason(exc)) from None
        except RecursionError:
            raise SelectionFailed("recurses too deeply on this document") from None
        except Exception as exc:  # any other library or arithmetic error: its text may hold values
            raise SelectionFailed(f"fails on this document ({type(exc).__name__})") from None


def compile_selection(expression: str) -> Selection:
    """``expression`` compiled; raises SelectionSyntax for a syntax error, an unknown function or a call with
    the wrong number of arguments (which the library would only find when it runs)."""
    try:
        with warnings.catch_warnings():
            # The library reads `text` that is not JSON as a string, with a warning: the specification's
            # literal is JSON, and a JSON value that does not parse is more likely a mistake than a string.
            warnings.simplefilter("error", PendingDeprecationWarning)
            compiled = jmespath.compile(expression)
    except PendingDeprecationWarning:
        raise SelectionSyntax("has a literal between backquotes that is not JSON: write a string as 'text' "
                              "(a raw string) or `\"text\"`") from None
    except exceptions.EmptyExpressionError:
        raise SelectionSyntax("is empty") from None
    except exceptions.IncompleteExpressionError:
        raise SelectionSyntax(f"is incomplete at column {len(expression) + 1}") from None
    except exceptions.LexerError as exc:
        raise SelectionSyntax(f"has a syntax error at column {exc.lexer_position + 1}: {exc.message}") from None
    except exceptions.ParseError as exc:
        if exc.token_type == _END_OF_EXPRESSION:
            raise SelectionSyntax(f"is incomplete at column {exc.lex_position + 1}") from None
        raise SelectionSyntax(f"has a syntax error at column {exc.lex_position + 1}: {exc.msg}") from None
    except RecursionError:
        raise SelectionSyntax("nests too deeply to compile") from None
    for name, count in _calls(compiled.parsed):
        problem = _call_problem(name, count)
        if problem:
            raise SelectionSyntax(problem)
    return Selection(expression, compiled)


def json_type(value: object) -> str:
    """The JSON type of a decoded JSON value: object, array, string, number, boolean or null."""
    return _JSON_TYPES.get(type(value).__name__, "value")


def _calls(tree: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """Each function call in a parsed expression: its name and number of arguments. A loop, not recursion:
    a parsed expression may be nested deeper than Python's recursion limit."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("type") == "function_expression":
            yield node["value"], len(node["children"])
        stack += [child for child in node.get("children", ()) if isinstance(child, Mapping)]


def _call_problem(name: str, count: int) -> str | None:
    if name not in _FUNCTIONS:
        return f"calls {name}(), which is not a JMESPath function"
    expected, variadic = _FUNCTIONS[name]
    if variadic and count < expected:
        return f"calls {name}() with {count} argument(s); it takes at least {expected}"
    if not variadic and count != expected:
        return f"calls {name}() with {count} argument(s); it takes {expected}"
    return None


def _type_reason(exc: exceptions.JMESPathTypeError) -> str:
    """``exc`` without its ``current_value``: the function, the JSON type it got and those it accepts."""
    expected = sorted({_type_name(str(t)) for t in exc.expected_types})
    got = _JSON_TYPES.get(str(exc.actual_type), "value")
    function = exc.function_name if exc.function_name in _FUNCTIONS else "a function"
    return f"gives {function}() a JSON {got} where it takes {' or '.join(expected)}"


def _type_name(signature_type: str) -> str:
    """A function signature's type in words: ``array-number`` is "array of numbers"."""
    base, _, element = signature_type.partition("-")
    words = _JSON_TYPES.get(base, "value")
    return f"{words} of {_JSON_TYPES.get(element, 'value')}s" if element else words
