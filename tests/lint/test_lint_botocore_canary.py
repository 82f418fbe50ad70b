"""Canary: the private part of botocore the register-input rule reads (``ValidationErrors._errors``).

botocore has no public accessor for its validation findings that does not quote values. These tests fail on
a botocore that changes what the rule relies on, before a user sees the rule's fallback finding.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.validate import ParamValidator

from sidecar.lint.model import UNREADABLE_REPORT, _problems, check_register_input, input_shape

BAD = {
    "family": "app",
    "containerDefinitions": [{"name": "app", "image": "x", "memory": "512", "unknownField": 1}],
    "cpu": 5,
}


def _errors() -> list[Any]:
    report = ParamValidator().validate({**BAD, "family": None}, input_shape())
    return list(report._errors)


def test_validation_errors_keep_kind_path_and_details_tuples() -> None:
    errors = _errors()
    assert errors and all(isinstance(e, tuple) and len(e) == 3 for e in errors)
    kinds = {kind: details for kind, _, details in errors}
    assert set(kinds) >= {"invalid type", "unknown field"}
    assert {"param", "valid_types"} <= set(kinds["invalid type"])
    assert {"unknown_param", "valid_names"} <= set(kinds["unknown field"])


def test_the_rule_describes_every_finding_without_the_fallback() -> None:
    findings = check_register_input(BAD)
    assert findings and all(UNREADABLE_REPORT not in f.message for f in findings)


def test_a_report_in_an_unknown_form_is_one_value_free_finding() -> None:
    class Changed:
        _errors: ClassVar = [("invalid type", "cpu")]  # a tuple of another length

        def has_errors(self) -> bool:
            return True

    assert _problems(Changed()) == [("", UNREADABLE_REPORT)]  # type: ignore[arg-type]
