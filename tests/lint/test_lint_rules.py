"""Each rule against a task definition that breaks it and one that satisfies it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sidecar.lint import lint

from .tasks import EXAMPLES, container, good_task, hits, rules_hit, set_env

Task = dict[str, Any]


def test_the_fargate_example_has_no_finding() -> None:
    assert lint(good_task()) == []


# --- register-input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t.pop("family"), "the task definition lacks the required field 'family'"),
        (lambda t: t.update(cpu=256), "cpu must be of type string, not integer"),
        (lambda t: container(t, "app").update(essentail=True), "unknown field 'essentail' (did you mean 'essential'?)"),
        (lambda t: container(t, "app")["dependsOn"][0].update(condition="SUCCES"),
         "containerDefinitions[1].dependsOn[0].condition is not one of START, COMPLETE, SUCCESS, HEALTHY"),
        (lambda t: t.update(networkMode="vpc"), "networkMode is not one of"),
        (lambda t: container(t, "app")["mountPoints"][0].update(readOnly="true"),
         "containerDefinitions[1].mountPoints[0].readOnly must be of type boolean, not string"),
        (lambda t: container(t, "app").update(user=None),
         "containerDefinitions[1].user must be of type string, not null"),
    ],
)
def test_register_input_reports_what_botocore_would_reject(mutate: Callable[[Task], object], expected: str) -> None:
    task = good_task()
    mutate(task)
    findings = hits(task, "register-input")
    assert len(findings) == 1, findings
    assert findings[0].severity == "error"
    assert expected in findings[0].message


def test_register_input_names_the_container_and_never_the_value() -> None:
    task = good_task()
    container(task, "app")["environment"].append({"name": "PORT", "value": 8080123})
    (finding,) = hits(task, "register-input")
    assert finding.container == "app"
    assert "environment[3].value must be of type string, not integer" in finding.message
    assert "8080123" not in finding.message + finding.fix


def test_register_input_accepts_every_enum_value_it_lists() -> None:
    for condition in ("START", "COMPLETE", "SUCCESS", "HEALTHY"):
        task = good_task()
        container(task, "app")["dependsOn"][0]["condition"] = condition
        assert hits(task, "register-input") == []


# --- which container is the sidecar ---------------------------------------------------------------------


def test_no_recognisable_sidecar_is_only_a_warning_and_no_sidecar_rule_applies() -> None:
    task = good_task()
    task["containerDefinitions"] = [container(task, "app")]
    container(task, "app").pop("dependsOn")
    task.pop("taskRoleArn")  # the sidecar needs a task role; a task without a sidecar may have none
    assert rules_hit(task) == {("no-sidecar", "warning", None)}


@pytest.mark.parametrize(
    "disguise",
    [
        lambda c: c.update(image="example.com/tools/ecs-secrets-sidecar@sha256:" + "a" * 64),
        lambda c: c.update(image="example.com/fetcher:1", command=["secrets-sidecar", "run"]),
        lambda c: c.update(image="example.com/fetcher:1", entryPoint=["/usr/local/bin/secrets-sidecar"]),
        lambda c: c.update(image="example.com/fetcher:1"),  # still recognised by its SIDECAR_* environment
    ],
)
def test_the_sidecar_is_recognised_by_image_program_or_environment(disguise: Callable[[dict[str, Any]], None]) -> None:
    task = good_task()
    disguise(container(task, "secrets-sidecar"))
    container(task, "secrets-sidecar")["essential"] = True
    assert ("sidecar-essential", "error", "secrets-sidecar") in rules_hit(task)
    assert ("no-sidecar", "error", None) not in rules_hit(task)


# --- sidecar-essential, sidecar-restart ------------------------------------------------------------------


@pytest.mark.parametrize("mutate", [lambda c: c.update(essential=True), lambda c: c.pop("essential")])
def test_an_essential_sidecar_is_an_error(mutate: Callable[[dict[str, Any]], object]) -> None:
    task = good_task()
    mutate(container(task, "secrets-sidecar"))
    (finding,) = hits(task, "sidecar-essential")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "\"essential\": false" in finding.fix


def test_a_restarting_sidecar_is_an_error_and_a_disabled_policy_is_not() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["restartPolicy"] = {"enabled": True}
    assert [(f.severity, f.container) for f in hits(task, "sidecar-restart")] == [("error", "secrets-sidecar")]
    container(task, "secrets-sidecar")["restartPolicy"] = {"enabled": False}
    assert hits(task, "sidecar-restart") == []


# --- app-dependency -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depends_on", "says"),
    [
        (None, "does not depend on 'secrets-sidecar'"),
        ([], "does not depend on 'secrets-sidecar'"),
        ([{"containerName": "secrets-sidecar", "condition": "COMPLETE"}],
         "starts the app even when the sidecar failed"),
        ([{"containerName": "secrets-sidecar", "condition": "START"}], "before the secrets are written"),
        ([{"containerName": "secrets-sidecar", "condition": "HEALTHY"}], "never becomes true for a run-once sidecar"),
        ([{"containerName": "other", "condition": "SUCCESS"}], "does not depend on 'secrets-sidecar'"),
    ],
)
def test_an_app_must_wait_for_the_sidecar_with_success(depends_on: list[dict[str, str]] | None, says: str) -> None:
    task = good_task()
    if depends_on is None:
        container(task, "app").pop("dependsOn")
    else:
        container(task, "app")["dependsOn"] = depends_on
    (finding,) = hits(task, "app-dependency")
    assert (finding.severity, finding.container) == ("error", "app")
    assert says in finding.message
    assert '{"containerName": "secrets-sidecar", "condition": "SUCCESS"}' in finding.fix


def test_every_container_that_mounts_the_secrets_is_checked_and_no_other() -> None:
    task = good_task()
    worker = {**container(task, "app"), "name": "worker", "essential": False, "dependsOn": []}
    log_router = {"name": "log-router", "image": "example.com/fluent-bit:1", "essential": True}
    task["containerDefinitions"] += [worker, log_router]
    assert [f.container for f in hits(task, "app-dependency")] == ["worker"]


def test_a_container_that_takes_the_sidecars_volumes_is_a_reader() -> None:
    task = good_task()
    container(task, "app").pop("mountPoints")
    container(task, "app")["volumesFrom"] = [{"sourceContainer": "secrets-sidecar"}]
    assert rules_hit(task) == {("volume-writable-in-app", "error", "app")}
    container(task, "app")["volumesFrom"][0]["readOnly"] = True
    assert lint(task) == []


# --- the secrets volume ----------------------------------------------------------------------------------


def test_an_undefined_volume_is_an_error() -> None:
    task = good_task()
    task["volumes"] = []
    (finding,) = hits(task, "volume-missing")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "'secrets'" in finding.message


def test_a_sidecar_without_a_mount_at_its_output_directory_is_an_error() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["mountPoints"][0]["containerPath"] = "/secrets"
    (finding,) = hits(task, "volume-unmounted")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "/run/secrets" in finding.message


@pytest.mark.parametrize(
    "configure",
    [
        lambda t: set_env(t, "secrets-sidecar", "SIDECAR_OUTPUT_DIR", "/secrets/"),
        lambda t: container(t, "secrets-sidecar").update(command=["run", "--output-dir", "/secrets"]),
        lambda t: container(t, "secrets-sidecar").update(command=["--output-dir=/secrets"]),
    ],
)
def test_the_output_directory_follows_the_sidecars_own_setting(configure: Callable[[Task], None]) -> None:
    task = good_task()
    container(task, "secrets-sidecar")["mountPoints"][0]["containerPath"] = "/secrets"
    configure(task)
    assert lint(task) == []


def test_a_sidecar_whose_volume_nobody_mounts_is_an_error() -> None:
    task = good_task()
    container(task, "app")["mountPoints"] = []
    assert rules_hit(task) == {("no-reader", "error", "secrets-sidecar")}
    (finding,) = hits(task, "no-reader")
    assert '"readOnly": true' in finding.fix
    assert hits(task, "app-dependency") == []  # the app does not read the secrets, so it need not wait


@pytest.mark.parametrize("read_only", [False, None])
def test_an_app_that_mounts_the_volume_writable_is_an_error(read_only: bool | None) -> None:
    task = good_task()
    mount = container(task, "app")["mountPoints"][0]
    if read_only is None:
        mount.pop("readOnly")
    else:
        mount["readOnly"] = read_only
    (finding,) = hits(task, "volume-writable-in-app")
    assert (finding.severity, finding.container) == ("error", "app")


def test_a_sidecar_that_mounts_its_output_read_only_is_an_error() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["mountPoints"][0]["readOnly"] = True
    (finding,) = hits(task, "volume-readonly-in-sidecar")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")


# --- task-role -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate", [lambda t: t.pop("taskRoleArn"), lambda t: t.update(taskRoleArn="")])
def test_a_task_without_a_task_role_is_an_error(mutate: Callable[[Task], object]) -> None:
    task = good_task()
    mutate(task)
    (finding,) = hits(task, "task-role")
    assert (finding.severity, finding.container) == ("error", None)


# --- sidecar-config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SIDECAR_TIMEOUT", "soon", "SIDECAR_TIMEOUT: <value hidden> is not a positive number of seconds"),
        ("SIDECAR_SECRETS", "[{\"name\": \"db\"}]", "valueFrom is required"),
        ("SIDECAR_SECRETS", "not json", "SIDECAR_SECRETS is not valid JSON"),
        ("SIDECAR_OUTPUTDIR", "/x", "unknown setting SIDECAR_OUTPUTDIR (did you mean SIDECAR_OUTPUT_DIR?)"),
        ("SIDECAR_SECRET_x", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a:b",
         "ECS expects none or exactly three"),
        ("SIDECAR_FILE_MODE", "0666", "lets group or others write"),
    ],
)
def test_a_configuration_the_sidecar_rejects_is_an_error(variable: str, value: str, says: str) -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", variable, value)
    (finding,) = hits(task, "sidecar-config")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert says in finding.message


def test_an_unparseable_command_is_an_error() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["command"] = ["run", "--ouput-dir", "/run/secrets"]
    (finding,) = hits(task, "sidecar-config")
    assert finding.severity == "error"
    assert "unrecognized arguments" in finding.message


def test_a_bare_parameter_name_is_valid_without_a_region_in_the_environment() -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_SECRET_token", "/prod/app/token")
    environment = container(task, "secrets-sidecar")["environment"]
    assert not any(e["name"] in ("AWS_REGION", "SIDECAR_REGION") for e in environment)
    assert hits(task, "sidecar-config") == []


def test_the_sidecars_own_warnings_and_unseen_settings_are_warnings() -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_TIMEOUT", "150")
    set_env(task, "secrets-sidecar", "SIDECAR_CONFIG_FILE", "/etc/sidecar.json")
    container(task, "secrets-sidecar")["secrets"] = [{"name": "SIDECAR_SECRET_extra", "valueFrom": "/prod/app/extra"}]
    findings = hits(task, "sidecar-config")
    assert {f.severity for f in findings} == {"warning"}
    text = " ".join(f.message for f in findings)
    assert "timeout 150s is not below Fargate's largest startTimeout" in text
    assert "SIDECAR_CONFIG_FILE names a file inside the image" in text
    assert "SIDECAR_SECRET_extra come from the container's secrets" in text


def entry_error(entry: object) -> str:
    """The one finding a sidecar entry the sidecar would reject gets: an error that says it exits with 2."""
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([entry]))
    (finding,) = hits(task, "sidecar-config")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "exit with code 2" in finding.message
    return finding.message


def test_a_sidecar_configured_with_no_secret_is_an_error() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["environment"] = []
    (finding,) = hits(task, "sidecar-config")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "no secrets configured" in finding.message


JMES_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app/db-AbCdEf"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"name": "dbpw", "valueFrom": JMES_ARN, "jmesPath": "primary..password"},
         "SIDECAR_SECRETS[0] ('dbpw'): jmesPath <value hidden> has a syntax error at column 9"),
        ({"name": "dbpw", "valueFrom": JMES_ARN, "jmesPath": "lenght(hosts)"},
         "calls lenght(), which is not a JMESPath function"),
        ({"name": "dbpw", "valueFrom": f"{JMES_ARN}:db::", "jmesPath": "primary.password"},
         "SIDECAR_SECRETS[0] ('dbpw'): jmesPath cannot be combined with the json-key <value hidden> of "
         "valueFrom"),
    ],
)
def test_a_jmes_path_the_sidecar_rejects_is_an_error(entry: dict[str, str], says: str) -> None:
    assert says in entry_error(entry)


def test_a_valid_jmes_path_is_no_finding() -> None:
    task = good_task()
    entry = {"name": "db_password", "valueFrom": JMES_ARN, "jmesPath": '"db-primary".password'}
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([entry]))
    assert hits(task, "sidecar-config") == []


READER = "arn:aws:iam::111111111111:role/reader"


def test_a_role_arn_the_sidecar_rejects_is_an_error_wherever_it_is_given() -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_ROLE_ARN", "arn:aws:iam::111111111111:user/reader")
    (finding,) = hits(task, "sidecar-config")
    assert finding.severity == "error"
    assert "SIDECAR_ROLE_ARN: <value hidden> names an IAM user, not a role" in finding.message
    task = good_task()
    entry = {"name": "db_password", "valueFrom": JMES_ARN, "roleArn": "arn:aws:iam::1111:role/reader"}
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([entry]))
    (finding,) = hits(task, "sidecar-config")
    assert "SIDECAR_SECRETS[0] ('db_password'): roleArn: <value hidden>: the account <value hidden> is not 12 digits" \
        in finding.message
    task = good_task()
    container(task, "secrets-sidecar")["command"] = ["run", "--role-arn", "reader"]
    (finding,) = hits(task, "sidecar-config")
    assert "--role-arn: <value hidden> is not an ARN" in finding.message


def test_a_valid_role_arn_is_no_finding() -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_ROLE_ARN", READER)
    entry = {"name": "db_password", "valueFrom": JMES_ARN, "roleArn": "arn:aws:iam::222222222222:role/a/b"}
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([entry]))
    assert hits(task, "sidecar-config") == []


def test_a_parameter_tree_is_no_finding() -> None:
    task = good_task()
    entries = [{"name": "app", "parametersByPath": "/prod/app", "recursive": False, "mode": "0440", "optional": True}]
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps(entries))
    assert hits(task, "sidecar-config") == []


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"name": "app", "parametersByPath": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/app"},
         # Runs of 8 characters shared with a value are hidden too: "parameter" is part of the ARN.
         "SIDECAR_SECRETS[0] ('app'): <value hidden>sByPath <value hidden> is an ARN;"),
        ({"name": "app", "parametersByPath": "/prod/app", "valueFrom": "/prod/app/db"},
         "SIDECAR_SECRETS[0] ('app'): give either valueFrom or parametersByPath, not both"),
        ({"name": "app", "parametersByPath": "/prod/app", "expand": True},
         "SIDECAR_SECRETS[0] ('app'): 'expand' does not apply to a parametersByPath entry"),
        ({"name": "app", "parametersByPath": "/prod/app", "recursive": "no"},
         "SIDECAR_SECRETS[0] ('app'): recursive must be true or false"),
    ],
)
def test_a_parameter_tree_the_sidecar_rejects_is_an_error(entry: dict[str, object], says: str) -> None:
    assert says in entry_error(entry)


# --- sidecar-root, sidecar-writable-root ----------------------------------------------------------------


@pytest.mark.parametrize("user", ["0", "root", "0:1000", "root:root"])
def test_a_sidecar_running_as_root_is_a_warning(user: str) -> None:
    task = good_task()
    container(task, "secrets-sidecar")["user"] = user
    (finding,) = hits(task, "sidecar-root")
    assert (finding.severity, finding.container) == ("warning", "secrets-sidecar")
    assert "so it runs as root" in finding.message


def test_without_a_user_the_projects_image_runs_as_10001_and_another_image_may_run_as_root() -> None:
    task = good_task()
    sidecar = container(task, "secrets-sidecar")
    sidecar.pop("user")
    assert hits(task, "sidecar-root") == []
    sidecar["image"] = "example.com/fetcher:1"  # still the sidecar, by its SIDECAR_* environment
    (finding,) = hits(task, "sidecar-root")
    assert "runs as its image's user, which may be root" in finding.message


@pytest.mark.parametrize("user", ["10001", "10001:1000", "sidecar"])
def test_a_non_root_sidecar_passes(user: str) -> None:
    task = good_task()
    container(task, "secrets-sidecar")["user"] = user
    assert hits(task, "sidecar-root") == []


@pytest.mark.parametrize("value", [False, None])
def test_a_writable_root_filesystem_is_a_warning(value: bool | None) -> None:
    task = good_task()
    sidecar = container(task, "secrets-sidecar")
    if value is None:
        sidecar.pop("readonlyRootFilesystem")
    else:
        sidecar["readonlyRootFilesystem"] = value
    (finding,) = hits(task, "sidecar-writable-root")
    assert (finding.severity, finding.container) == ("warning", "secrets-sidecar")


# --- plain-secret ---------------------------------------------------------------------------------------

PLAIN_SECRETS = [
    ("DB_PASSWORD", "correct-horse-battery"),
    ("STRIPE_API_KEY", "sk_live_51Habcdefghijklmnop"),
    ("GITHUB_TOKEN", "just-some-token-value"),
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    ("SIGNING", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
    ("DATABASE_URL", "postgres://app:s3cretpw@db.internal:5432/app"),
]
NOT_SECRETS = [
    ("DB_PASSWORD_FILE", "/run/secrets/db_password"),
    ("API_TOKEN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app/token-AbCdEf"),
    ("TLS_KEY", "s3://my-app-config/tls/key.pem"),
    ("TOKEN_TTL", "3600"),
    ("USE_SECRET_STORE", "true"),
    ("SECRET_NAME", "prod/app/db"),
    ("DATABASE_URL", "postgres://db.internal:5432/app"),
    ("LOG_LEVEL", "info"),
]


@pytest.mark.parametrize(("variable", "value"), PLAIN_SECRETS)
def test_a_plain_secret_in_any_container_is_a_warning_that_never_shows_the_value(variable: str, value: str) -> None:
    task = good_task()
    set_env(task, "app", variable, value)
    (finding,) = hits(task, "plain-secret")
    assert (finding.severity, finding.container) == ("warning", "app")
    assert variable in finding.message
    for shown in (finding.message, finding.fix):
        assert value not in shown
        assert value[:8] not in shown


@pytest.mark.parametrize(("variable", "value"), NOT_SECRETS)
def test_references_paths_and_settings_are_not_plain_secrets(variable: str, value: str) -> None:
    task = good_task()
    set_env(task, "app", variable, value)
    assert hits(task, "plain-secret") == []


def test_the_sidecars_own_settings_are_not_plain_secrets_but_credentials_in_them_are() -> None:
    task = good_task()
    assert hits(task, "plain-secret") == []  # SIDECAR_SECRETS holds references
    set_env(task, "secrets-sidecar", "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert [f.container for f in hits(task, "plain-secret")] == ["secrets-sidecar"]


# --- ordering and robustness ----------------------------------------------------------------------------


def test_errors_come_before_warnings() -> None:
    task = good_task()
    container(task, "secrets-sidecar")["readonlyRootFilesystem"] = False
    task.pop("taskRoleArn")
    severities = [f.severity for f in lint(task)]
    assert severities == ["error", "warning"]


# --- tmpfs-run-once ---------------------------------------------------------------------------------------


def _tmpfs_task() -> Task:
    """The Fargate example's run-once pair on a Docker tmpfs volume, as ec2-tmpfs.json was first shipped."""
    task = good_task()
    task["volumes"] = [{"name": "secrets", "dockerVolumeConfiguration": {
        "scope": "task", "driver": "local",
        "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=10001,gid=1000,mode=0750"},
    }}]
    return task


def test_a_run_once_sidecar_writing_into_a_docker_tmpfs_volume_is_an_error() -> None:
    (finding,) = hits(_tmpfs_task(), "tmpfs-run-once")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert "tmpfs" in finding.message
    assert "the app would find the volume empty" in finding.message
    assert "refresh mode" in finding.fix


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["volumes"][0]["dockerVolumeConfiguration"].update(driver="rexray/ebs"),  # another driver
        lambda t: t["volumes"][0]["dockerVolumeConfiguration"].pop("driverOpts"),  # a disk-backed local volume
        lambda t: t.update(volumes=[{"name": "secrets"}]),  # a bind-mount volume
    ],
)
def test_volumes_that_keep_their_files_are_not_reported(change: Callable[[Task], object]) -> None:
    task = _tmpfs_task()
    change(task)
    assert hits(task, "tmpfs-run-once") == []


def test_the_shipped_ec2_example_keeps_its_tmpfs_mounted_with_a_refresh_mode_sidecar() -> None:
    task = json.loads((EXAMPLES / "ec2-tmpfs.json").read_text())
    sidecar = container(task, "secrets-sidecar")
    assert {"name": "SIDECAR_REFRESH_INTERVAL", "value": "300"} in sidecar["environment"]
    assert container(task, "app")["dependsOn"] == [{"containerName": "secrets-sidecar", "condition": "HEALTHY"}]
    assert hits(task, "tmpfs-run-once") == []
    set_env(task, "secrets-sidecar", "SIDECAR_REFRESH_INTERVAL", "")  # back to run-once: the bug it had
    assert [f.rule for f in lint(task) if f.rule == "tmpfs-run-once"] == ["tmpfs-run-once"]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SIDECAR_FAILOVER_REGION", "us-esat-1", "is not a known AWS region; did you mean us-east-1?"),
        ("SIDECAR_FAILOVER_REGION", "eu-west-1", "is the region of secret"),
        ("SIDECAR_SECRETS", json.dumps([{"name": "db", "valueFrom": JMES_ARN, "failoverRegion": "eu-centrl-1"}]),
         "failover region <value hidden> is not a known AWS region"),
        ("SIDECAR_SECRETS", json.dumps([{"name": "cfg", "valueFrom": "s3://bucket/app.conf",
                                         "failoverRegion": "eu-central-1"}]),
         "failoverRegion does not apply to object <value hidden>: an S3 object lives in one bucket"),
        ("SIDECAR_SECRETS", json.dumps([{"name": "db", "valueFrom": JMES_ARN, "failoverregion": "eu-central-1"}]),
         "unknown key 'failoverregion' (did you mean failoverRegion?)"),
    ],
)
def test_a_failover_region_the_sidecar_rejects_is_an_error(variable: str, value: str, says: str) -> None:
    task = good_task()
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps([{"name": "db", "valueFrom": JMES_ARN}]))
    set_env(task, "secrets-sidecar", variable, value)
    (finding,) = hits(task, "sidecar-config")
    assert (finding.severity, finding.container) == ("error", "secrets-sidecar")
    assert says in finding.message
    assert "exit with code 2" in finding.message


def test_a_valid_failover_region_is_no_finding() -> None:
    task = good_task()
    entries = [{"name": "db", "valueFrom": JMES_ARN}, {"name": "token", "valueFrom": "/prod/app/token",
                                                       "failoverRegion": "eu-central-1"}]
    set_env(task, "secrets-sidecar", "SIDECAR_SECRETS", json.dumps(entries))
    set_env(task, "secrets-sidecar", "SIDECAR_FAILOVER_REGION", "eu-central-1")
    assert hits(task, "sidecar-config") == []
