from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.names import collision_problems, is_env_name, name_problem


@pytest.mark.parametrize("name", ["api_key", "db/password", ".pgpass", "tls/cert.pem", "a.b-c_d", "ünïcode"])
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "non-empty"),
        ("/etc/passwd", "absolute"),
        ("../x", "'..' component"),
        ("a/../b", "'..' component"),
        ("./a", "'.' component"),
        ("a//b", "empty path component"),
        ("a/", "empty path component"),
        ("..data", "reserved"),
        ("a/..x", "reserved"),
        ("a\x00b", "NUL"),
        ("a\nb", "control character"),
        ("x" * 256, "longer than 255"),
        ("a/" * 600 + "b", "longer than 1024"),
    ],
)
def test_rejected_names(name: str, problem: str) -> None:
    result = name_problem(name)
    assert result is not None
    assert problem in result


def test_collisions() -> None:
    assert collision_problems(["a", "b", "c/d"]) == []
    assert collision_problems(["a", "a"]) == ["names 'a' and 'a' are the same file"]
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert len(collision_problems([composed, decomposed])) == 1
    assert collision_problems(["db", "db/password"]) == ["'db' is a file, so 'db/password' cannot be inside it"]


def test_env_names() -> None:
    assert is_env_name("DB_PASSWORD")
    assert is_env_name("_x1")
    assert not is_env_name("1x")
    assert not is_env_name("db/password")
    assert not is_env_name("a-b")


@given(st.text(max_size=200))
def test_no_accepted_name_escapes_the_directory(name: str) -> None:
    if name_problem(name) is None:
        resolved = posixpath.normpath(posixpath.join("/out", name))
        assert resolved.startswith("/out/")
        assert resolved == f"/out/{name}"  # nothing to normalise: the name was already canonical
        assert not name.startswith("..")
