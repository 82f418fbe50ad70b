"""``secrets-sidecar compose``: the mapping from a task definition to a compose project, and its edge."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli import main
from sidecar.compose.command import compose_command
from sidecar.compose.seed import seed_plan
from sidecar.compose.translate import MOTO_SERVICE, SEED_SERVICE, Options, Translation, translate

REPO = Path(__file__).resolve().parents[2]
SIDECAR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-secrets-sidecar:0.1.0"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"


def task(*containers: dict[str, Any], volumes: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"family": "t", "volumes": volumes or [{"name": "secrets"}], "containerDefinitions": list(containers),
            **fields}


def sidecar(**fields: Any) -> dict[str, Any]:
    return {"name": "sidecar", "image": SIDECAR_IMAGE, "essential": False, "user": "10001:1000",
            "readonlyRootFilesystem": True,
            "environment": [{"name": "SIDECAR_SECRET_db", "value": f"{ARN}:password::"},
                            {"name": "SIDECAR_SECRET_user", "value": f"{ARN}:username::"},
                            {"name": "SIDECAR_SECRET_key", "value": "/prod/api-key"}],
            "mountPoints": [{"sourceVolume": "secrets", "containerPath": "/run/secrets"}], **fields}


def app(condition: str = "SUCCESS", **fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "my-app:1", "user": "1000:1000",
            "dependsOn": [{"containerName": "sidecar", "condition": condition}],
            "mountPoints": [{"sourceVolume": "secrets", "containerPath": "/run/secrets", "readOnly": True}], **fields}


def notes(translation: Translation) -> list[str]:
    return [note.line() for note in translation.notes]


def test_the_sidecar_is_wired_exactly_as_in_the_task_definition() -> None:
    result = translate(task(sidecar(), app()), Options(images={SIDECAR_IMAGE: "local/sidecar:dev"}))
    service = result.document["services"]["sidecar"]
    assert service == {
        "image": "local/sidecar:dev",
        "environment": {"SIDECAR_SECRET_db": f"{ARN}:password::", "SIDECAR_SECRET_user": f"{ARN}:username::",
                        "SIDECAR_SECRET_key": "/prod/api-key",
                        "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"},
        "user": "10001:1000",
        "read_only": True,
        "volumes": [{"type": "volume", "source": "secrets", "target": "/run/secrets"}],
    }
    assert result.document["services"]["app"]["volumes"] == [
        {"type": "volume", "source": "secrets", "target": "/run/secrets", "read_only": True}]
    assert result.document["volumes"] == {"secrets": {}}
    assert result.services == ["sidecar", "app"]
    assert f"approximated: sidecar: image: runs the local image local/sidecar:dev instead of {SIDECAR_IMAGE}" in notes(
        result)


@pytest.mark.parametrize(("condition", "compose"), [
    ("START", "service_started"), ("HEALTHY", "service_healthy"), ("SUCCESS", "service_completed_successfully"),
    ("COMPLETE", "service_completed_successfully"),
])
def test_depends_on_conditions(condition: str, compose: str) -> None:
    result = translate(task(sidecar(), app(condition)), Options())
    assert result.document["services"]["app"]["depends_on"] == {"sidecar": {"condition": compose}}
    approximated = [n for n in notes(result) if n.startswith("approximated: app: dependsOn")]
    assert approximated == ([
        "approximated: app: dependsOn: COMPLETE on sidecar maps to service_completed_successfully: ECS starts app "
        "whatever sidecar's exit code, compose only after exit 0"] if condition == "COMPLETE" else [])


def test_health_check_gets_ecs_defaults_not_dockers() -> None:
    check = {"command": ["CMD", "secrets-sidecar", "healthcheck"], "startPeriod": 60}
    result = translate(task(sidecar(healthCheck=check), app("HEALTHY")), Options())
    assert result.document["services"]["sidecar"]["healthcheck"] == {
        "test": ["CMD", "secrets-sidecar", "healthcheck"], "interval": "30s", "timeout": "5s", "retries": 3,
        "start_period": "60s"}


def test_volumes_docker_volume_configuration_and_host_path() -> None:
    tmpfs = {"name": "secrets", "dockerVolumeConfiguration": {
        "scope": "task", "driver": "local", "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}}
    result = translate(task(sidecar(), app(), volumes=[tmpfs]), Options())
    assert result.document["volumes"] == {
        "secrets": {"driver": "local", "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}}
    host = translate(task(sidecar(), app(), volumes=[{"name": "secrets", "host": {"sourcePath": "/srv/s"}}]),
                     Options())
    assert host.document["services"]["app"]["volumes"] == [
        {"type": "bind", "source": "/srv/s", "target": "/run/secrets", "read_only": True}]
    assert "volumes" not in host.document


def test_dollar_signs_are_kept_literally() -> None:
    template = sidecar(command=["--output-dir", "/run/$HOME"])
    template["environment"].append({"name": "SIDECAR_X", "value": "a${B}c$"})
    service = translate(task(template, app()), Options()).document["services"]["sidecar"]
    assert service["environment"]["SIDECAR_X"] == "a$${B}c$$"
    assert service["command"] == ["--output-dir", "/run/$$HOME"]


def test_what_cannot_be_mapped_is_reported_without_values() -> None:
    leaky = app(secrets=[{"name": "TOKEN", "valueFrom": "/x"}], logConfiguration={"logDriver": "awslogs"},
                ulimits=[], startTimeout=60, environment=[{"name": "PASSWORD", "value": "hunter2-value"}])
    result = translate(task(sidecar(startTimeout=60), leaky, taskRoleArn="arn:aws:iam::1:role/r"), Options())
    lines = notes(result)
    for expected in (
        "unmapped: app: secrets: ECS's agent injects",
        "unmapped: app: logConfiguration: logs go to Docker's default driver",
        "unmapped: app: ulimits: not mapped",
        "unmapped: app: essential: when it stops, ECS stops every other container",
        "unmapped: app: startTimeout: no container waits on this one",
        "unmapped: sidecar: startTimeout: ECS stops the task when this container",
        "unmapped: taskRoleArn: no task role",
        "added: environment: AWS_REGION and AWS_DEFAULT_REGION (eu-west-1)",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert not any("unmapped: sidecar: essential" in line for line in lines)
    assert not any("hunter2" in line for line in lines)


def test_moto_and_seed_services() -> None:
    result = translate(task(sidecar(), app()), Options(moto=True, images={"motoserver/moto:5.2.5": "m:1"}))
    services = result.document["services"]
    assert services[MOTO_SERVICE]["image"] == services[SEED_SERVICE]["image"] == "m:1"
    assert services["sidecar"]["depends_on"] == {SEED_SERVICE: {"condition": "service_completed_successfully"}}
    assert "depends_on" in services["app"] and SEED_SERVICE not in services["app"]["depends_on"]
    assert services["sidecar"]["environment"]["AWS_ENDPOINT_URL"] == f"http://{MOTO_SERVICE}:5000"
    plan = json.loads(services[SEED_SERVICE]["environment"]["SEED_PLAN"].replace("$$", "$"))
    assert [(i["service"], i["name"]) for i in plan] == [("secretsmanager", "prod/db-AbCdEf"),
                                                          ("ssm", "/prod/api-key")]
    assert sorted(json.loads(plan[0]["value"])) == ["password", "username"]
    assert "main()" in services[SEED_SERVICE]["entrypoint"][2]


def test_a_jmes_path_entry_is_noted_as_approximated() -> None:
    other = sidecar()
    entries = [{"name": "pw", "valueFrom": "/prod/config", "jmesPath": "db.password"}]
    other["environment"] = [{"name": "SIDECAR_SECRETS", "value": json.dumps(entries)}]
    plan = seed_plan(task(other, app()), "eu-west-1")
    assert [(i.service, i.name) for i in plan.items] == [("ssm", "/prod/config")]
    assert [n.line() for n in plan.notes] == [
        "approximated: sidecar: jmesPath: pw selects with jmesPath 'db.password' from a placeholder that is not "
        "JSON: it fails locally (exit 3) until you seed a JSON document the expression matches"]


def test_a_parameter_tree_is_seeded_with_one_parameter_under_its_path() -> None:
    other = sidecar()
    entries = [{"name": "app", "parametersByPath": "/prod/app/", "recursive": False}]
    other["environment"] = [{"name": "SIDECAR_SECRETS", "value": json.dumps(entries)}]
    plan = seed_plan(task(other, app()), "eu-west-1")
    assert [(i.service, i.region, i.name) for i in plan.items] == [("ssm", "eu-west-1", "/prod/app/example")]
    assert set(plan.contents) == {"/prod/app/"}
    assert [n.line() for n in plan.notes] == [
        "approximated: sidecar: parametersByPath: the parameter tree /prod/app is seeded with one parameter, "
        "/prod/app/example: its parameters' names name the files"]


def test_seed_plan_contents_account_and_unseeded() -> None:
    other = sidecar()
    other["environment"] = [
        {"name": "SIDECAR_SECRET_a", "value": "arn:aws:secretsmanager:eu-west-1:999999999999:secret:x-AbCdEf"},
        {"name": "SIDECAR_SECRET_b", "value": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/b"},
        {"name": "SIDECAR_SECRET_c", "value": "s3://bucket-1/k/c.pem"},
        {"name": "SIDECAR_SECRET_d", "value": "/prod/d"},
    ]
    plan = seed_plan(task(other, app()), "eu-west-1", unseeded={"/prod/d"})
    assert [(i.service, i.name, i.key) for i in plan.items] == [
        ("s3", "bucket-1", "k/c.pem"), ("secretsmanager", "x-AbCdEf", ""), ("ssm", "/prod/b", "")]
    assert set(plan.contents) == {e["value"] for e in other["environment"]} - {"/prod/d"}
    assert [n.line() for n in plan.notes] == [
        "unmapped: sidecar: valueFrom: x-AbCdEf is in account 999999999999: a moto server reads it in "
        "123456789012 (the only account it answers for without a role), so that reference is not found locally"]


def test_seed_plan_creates_what_a_role_reads_in_the_roles_account() -> None:
    reader = "arn:aws:iam::999999999999:role/reader"
    other = sidecar()
    other["environment"] = [
        {"name": "SIDECAR_SECRETS", "value": json.dumps([
            {"name": "a", "valueFrom": "arn:aws:secretsmanager:eu-west-1:999999999999:secret:x-AbCdEf",
             "roleArn": reader},
            {"name": "b", "valueFrom": "/prod/b", "roleArn": reader},
            {"name": "c", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/c", "roleArn": reader},
        ])},
        {"name": "SIDECAR_SECRET_d", "value": "/prod/b"},
    ]
    plan = seed_plan(task(other, app()), "eu-west-1")
    assert [(i.service, i.name, i.role_arn) for i in plan.items] == [
        ("secretsmanager", "x-AbCdEf", reader), ("ssm", "/prod/b", ""), ("ssm", "/prod/b", reader),
        ("ssm", "/prod/c", reader)]
    assert [i.as_json().get("roleArn") for i in plan.items] == [reader, None, reader, reader]
    # One name in two accounts: two placeholders, so a run that read the wrong account would show it.
    assert len({i.as_json()["value"] for i in plan.items if i.name == "/prod/b"}) == 2
    assert [n.line() for n in plan.notes] == [
        "unmapped: sidecar: valueFrom: /prod/c is in account 123456789012: a moto server reads it in "
        f"999999999999 (the role {reader}'s account), so that reference is not found locally"]


def test_every_shipped_example_translates_and_names_its_differences() -> None:
    for path in sorted((REPO / "task-definitions").glob("*.json")):
        document = json.loads(path.read_text())
        result = translate(copy.deepcopy(document), Options(moto=True))
        assert set(result.services) <= set(result.document["services"]), path
        assert any(n.field == "essential" for n in result.notes), path


# --- the command's edge ------------------------------------------------------------------------------------


def test_command_writes_the_project_and_reports(tmp_path: Path) -> None:
    source = tmp_path / "task.json"
    source.write_text(json.dumps(task(sidecar(), app())))
    out, err = io.StringIO(), io.StringIO()
    code = compose_command(str(source), str(tmp_path / "p"), moto=True, images=[f"{SIDECAR_IMAGE}=s:1"],
                           stdout=out, stderr=err)
    assert code == 0
    written = json.loads((tmp_path / "p" / "compose.yaml").read_text())
    assert written["services"]["sidecar"]["image"] == "s:1"
    assert out.getvalue().startswith(f"wrote {tmp_path / 'p' / 'compose.yaml'}: docker-compose -p t -f ")
    assert "added: services: local-moto" in err.getvalue()
    assert oct(os.stat(tmp_path / "p" / "compose.yaml").st_mode & 0o777) == "0o644"


def test_command_exit_codes(tmp_path: Path) -> None:
    source = tmp_path / "task.json"
    source.write_text(json.dumps(task(sidecar(), app())))
    err = io.StringIO()
    assert compose_command(str(tmp_path / "missing.json"), None, stderr=err) == 2
    assert "cannot read" in err.getvalue()
    err = io.StringIO()
    assert compose_command(str(source), None, images=["my-ap:1=x"], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == ("secrets-sidecar compose: --image my-ap:1=...: no container uses that image "
                              "(did you mean my-app:1?)\n")
    assert compose_command(str(source), None, images=["nolocal"], stderr=io.StringIO()) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = io.StringIO()
    assert compose_command(str(source), str(blocker), stdout=io.StringIO(), stderr=err) == 4
    assert err.getvalue().startswith(f"secrets-sidecar compose: cannot write {blocker}/compose.yaml")


def test_registered_as_a_subcommand(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "task.json"
    source.write_text(json.dumps(task(sidecar(), app())))
    assert main(["compose", str(source)]) == 0
    assert json.loads(capfd.readouterr().out)["services"]["app"]["user"] == "1000:1000"


JUNK: list[Any] = [None, 1, True, "x", [], {}, [1, "x", None], {"a": 1}]


@pytest.mark.parametrize("junk", JUNK)
def test_malformed_fields_never_crash_the_translation(junk: Any) -> None:
    """A wrong type in any field is reported by the linter, not by a traceback here."""
    from sidecar.compose.translate import MAPPED_CONTAINER_FIELDS

    for field in sorted(MAPPED_CONTAINER_FIELDS - {"name"}):
        broken = sidecar(**{field: junk})
        translate(task(broken, app()), Options(moto=True))
    for field in ("volumes", "family", "taskRoleArn"):
        translate({**task(sidecar(), app()), field: junk}, Options(moto=True))
    translate(task(sidecar(healthCheck={"command": junk}), app(linuxParameters={"tmpfs": [{"containerPath": junk,
              "mountOptions": junk}], "capabilities": junk})), Options(moto=True))


def test_describe_task_definition_output_translates_like_the_registered_file(tmp_path: Path) -> None:
    registered = task(sidecar(), app())
    described = {"taskDefinition": {**registered, "revision": 3, "status": "ACTIVE",
                                    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/t:3"}}
    outputs = []
    for index, document in enumerate((registered, described)):
        source = tmp_path / f"{index}.json"
        source.write_text(json.dumps(document))
        out = io.StringIO()
        assert compose_command(str(source), None, stdout=out, stderr=io.StringIO()) == 0
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]


def test_linux_parameters() -> None:
    parameters = {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}, "sharedMemorySize": 64,
                  "tmpfs": [{"containerPath": "/tmp", "size": 16, "mountOptions": ["noexec"]}]}
    result = translate(task(sidecar(), app(linuxParameters=parameters)), Options())
    service = result.document["services"]["app"]
    assert (service["init"], service["cap_drop"], service["tmpfs"]) == (True, ["ALL"], ["/tmp:size=16m,noexec"])
    assert "unmapped: app: linuxParameters.sharedMemorySize: not mapped: it has no effect locally" in notes(result)


def test_region_from_the_option_else_an_arn_else_a_reported_default() -> None:
    no_arn = sidecar(environment=[{"name": "SIDECAR_SECRET_key", "value": "/prod/api-key"}])
    assert translate(task(no_arn, app()), Options(region="ap-south-1")).document["services"]["sidecar"][
        "environment"]["AWS_REGION"] == "ap-south-1"
    assert translate(task(sidecar(), app()), Options()).document["services"]["app"]["environment"][
        "AWS_DEFAULT_REGION"] == "eu-west-1"
    defaulted = translate(task(no_arn, app()), Options())
    assert defaulted.document["services"]["sidecar"]["environment"]["AWS_REGION"] == "us-east-1"
    assert "approximated: region: no ARN names the task's region: us-east-1 stands in (set --region)" in notes(
        defaulted)
