"""The env file never lets anyone read an entry its own file keeps from them: the rule, checked against a
model of the kernel's permission check for every user and group membership."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.access import Access, env_file_problem, uncovered_readers

MODES = (0o400, 0o440, 0o404, 0o444, 0o600, 0o640)  # every read pattern the configuration accepts
IDS = (1000, 2000, 3000)


def can_read(uid: int, groups: frozenset[int], file: Access) -> bool:
    """The kernel's rule for a non-root user: owner bits, else group bits, else other bits, never a mix."""
    if uid == file.uid:
        return bool(file.mode & 0o400)
    if file.gid in groups:
        return bool(file.mode & 0o040)
    return bool(file.mode & 0o004)


accesses = st.builds(Access, st.sampled_from(MODES), st.sampled_from(IDS), st.sampled_from(IDS))
memberships = st.fixed_dictionaries({uid: st.frozensets(st.sampled_from(IDS)) for uid in (*IDS, 4000)})


@given(env=accesses, entry=accesses, groups=memberships)
def test_when_the_rule_passes_no_user_reads_the_env_file_without_the_entry(
    env: Access, entry: Access, groups: dict[int, frozenset[int]]
) -> None:
    if uncovered_readers(env, entry):
        return
    for uid, member_of in groups.items():
        if can_read(uid, member_of, env):
            assert can_read(uid, member_of, entry), (uid, member_of)


@pytest.mark.parametrize(("env", "entry", "gaps"), [
    (Access(0o400, 1000, 1000), Access(0o400, 1000, 1000), []),  # the default: one owner, 0400
    (Access(0o400, 1000, 1000), Access(0o440, 1000, 1000), []),  # the entry is wider
    (Access(0o440, 1000, 1000), Access(0o440, 2000, 1000), ["uid 1000"]),
    (Access(0o440, 1000, 1000), Access(0o400, 1000, 1000), ["group 1000"]),
    (Access(0o444, 1000, 1000), Access(0o400, 1000, 1000), ["group 1000", "every user"]),
    (Access(0o400, 1000, 1000), Access(0o400, 2000, 2000), ["uid 1000"]),  # an entry for another user
    (Access(0o444, 1000, 1000), Access(0o444, 2000, 2000), []),
    (Access(0o444, 1000, 1000), Access(0o404, 1000, 2000), ["group 1000", "every user"]),  # group 2000 is denied
])
def test_uncovered_readers(env: Access, entry: Access, gaps: list[str]) -> None:
    assert uncovered_readers(env, entry) == gaps


def test_the_problem_names_every_exposed_entry_and_no_other() -> None:
    problem = env_file_problem("app.env", Access(0o440, 1000, 1000), [
        ("db_password", Access(0o400, 1000, 1000)),
        ("shared", Access(0o440, 1000, 1000)),
        ("other_app", Access(0o440, 2000, 2000)),
    ])
    assert problem is not None
    assert problem.startswith("the env file 'app.env' (mode 0440, owner 1000:1000) holds every entry's value, "
                              "so group 1000, uid 1000 could read through it")
    assert "'db_password' (mode 0400, owner 1000:1000); 'other_app' (mode 0440, owner 2000:2000)." in problem
    assert "'shared'" not in problem
