"""Parameter trees (``parametersByPath``) in-process: the path's rules, the plan, the pages of
GetParametersByPath through the real operation and executor, the change token, and rendering into files."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest
import structlog
from botocore import exceptions as bce
from structlog.testing import capture_logs

from sidecar import aws
from sidecar.config import load_settings
from sidecar.deadline import Deadline
from sidecar.errors import ConfigError, FetchError
from sidecar.fetch import Fetcher
from sidecar.outcomes import Checked, Failure, Fetched, FetchedTree, TreePage, TreeParameter, tree_token
from sidecar.plan import MAX_PARAMETERS_BY_PATH_RESULTS, Call, follow_ups, is_immutable, make_check_plan, make_plan
from sidecar.references import ParameterPathTarget, ParameterTarget, parse_parameter_path
from sidecar.render import render
from sidecar.secret import SecretBytes

EU = "eu-west-1"
READER = "arn:aws:iam::111111111111:role/reader"


# --- the path ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "recursive", "expected"), [
    ("/prod/app", True, ParameterPathTarget(EU, "/prod/app", True)),
    ("/prod/app/", False, ParameterPathTarget(EU, "/prod/app", False)),
    ("/", True, ParameterPathTarget(EU, "/", True)),
    ("/aws/service/global-infrastructure/regions", False,
     ParameterPathTarget(EU, "/aws/service/global-infrastructure/regions", False)),
])
def test_a_path_is_kept_without_its_trailing_slash(path: str, recursive: bool, expected: ParameterPathTarget) -> None:
    assert parse_parameter_path(path, recursive, EU) == expected


@pytest.mark.parametrize(("path", "fragment"), [
    ("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/app", "is an ARN; GetParametersByPath takes a path"),
    ("prod/app", "must begin with '/'"),
    ("/prod//app", "is not a valid SSM path"),
    ("/prod/app:3", "is not a valid SSM path"),
    ("/prod/a pp", "is not a valid SSM path"),
    (" /prod/app", "leading or trailing whitespace"),
    ("", "must be a non-empty string"),
    (42, "must be a non-empty string"),
    ("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o", "has at most 14"),
    ("/aws/reference/secretsmanager", "no parameter name can begin with 'aws' or 'ssm'"),
    ("/ssm/x", "no parameter name can begin with 'aws' or 'ssm'"),
])
def test_a_path_that_cannot_name_a_tree_is_a_configuration_error(path: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_parameter_path(path, True, EU)
    assert fragment in raised.value.message


def test_a_path_needs_a_region() -> None:
    with pytest.raises(ConfigError, match="carries no region"):
        parse_parameter_path("/prod/app", True, None)


def test_names_relative_to_the_path() -> None:
    tree = ParameterPathTarget(EU, "/prod/app")
    assert tree.relative_name("/prod/app/db/password") == "db/password"
    assert tree.relative_name("/prod/apple/pie") is None  # a sibling sharing the path's letters
    assert tree.relative_name("/prod/app") is None
    root = ParameterPathTarget(EU, "/")
    assert (root.relative_name("/a/b"), root.relative_name("db")) == ("a/b", "db")


# --- entries ------------------------------------------------------------------------------------------------


def settings_for(*entries: dict[str, object], **env: str):  # type: ignore[no-untyped-def]
    environ = {"AWS_REGION": EU, "SIDECAR_SECRETS": json.dumps(list(entries)), **env}
    return load_settings({}, environ, process_uid=1000, process_gid=1000)


def test_a_tree_entry_is_recursive_unless_it_says_otherwise() -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/prod/app/", "mode": "0440", "optional": True},
                            {"name": "top", "parametersByPath": "/prod/app", "recursive": False})
    app, top = settings.entries
    assert app.tree == ParameterPathTarget(EU, "/prod/app", True)
    assert (app.mode, app.optional, app.is_directory, app.value_from) == (0o440, True, True, "/prod/app/")
    assert top.tree == ParameterPathTarget(EU, "/prod/app", False)


def test_a_tree_is_read_with_the_entrys_role_and_failover_region() -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/p", "roleArn": READER,
                             "failoverRegion": "eu-central-1"})
    assert settings.entries[0].tree == ParameterPathTarget(EU, "/p", True, role_arn=READER,
                                                           failover_region="eu-central-1")


@pytest.mark.parametrize(("entry", "fragment"), [
    ({"name": "app", "parametersByPath": "/p", "valueFrom": "/p/x"}, "give either valueFrom or parametersByPath"),
    ({"name": "app"}, "valueFrom is required (or parametersByPath"),
    ({"name": "app", "parametersByPath": "/p", "expand": True}, "'expand' does not apply to a parametersByPath"),
    ({"name": "app", "parametersByPath": "/p", "jmesPath": "a"}, "'jmesPath' does not apply to a parametersByPath"),
    ({"name": "app", "parametersByPath": "/p", "recursive": "yes"}, "recursive must be true or false"),
    ({"name": "app", "valueFrom": "/p/x", "recursive": True}, "recursive applies only to parametersByPath"),
    ({"parametersByPath": "/p"}, "name is required"),
    ({"name": "../app", "parametersByPath": "/p"}, "has a '..' component"),
])
def test_tree_entry_mistakes_are_configuration_errors(entry: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_for(entry)
    assert fragment in raised.value.message


def test_a_tree_is_a_directory_that_another_entry_may_write_into_but_not_be() -> None:
    settings_for({"name": "app", "parametersByPath": "/p"}, {"name": "app/extra", "valueFrom": "/q"})
    with pytest.raises(ConfigError, match="duplicate names"):
        settings_for({"name": "app", "parametersByPath": "/p"}, {"name": "app", "valueFrom": "/q"})


# --- the plan -------------------------------------------------------------------------------------------------


def test_each_tree_is_one_call_of_its_own_beside_the_batched_names() -> None:
    tree, flat = ParameterPathTarget(EU, "/prod/app"), ParameterPathTarget(EU, "/prod/app", recursive=False)
    names = [ParameterTarget(EU, f"/prod/app/{i}") for i in range(3)]
    as_reader = ParameterPathTarget(EU, "/prod/app", role_arn=READER)
    calls = make_plan([tree, flat, *names, as_reader, tree])
    assert sorted((c.operation, len(c.targets), c.role_arn or "") for c in calls) == [
        ("GetParameters", 3, ""), ("GetParametersByPath", 1, ""), ("GetParametersByPath", 1, ""),
        ("GetParametersByPath", 1, READER)]


def test_a_tree_is_never_immutable_and_is_checked_with_one_call() -> None:
    tree = ParameterPathTarget(EU, "/prod/app", role_arn=READER)
    assert not is_immutable(tree)
    assert make_check_plan([tree]) == (Call("ssm", EU, "GetParametersByPath", (tree,), READER),)


def test_a_page_with_a_next_token_is_followed_by_the_next_page_carrying_the_ones_before() -> None:
    tree = ParameterPathTarget(EU, "/p", role_arn=READER)
    call = Call("ssm", EU, "GetParametersByPath", (tree,), READER)
    page = TreePage((TreeParameter("/p/a", SecretBytes(b"x"), "1"),), "token-2")
    assert follow_ups(call, {tree: page}) == (Call("ssm", EU, "GetParametersByPath", (tree,), READER, page),)
    assert follow_ups(call, {tree: FetchedTree(page.parameters)}) == ()
    assert follow_ups(call, {tree: Failure("AccessDeniedException", "denied")}) == ()


# --- pages, through the real operation -----------------------------------------------------------------------


class FakeSsm:
    """GetParametersByPath over ``parameters`` (name -> (value, version)), ``per_page`` at a time, with the
    token an offset, as moto does; ``empty_pages`` inserts pages with no parameter but a token, as AWS may."""

    def __init__(self, parameters: Mapping[str, tuple[str, int]], per_page: int = MAX_PARAMETERS_BY_PATH_RESULTS,
                 empty_pages: int = 0, fail: Mapping[int, Exception] | None = None) -> None:
        self.parameters = dict(parameters)
        self.per_page = per_page
        self.empty_pages = empty_pages
        self.fail = dict(fail or {})  # request number -> error raised instead of answering
        self.requests: list[dict[str, Any]] = []

    def get_parameters_by_path(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if len(self.requests) in self.fail:
            raise self.fail[len(self.requests)]
        if self.empty_pages:
            self.empty_pages -= 1
            return {"Parameters": [], "NextToken": request.get("NextToken", "0")}
        prefix = request["Path"].rstrip("/") + "/"
        names = sorted(n for n in self.parameters if n.startswith(prefix)
                       and (request["Recursive"] or "/" not in n[len(prefix):]))
        start = int(request.get("NextToken", "0"))
        chunk = names[start : start + min(self.per_page, request["MaxResults"])]
        answer: dict[str, Any] = {"Parameters": [
            {"Name": n, "Type": "SecureString", "Version": self.parameters[n][1],
             "Value": self.parameters[n][0] if request["WithDecryption"] else "kms:alias/aws/ssm:AQICAH..."}
            for n in chunk]}
        if start + len(chunk) < len(names):
            answer["NextToken"] = str(start + len(chunk))
        return answer

    def ssm(self, region: str, role_arn: str | None = None) -> FakeSsm:
        return self

    def client(self, service: str, region: str, role_arn: str | None = None) -> FakeSsm:
        return self


class Instant(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def run_tree(ssm: FakeSsm, tree: ParameterPathTarget, *, check: bool = False, max_bytes: int = 1024
             ) -> tuple[Any, Fetcher, list[dict[str, Any]]]:
    with capture_logs() as logs:
        fetcher = Fetcher(ssm, Deadline(60), structlog.get_logger(),  # type: ignore[arg-type]
                          concurrency=2, max_bytes=max_bytes, sleep=lambda _s: None, rng=Instant())
        calls = make_check_plan([tree]) if check else make_plan([tree])
        outcomes = fetcher.check(calls) if check else fetcher.fetch(calls)
    return outcomes[tree], fetcher, logs


APP = {f"/prod/app/db/replica{i:02d}": (f"replica-{i:02d}", i + 1) for i in range(12)}
APP |= {"/prod/app/key": ("the-key", 3), "/prod/apple/pie": ("not-under-it", 1)}
TREE = ParameterPathTarget(EU, "/prod/app")


def test_every_page_is_a_call_and_the_tree_holds_every_parameter_in_name_order() -> None:
    ssm = FakeSsm(APP)
    tree, fetcher, logs = run_tree(ssm, TREE)

    assert isinstance(tree, FetchedTree)
    assert [(p.name, p.value.reveal() if p.value else None, p.version) for p in tree.parameters] == sorted(
        (n, v.encode(), str(version)) for n, (v, version) in APP.items() if n.startswith("/prod/app/"))
    assert [r.get("NextToken") for r in ssm.requests] == [None, "10"]
    assert all(r["Path"] == "/prod/app" and r["Recursive"] and r["WithDecryption"] and r["MaxResults"] == 10
               for r in ssm.requests)
    assert fetcher.stats.api_calls == 2
    assert [e["operation"] for e in logs if e["event"] == "api_call"] == ["GetParametersByPath"] * 2


def test_empty_pages_with_a_token_do_not_end_the_tree() -> None:
    ssm = FakeSsm(APP, per_page=4, empty_pages=2)
    tree, fetcher, _ = run_tree(ssm, TREE)
    assert isinstance(tree, FetchedTree) and len(tree.parameters) == 13
    assert fetcher.stats.api_calls == 2 + 4  # two empty pages, then 13 parameters four at a time


def test_a_throttled_page_is_retried_on_its_own_and_keeps_the_pages_before_it() -> None:
    throttled = bce.ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                                 "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetParametersByPath")
    ssm = FakeSsm(APP, per_page=5, fail={2: throttled})
    tree, fetcher, logs = run_tree(ssm, TREE)
    assert isinstance(tree, FetchedTree) and len(tree.parameters) == 13
    assert [r.get("NextToken") for r in ssm.requests] == [None, "5", "5", "10"]
    assert (fetcher.stats.api_calls, fetcher.stats.retries) == (4, 1)
    assert [e["attempt"] for e in logs if e["event"] == "retry"] == [1]


class Regions:
    """A client factory whose SSM client is a FakeSsm per region."""

    def __init__(self, **by_region: FakeSsm) -> None:
        self.by_region = {region.replace("_", "-"): ssm for region, ssm in by_region.items()}

    def ssm(self, region: str, role_arn: str | None = None) -> FakeSsm:
        return self.by_region[region]

    def client(self, service: str, region: str, role_arn: str | None = None) -> FakeSsm:
        return self.by_region[region]


def test_a_tree_that_fails_over_mid_way_starts_again_at_the_first_page_of_the_failover_region() -> None:
    unavailable = bce.ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"},
                                   "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetParametersByPath")
    own = FakeSsm(APP, per_page=5, fail=dict.fromkeys(range(2, 100), unavailable))
    replica = FakeSsm({n: (f"replica {v}", version) for n, (v, version) in APP.items()}, per_page=5)
    tree = ParameterPathTarget(EU, "/prod/app", failover_region="eu-central-1")
    with capture_logs():
        fetcher = Fetcher(Regions(eu_west_1=own, eu_central_1=replica), Deadline(600),  # type: ignore[arg-type]
                          structlog.get_logger(), concurrency=2, max_bytes=1024, sleep=lambda _s: None, rng=Instant())
        fetched = fetcher.fetch(make_plan([tree]))[tree]

    assert isinstance(fetched, FetchedTree) and fetched.region == "eu-central-1"
    assert {p.value.reveal() for p in fetched.parameters if p.value} == {
        f"replica {v}".encode() for n, (v, _) in APP.items() if n.startswith("/prod/app/")}
    assert [r.get("NextToken") for r in own.requests][:2] == [None, "5"]
    assert [r.get("NextToken") for r in replica.requests] == [None, "5", "10"]


def test_a_denied_tree_names_the_permission_and_the_path_as_its_resource() -> None:
    denied = bce.ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
                              "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetParametersByPath")
    failure, fetcher, _ = run_tree(FakeSsm(APP, fail={1: denied}), TREE)
    assert isinstance(failure, Failure) and fetcher.stats.api_calls == 1
    assert "the task role lacks ssm:GetParametersByPath on parameters under /prod/app" in failure.reason
    assert "arn:aws:ssm:eu-west-1:ACCOUNT:parameter/prod/app" in failure.reason


def test_an_empty_tree_is_not_found_so_that_an_optional_entry_is_skipped() -> None:
    failure, _, _ = run_tree(FakeSsm({"/prod/apple/pie": ("x", 1)}), TREE)
    assert failure == Failure("NoParameters", "there is no parameter under /prod/app in eu-west-1 (at any depth)",
                              not_found=True)


def test_a_parameter_over_max_bytes_fails_the_tree_naming_the_parameter_not_the_value() -> None:
    failure, _, _ = run_tree(FakeSsm({**APP, "/prod/app/big": ("b" * 2000, 1)}), TREE)
    assert isinstance(failure, Failure) and failure.code == "TooLarge"
    assert failure.reason == ("the parameter '/prod/app/big' under /prod/app is larger than SIDECAR_MAX_BYTES "
                              "(1024 bytes)")


def test_a_check_reads_names_and_versions_without_decryption() -> None:
    ssm = FakeSsm(APP)
    checked, fetcher, _ = run_tree(ssm, TREE, check=True)
    fetched, _, _ = run_tree(FakeSsm(APP), TREE)
    assert isinstance(fetched, FetchedTree)
    assert checked == Checked(fetched.change_token)
    assert [r["WithDecryption"] for r in ssm.requests] == [False, False] and fetcher.stats.api_calls == 2


def test_the_change_token_follows_names_and_versions_never_values() -> None:
    def token(parameters: Mapping[str, tuple[str, int]]) -> str:
        return tree_token(TreeParameter(n, SecretBytes(v.encode()), str(version))
                          for n, (v, version) in parameters.items())

    base = {"/p/a": ("one", 1), "/p/b": ("two", 1)}
    assert token(base) == token(dict(reversed(base.items())))
    assert token(base) == token({"/p/a": ("other value", 1), "/p/b": ("two", 1)})  # a value alone is no version
    others = [{**base, "/p/c": ("three", 1)}, {"/p/a": ("one", 1)}, {**base, "/p/b": ("two", 2)}]
    assert len({token(base), *map(token, others)}) == 4


def test_reprs_of_trees_pages_and_calls_reveal_no_value() -> None:
    parameter = TreeParameter("/p/a", SecretBytes(b"tree-secret-value"), "1")
    page = TreePage((parameter,), "t")
    call = Call("ssm", EU, "GetParametersByPath", (ParameterPathTarget(EU, "/p"),), page=page)
    for shown in (repr(parameter), repr(page), repr(FetchedTree((parameter,))), repr(call), str(call)):
        assert "tree-secret-value" not in shown and "<redacted>" in shown


# --- rendering ------------------------------------------------------------------------------------------------


def tree_of(*names: str) -> FetchedTree:
    return FetchedTree(tuple(TreeParameter(n, SecretBytes(f"value of {n}".encode()), "7") for n in sorted(names)))


def test_each_parameter_becomes_a_file_at_its_relative_name_with_the_entrys_mode_and_owner() -> None:
    settings = settings_for({"name": "conf/app", "parametersByPath": "/prod/app", "mode": "0440", "uid": 7})
    rendered = render(settings, {settings.entries[0].tree: tree_of("/prod/app/db/password", "/prod/app/key")})
    assert [(f.path, f.content.reveal(), f.mode, f.uid, f.shown) for f in rendered.files] == [
        ("conf/app/db/password", b"value of /prod/app/db/password", 0o440, 7, "conf/app/db/password"),
        ("conf/app/key", b"value of /prod/app/key", 0o440, 7, "conf/app/key"),
    ]
    (record,) = json.loads(rendered.manifest)["entries"]
    assert record["source"] == {"service": "ssm", "region": EU, "servedBy": EU, "parametersByPath": "/prod/app",
                                "recursive": True}
    assert [(f["path"], f["versionId"]) for f in record["files"]] == [("conf/app/db/password", "7"),
                                                                      ("conf/app/key", "7")]


@pytest.mark.parametrize(("names", "message"), [
    (("/prod/app/a", "/prod/app/..data"),
     "'app': parameter #1 (in name order) under /prod/app cannot be a file: its name relative to the path has a "
     "component beginning with '..' (reserved for the sidecar's own files)"),
    (("/prod/app/" + "x" * 256,),
     "'app': parameter #1 (in name order) under /prod/app cannot be a file: its name relative to the path has a "
     "component longer than 255 bytes"),
    (("/prod/app/ok", "/prod/other"),
     "'app': parameter #2 (in name order) under /prod/app cannot be a file: its name relative to the path is not "
     "under the path"),
    (("/prod/app/db", "/prod/app/db/password"),
     "'app': the parameters under /prod/app cannot all be files: 'app/db' is a file, so 'app/db/password' cannot "
     "be inside it"),
])
def test_names_that_cannot_be_files_fail_the_run(names: tuple[str, ...], message: str) -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/prod/app"})
    with pytest.raises(FetchError) as raised:
        render(settings, {settings.entries[0].tree: tree_of(*names)})
    assert raised.value.message == message


def test_a_file_of_another_entry_inside_the_tree_is_caught_once_the_tree_is_known() -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/prod/app"}, {"name": "app/key", "valueFrom": "/q"})
    tree, single = (entry.references[0].target for entry in settings.entries)
    with pytest.raises(FetchError, match="'app/key' are the same file"):
        render(settings, {tree: tree_of("/prod/app/key"), single: Fetched(SecretBytes(b"q"), "1")})


def test_tree_files_go_into_the_env_file_as_variables() -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/prod/app"}, SIDECAR_ENV_FILE="app.env")
    rendered = render(settings, {settings.entries[0].tree: tree_of("/prod/app/db/password")})
    env = next(f for f in rendered.files if f.path == "app.env")
    assert env.content.reveal() == b"app_db_password='value of /prod/app/db/password'\n"


def test_an_optional_empty_tree_is_skipped() -> None:
    settings = settings_for({"name": "app", "parametersByPath": "/prod/app", "optional": True})
    empty = Failure("NoParameters", "there is no parameter under /prod/app in eu-west-1 (at any depth)",
                    not_found=True)
    rendered = render(settings, {settings.entries[0].tree: empty})
    assert (rendered.files, rendered.skipped) == ((), (("app", empty.reason),))
    required = settings_for({"name": "app", "parametersByPath": "/prod/app"})
    with pytest.raises(FetchError) as raised:
        render(required, {required.entries[0].tree: empty})
    assert raised.value.message == f"'app': {empty.reason}"


def test_the_operation_is_registered_for_fetches_and_checks() -> None:
    assert "GetParametersByPath" in aws._OPERATIONS and "GetParametersByPath" in aws._CHECKS
