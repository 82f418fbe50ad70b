"""One POSIX quoting for the env file and the template's ``sh`` filter."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from sidecar.shell import shell_quoted, shell_quoted_text
from sidecar.template import FILTERS


@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))))
def test_a_quoted_word_is_read_back_by_a_posix_shell_lexer_as_itself(text: str) -> None:
    assert shlex.split(shell_quoted_text(text), posix=True) == [text]


def test_the_sh_filter_and_the_env_file_quote_alike() -> None:
    value = "it's a 'quoted' $HOME `x` \\ value"
    expected = "'it'\\''s a '\\''quoted'\\'' $HOME `x` \\ value'"
    assert FILTERS["sh"](value) == shell_quoted(value.encode()).decode() == expected
