"""``jmesPath``: compiled when the configuration loads, applied when rendering, and never quoting the document."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.config import load_settings
from sidecar.errors import ConfigError, FetchError
from sidecar.outcomes import Failure, Fetched
from sidecar.render import render
from sidecar.secret import SecretBytes
from sidecar.selection import SelectionFailed, SelectionSyntax, compile_selection, json_type

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
DOC = {
    "db": {"primary": {"password": "pw-primary", "port": 5432}, "replicas": [{"host": "r1"}, {"host": "r2"}]},
    "db-primary": {"password": "pw-hyphen"},
    "flags": {"beta": True, "ratio": 0.5, "note": None},
}


def settings_for(*entries: dict[str, object]):  # type: ignore[no-untyped-def]
    environ = {"AWS_REGION": "eu-west-1", "SIDECAR_SECRETS": json.dumps(list(entries))}
    return load_settings({}, environ, process_uid=1000, process_gid=1000)


def config_error(*entries: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_for(*entries)
    return caught.value.message


def fetched(value: str) -> Fetched:
    return Fetched(SecretBytes(value.encode()), "v1")


def rendered(entry: dict[str, object], document: object = DOC) -> dict[str, bytes]:
    settings = settings_for(entry)
    result = render(settings, {settings.entries[0].references[0].target: fetched(json.dumps(document))})
    return {f.path: f.content.reveal() for f in result.files}


def render_error(entry: dict[str, object], document: object = DOC) -> str:
    with pytest.raises(FetchError) as caught:
        rendered(entry, document)
    return caught.value.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("db.primary.password", b"pw-primary"),
        ('"db-primary".password', b"pw-hyphen"),
        ("db.primary.port", b"5432"),
        ("flags.beta", b"true"),
        ("db.primary", b'{"password":"pw-primary","port":5432}'),  # compact, sorted JSON
        ("db.replicas[*].host", b'["r1","r2"]'),
        ("db.replicas[?host=='r2'] | [0].host", b"r2"),
        ('db.replicas[?host==`"r1"`].host | [0]', b"r1"),
        ("join(',', db.replicas[].host)", b"r1,r2"),
        ("length(db.replicas)", b"2"),
    ],
)
def test_the_selection_is_written_like_a_json_key(expression: str, expected: bytes) -> None:
    assert rendered({"name": "v", "valueFrom": ARN, "jmesPath": expression}) == {"v": expected}


@pytest.mark.parametrize("value_from", [ARN, "/prod/config", "s3://my-bucket/config.json"])
def test_every_source_can_be_selected_from(value_from: str) -> None:
    assert rendered({"name": "v", "valueFrom": value_from, "jmesPath": "db.primary.password"}) == {"v": b"pw-primary"}


def test_expand_of_a_selected_object_writes_one_file_per_key() -> None:
    files = rendered({"name": "primary", "valueFrom": ARN, "jmesPath": "db.primary", "expand": True})
    assert files == {"primary/password": b"pw-primary", "primary/port": b"5432"}


def test_expand_of_a_selection_that_is_not_an_object_fails_naming_its_type() -> None:
    message = render_error({"name": "r", "valueFrom": ARN, "jmesPath": "db.replicas", "expand": True})
    assert message == (f"'r': expand needs a JSON object, but jmesPath 'db.replicas' selects a JSON array in "
                       f"secret {ARN}")


def test_no_match_names_the_entry_and_the_expression_only() -> None:
    message = render_error({"name": "v", "valueFrom": ARN, "jmesPath": "db.secondary.password"})
    assert message == f"'v': jmesPath 'db.secondary.password' matches nothing in secret {ARN}"


def test_a_selected_null_is_no_match() -> None:
    message = render_error({"name": "v", "valueFrom": "/p", "jmesPath": "flags.note"})
    assert message == "'v': jmesPath 'flags.note' matches nothing in parameter /p in eu-west-1"


def test_an_optional_entry_whose_expression_matches_nothing_still_fails() -> None:
    """The secret exists: skipping would hide a mistyped path."""
    message = render_error({"name": "v", "valueFrom": "/p", "jmesPath": "nope", "optional": True})
    assert message == "'v': jmesPath 'nope' matches nothing in parameter /p in eu-west-1"


def test_an_optional_entry_whose_secret_is_missing_is_skipped() -> None:
    settings = settings_for({"name": "v", "valueFrom": "/p", "jmesPath": "a", "optional": True})
    result = render(settings, {settings.entries[0].reference.target: Failure("ParameterNotFound", "gone", True)})
    assert (result.files, result.skipped) == ((), (("v", "gone"),))


def test_a_value_that_is_not_json_fails_without_quoting_it() -> None:
    settings = settings_for({"name": "v", "valueFrom": "/p", "jmesPath": "a"})
    with pytest.raises(FetchError) as caught:
        render(settings, {settings.entries[0].reference.target: fetched("plain-text-secret-value")})
    assert caught.value.message == "'v': jmesPath 'a' needs JSON, but parameter /p in eu-west-1 is not JSON"


SEEDED = ["seeded-secret-alpha", "seeded-secret-beta", "4242"]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("length(a)", "gives length() a JSON number where it takes array or object or string"),
        ("abs(b)", "gives abs() a JSON string where it takes number"),
        ("sum(c)", "gives sum() a JSON string where it takes array of numbers"),
        ("to_number(b) + `1`", None),  # no arithmetic in JMESPath: a syntax error, checked below
        ("sort_by(d, &x)", "gives sort_by() a JSON object where it takes number or string"),
        ("max_by(c, &@)", "gives max_by() a JSON array where it takes number or string"),
        ("starts_with(a, b)", "gives starts_with() a JSON number where it takes string"),
        ("keys(b)", "gives keys() a JSON string where it takes object"),
        # merge() type-checks its first argument only; the library's own ValueError is named by its type.
        ("merge(d[0], b)", "fails on this document (ValueError)"),
        ("avg(c)", "gives avg() a JSON string where it takes array of numbers"),
    ],
)
def test_function_errors_never_quote_the_document(expression: str, reason: str | None) -> None:
    document = {"a": 4242, "b": SEEDED[0], "c": [1, SEEDED[1]], "d": [{"x": {"k": SEEDED[0]}}, {"x": {"k": 1}}]}
    if reason is None:
        with pytest.raises(SelectionSyntax):
            compile_selection(expression)
        return
    if expression.startswith("max_by"):
        document["c"] = [[SEEDED[1]], [SEEDED[0]]]
    message = render_error({"name": "v", "valueFrom": "/p", "jmesPath": expression}, document)
    assert message == (f"'v': jmesPath {expression!r} cannot be applied to parameter /p in eu-west-1: the expression "
                       f"{reason}")
    for value in SEEDED:
        assert value not in message


def test_the_library_own_messages_would_have_quoted_the_values() -> None:
    """Why the reasons are composed here: jmespath's own text holds the value it was given."""
    import jmespath
    from jmespath.exceptions import JMESPathTypeError

    with pytest.raises(JMESPathTypeError) as caught:
        jmespath.search("abs(b)", {"b": SEEDED[0]})
    assert SEEDED[0] in str(caught.value)
    with pytest.raises(SelectionFailed) as ours:
        compile_selection("abs(b)").apply({"b": SEEDED[0]})
    assert SEEDED[0] not in str(ours.value)
    assert ours.value.__cause__ is None
    assert ours.value.__suppress_context__


def test_any_other_failure_is_named_by_its_type_only() -> None:
    with pytest.raises(SelectionFailed) as caught:
        compile_selection("floor(a)").apply({"a": float("inf")})
    assert caught.value.reason == "fails on this document (OverflowError)"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("db..password", "has a syntax error at column 4: Expecting: ['quoted_identifier', 'unquoted_identifier', "
                         "'lbracket', 'lbrace'], got: dot"),
        ("db.primary.", "is incomplete at column 12"),
        ("", "is empty"),
        ("db.$x", "has a syntax error at column 4: Unknown token $"),
        ("db.`{", "has a syntax error at column 4: Unclosed ` delimiter"),
        ("db[?a ==", "is incomplete at column 9"),
        ("lenght(db)", "calls lenght(), which is not a JMESPath function"),
        ("db[?host == `r1`]", "has a literal between backquotes that is not JSON: write a string as 'text' (a raw "
                              "string) or `\"text\"`"),
        ("length(db, db)", "calls length() with 2 argument(s); it takes 1"),
        ("not_null()", "calls not_null() with 0 argument(s); it takes at least 1"),
        ("a[?length(b) > `1`].c | sort_by(@, &lengthy(x))", "calls lengthy(), which is not a JMESPath function"),
    ],
)
def test_syntax_errors_are_configuration_errors_naming_the_position(expression: str, reason: str) -> None:
    with pytest.raises(SelectionSyntax) as caught:
        compile_selection(expression)
    assert caught.value.reason == reason
    message = config_error({"name": "v", "valueFrom": "/p", "jmesPath": expression})
    assert message == f"SIDECAR_SECRETS[0] ('v'): jmesPath {expression!r} {reason}"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "v", "valueFrom": f"{ARN}:db::", "jmesPath": "primary.password"},
         "SIDECAR_SECRETS[0] ('v'): jmesPath cannot be combined with the json-key 'db' of valueFrom: remove the "
         "json-key and write the whole path in jmesPath"),
        ({"name": "v", "valueFrom": "/p", "jmesPath": 3},
         "SIDECAR_SECRETS[0] ('v'): jmesPath must be a string (a JMESPath expression)"),
        ({"name": "v", "valueFrom": "/p", "jmesPath": "a\x00"},
         "SIDECAR_SECRETS[0] ('v'): jmesPath is not text: it holds a NUL character or is not valid UTF-8"),
        ({"name": "v", "template": "{{ a }}", "inputs": {"a": "/p"}, "jmesPath": "a"},
         "SIDECAR_SECRETS[0]: 'jmesPath' does not apply to a template entry (keys: name, template, templateFile, "
         "inputs, mode, uid, gid, roleArn, failoverRegion)"),
        ({"name": "v", "valueFrom": "/p", "jmespath": "a"},
         "SIDECAR_SECRETS[0]: unknown key 'jmespath' (did you mean jmesPath?)"),
    ],
)
def test_entry_errors(entry: dict[str, object], message: str) -> None:
    assert config_error(entry) == message


def test_a_json_key_with_stage_only_suffix_combines() -> None:
    """``::AWSPREVIOUS:`` selects a version, not a key: jmesPath applies to that version's value."""
    settings = settings_for({"name": "v", "valueFrom": f"{ARN}::AWSPREVIOUS:", "jmesPath": "db.primary.password"})
    assert settings.entries[0].selection is not None
    assert settings.entries[0].selection.expression == "db.primary.password"


def test_entries_with_the_same_expression_are_equal() -> None:
    one, two = (settings_for({"name": "v", "valueFrom": "/p", "jmesPath": "a.b"}).entries[0] for _ in range(2))
    assert one == two


def test_the_manifest_records_the_expression_beside_value_from() -> None:
    settings = settings_for({"name": "v", "valueFrom": ARN, "jmesPath": "db.primary.password"},
                            {"name": "w", "valueFrom": "/p"})
    outcomes = {settings.entries[0].reference.target: fetched(json.dumps(DOC)),
                settings.entries[1].reference.target: fetched("x")}
    manifest = json.loads(render(settings, outcomes).manifest)
    sources = {e["name"]: e["source"] for e in manifest["entries"]}
    assert sources["v"] == {"service": "secretsmanager", "region": "eu-west-1", "servedBy": "eu-west-1",
                            "valueFrom": ARN, "versionId": "v1", "jmesPath": "db.primary.password"}
    assert "jmesPath" not in sources["w"]
    assert b"pw-primary" not in render(settings, outcomes).manifest


@pytest.mark.parametrize(
    ("value", "name"),
    [({}, "object"), ([], "array"), ("", "string"), (1, "number"), (1.5, "number"), (True, "boolean"),
     (None, "null")],
)
def test_json_type_names(value: object, name: str) -> None:
    assert json_type(value) == name


def test_a_template_reaches_two_levels_without_jmes_path() -> None:
    """As docs/configuration.md says: a json-key input is that key's JSON, and the placeholder reads into it."""
    entry = {"name": "url", "template": "{{ db.primary }}", "inputs": {"db": f"{ARN}:db::"}}
    nested = {"db": {"primary": {"password": "pw"}}}
    assert rendered(entry, nested) == {"url": b'{"password":"pw"}'}


def test_expressions_nested_past_the_recursion_limit_are_reasons_not_crashes() -> None:
    with pytest.raises(SelectionSyntax) as caught:
        compile_selection("(" * 3000 + "a" + ")" * 3000)
    assert caught.value.reason == "nests too deeply to compile"
    with pytest.raises(SelectionSyntax) as caught:
        compile_selection("a | " * 3000 + "lenth(a)")
    assert caught.value.reason == "calls lenth(), which is not a JMESPath function"
    with pytest.raises(SelectionFailed) as failed:
        compile_selection("a | " * 3000 + "a").apply({"a": {"a": SEEDED[0]}})
    assert failed.value.reason == "recurses too deeply on this document"


JMES_ALPHABET = st.sampled_from([*"ab.[]*?@&|!(),:'\"`{}<>=-0123456789 \\$", "length", "sort_by", '`{"a":1}`'])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(JMES_ALPHABET, max_size=30).map("".join)))
def test_any_text_compiles_or_is_a_syntax_reason(expression: str) -> None:
    try:
        selection = compile_selection(expression)
    except SelectionSyntax as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    try:
        selection.apply(DOC)
    except SelectionFailed as failed:
        assert "pw-" not in failed.reason
