from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from tests.api.conftest import API, Team, create_study, run_trials, spec
from tests.api.test_auth import assert_error
from tests.api.test_cli_client import env, live_url  # noqa: F401
from tuneboard.cli import app as cli
from tuneboard.db import session_scope
from tuneboard.studies import repository as repo
from tuneboard.studies.verdicts import judge

NAME = "vision-baseline"
STANDARD: dict[str, Any] = {
    "name": NAME,
    "description": "House rules for small classifiers.",
    "rules": [
        {
            "param": "optimizer",
            "allowed": ["sgd", "adam", "adamw"],
            "default": "adam",
            "rationale": "Adam with beta1=0.9, beta2=0.999 is our starting point.",
        },
        {"param": "lr", "range": {"low": 1.0e-5, "high": 1.0e-1, "log": True}, "default": 1.0e-3},
        {"param": "hidden", "range": {"low": 32, "high": 256}, "rationale": "small models"},
    ],
    "defaults": {
        "early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 5, "min_delta": 1e-4},
        "pruner": {"type": "hyperband"},
    },
    "acceptance": [
        {"metric": "val_accuracy", "op": ">=", "value": 0.97},
        {"metric": "generalization_gap", "op": "<=", "value": 0.03},
    ],
}


def standard(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(STANDARD)
    out.update(changes)
    return out


def narrower_lr() -> dict[str, Any]:
    out = standard(description="Narrower learning rates.")
    out["rules"][1]["range"]["high"] = 1.0e-2
    return out


def violating_spec(**changes: Any) -> dict[str, Any]:
    out = spec(standard=NAME, **changes)
    out["search_space"]["optimizer"]["choices"] = ["sgd", "adam", "rmsprop"]
    return out


def publish(
    client: TestClient, team: Team, body: dict[str, Any] | None = None, role: str = "maintainer"
) -> Response:
    return client.post(f"{API}/standards", json=body or STANDARD, headers=team.headers(role))


def created(response: Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def check(
    client: TestClient, team: Team, spec_: dict[str, Any], ref: str = NAME, role: str = "viewer"
) -> Response:
    return client.post(
        f"{API}/standards/check", json={"standard": ref, "spec": spec_}, headers=team.headers(role)
    )


def test_create_publish_read_diff_deprecate(client: TestClient, team: Team) -> None:
    v1 = created(publish(client, team, standard(changelog="first cut")))
    assert (v1["name"], v1["version"], v1["status"]) == (NAME, 1, "active")
    assert v1["author"] == f"key:{team.key_ids['maintainer']}"
    assert v1["changelog"] == "first cut" and v1["created_at"].endswith("Z")
    assert v1["document"]["rules"][0]["allowed"] == ["sgd", "adam", "adamw"]
    assert "changelog" not in v1["document"]

    assert_error(publish(client, team), 409, "conflict")

    v2 = created(
        client.post(
            f"{API}/standards/{NAME}/versions",
            json={**narrower_lr(), "changelog": "narrower lr"},
            headers=team.headers("maintainer"),
        )
    )
    assert (v2["version"], v2["changelog"]) == (2, "narrower lr")
    assert v2["document"]["rules"][1]["range"]["high"] == 1.0e-2

    viewer = team.headers("viewer")
    listed = client.get(f"{API}/standards", headers=viewer).json()
    assert [(s["name"], s["version"]) for s in listed["items"]] == [(NAME, 2)]
    assert listed["next_cursor"] is None

    detail = client.get(f"{API}/standards/{NAME}", headers=viewer).json()
    assert (
        detail["version"] == 2 and detail["document"]["description"] == "Narrower learning rates."
    )
    assert [(v["version"], v["changelog"]) for v in detail["versions"]] == [
        (1, "first cut"),
        (2, "narrower lr"),
    ]
    assert detail["versions_next_cursor"] is None

    old = client.get(f"{API}/standards/{NAME}/versions/1", headers=viewer).json()
    assert old["document"]["rules"][1]["range"]["high"] == 1.0e-1
    assert old["document"]["description"] == STANDARD["description"]

    first = client.get(f"{API}/standards/{NAME}/versions?limit=1", headers=viewer).json()
    assert [v["version"] for v in first["items"]] == [1] and first["next_cursor"]
    rest = client.get(
        f"{API}/standards/{NAME}/versions",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=viewer,
    ).json()
    assert [v["version"] for v in rest["items"]] == [2] and rest["next_cursor"] is None

    diff = client.get(f"{API}/standards/{NAME}/diff?from=1&to=2", headers=viewer)
    assert diff.status_code == 200, diff.text
    changes = diff.json()
    assert (changes["from_version"], changes["to_version"]) == (1, 2)
    assert changes["description"]["after"] == "Narrower learning rates."
    [changed] = changes["rules"]["changed"]
    assert changed["param"] == "lr"
    assert changed["changes"] == {"range.high": {"before": 1.0e-1, "after": 1.0e-2}}
    assert changes["rules"]["added"] == [] and changes["acceptance"]["added"] == []

    deprecated = client.post(
        f"{API}/standards/{NAME}/versions/2/deprecate", headers=team.headers("maintainer")
    )
    assert deprecated.status_code == 200, deprecated.text
    assert deprecated.json()["status"] == "deprecated"
    again = client.post(
        f"{API}/standards/{NAME}/versions/2/deprecate", headers=team.headers("maintainer")
    )
    assert again.status_code == 200 and again.json()["status"] == "deprecated"
    assert client.get(f"{API}/standards/{NAME}/versions/2", headers=viewer).json()["status"] == (
        "deprecated"
    )

    latest_active = check(client, team, spec(standard=NAME)).json()
    assert latest_active["standard"] == f"{NAME}@1"
    pinned = check(client, team, spec(standard=f"{NAME}@2"), ref=f"{NAME}@2").json()
    assert pinned["status"] == "deprecated"
    assert any("deprecated" in w for w in pinned["warnings"])


def test_not_found_and_bad_parameters(client: TestClient, team: Team) -> None:
    created(publish(client, team))
    viewer, maintainer = team.headers("viewer"), team.headers("maintainer")
    assert_error(client.get(f"{API}/standards/nope", headers=viewer), 404, "not_found")
    assert_error(client.get(f"{API}/standards/{NAME}/versions/9", headers=viewer), 404, "not_found")
    assert_error(
        client.get(f"{API}/standards/{NAME}/diff?from=1&to=9", headers=viewer), 404, "not_found"
    )
    assert_error(
        client.post(f"{API}/standards/{NAME}/versions/9/deprecate", headers=maintainer),
        404,
        "not_found",
    )
    assert_error(
        client.post(
            f"{API}/standards/nope/versions", json=standard(name="nope"), headers=maintainer
        ),
        404,
        "not_found",
    )

    error = assert_error(
        client.get(f"{API}/standards/{NAME}/diff?to=1", headers=viewer), 422, "invalid"
    )
    assert [d["field"] for d in error["details"]] == ["from"]
    error = assert_error(
        client.get(f"{API}/standards/{NAME}/versions/0", headers=viewer), 422, "invalid"
    )
    assert [d["field"] for d in error["details"]] == ["version"]
    error = assert_error(
        client.get(f"{API}/standards?cursor=garbage", headers=viewer), 422, "invalid"
    )
    assert error["details"][0]["field"] == "cursor"

    mismatch = client.post(
        f"{API}/standards/{NAME}/versions", json=standard(name="other"), headers=maintainer
    )
    error = assert_error(mismatch, 422, "invalid")
    assert error["details"][0]["field"] == "name"


def test_list_is_paginated(client: TestClient, team: Team) -> None:
    for name in ("a-std", "b-std", "c-std"):
        created(publish(client, team, standard(name=name)))
    viewer = team.headers("viewer")
    first = client.get(f"{API}/standards?limit=2", headers=viewer).json()
    assert [s["name"] for s in first["items"]] == ["a-std", "b-std"]
    rest = client.get(
        f"{API}/standards", params={"limit": 2, "cursor": first["next_cursor"]}, headers=viewer
    ).json()
    assert [s["name"] for s in rest["items"]] == ["c-std"] and rest["next_cursor"] is None


def test_roles(client: TestClient, team: Team) -> None:
    error = assert_error(publish(client, team, role="member"), 403, "forbidden")
    assert error["details"] == {"required": "maintainer", "role": "member"}
    assert_error(publish(client, team, role="viewer"), 403, "forbidden")
    assert_error(client.post(f"{API}/standards", json=STANDARD), 401, "unauthorized")
    assert client.get(f"{API}/standards", headers=team.headers("viewer")).json()["items"] == []

    created(publish(client, team))
    for role in ("viewer", "member"):
        headers = team.headers(role)
        assert_error(
            client.post(f"{API}/standards/{NAME}/versions", json=narrower_lr(), headers=headers),
            403,
            "forbidden",
        )
        assert_error(
            client.post(f"{API}/standards/{NAME}/versions/1/deprecate", headers=headers),
            403,
            "forbidden",
        )
    created(
        client.post(f"{API}/standards/{NAME}/versions", json=narrower_lr(), headers=team.headers())
    )

    viewer = team.headers("viewer")
    assert client.get(f"{API}/standards/{NAME}", headers=viewer).status_code == 200
    assert client.get(f"{API}/standards/{NAME}/diff?from=1&to=2", headers=viewer).status_code == (
        200
    )
    assert check(client, team, spec(standard=NAME)).status_code == 200

    study_id = create_study(client, team, spec(standard=f"{NAME}@1"))
    assert_error(
        client.post(f"{API}/studies/{study_id}/promote", headers=team.headers("member")),
        403,
        "forbidden",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (standard(name="no spaces allowed"), "name"),
        (standard(rules=[{"param": "lr", "range": {"low": 1.0, "high": 0.1}}]), "rules.0.range"),
        (
            standard(rules=[{"param": "lr", "range": {"low": 0.0, "high": 0.1, "log": True}}]),
            "rules.0.range",
        ),
        (standard(rules=[{"param": "optimizer", "alowed": ["sgd"]}]), "rules.0.alowed"),
        (
            standard(rules=[{"param": "optimizer", "allowed": ["sgd"], "default": "adam"}]),
            "rules.0",
        ),
        (standard(acceptance=[{"metric": "val_accuracy", "op": "!=", "value": 1}]), "acceptance.0"),
        (
            standard(
                acceptance=[{"stability": {"metric": "val_accuracy", "seeds": 1, "max_std": 0}}]
            ),
            "acceptance.0",
        ),
        (standard(defaults={"pruner": {"type": "asha"}}), "defaults.pruner"),
        (standard(changelog=["not", "a", "string"]), "changelog"),
        ({"description": "no name"}, "name"),
    ],
    ids=[
        "bad-name",
        "low>high",
        "log-low<=0",
        "unknown-key",
        "default-not-allowed",
        "unknown-op",
        "one-seed",
        "unknown-pruner",
        "changelog-type",
        "missing-name",
    ],
)
def test_bad_documents_are_422_naming_the_field(
    client: TestClient, team: Team, body: dict[str, Any], field: str
) -> None:
    error = assert_error(publish(client, team, body), 422, "invalid")
    fields = [d["field"] for d in error["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert all(d["reason"] for d in error["details"])
    assert client.get(f"{API}/standards", headers=team.headers("viewer")).json()["items"] == []


def test_check_reports_violations_and_override(client: TestClient, team: Team) -> None:
    created(publish(client, team))

    good = check(client, team, spec(standard=NAME))
    assert good.status_code == 200, good.text
    report = good.json()
    assert report["ok"] and report["admissible"] and report["violations"] == []
    assert report["standard"] == f"{NAME}@1" and report["status"] == "active"
    assert {"pruner", "early_stopping"} <= set(report["defaults_applied"])

    wide = violating_spec()
    wide["search_space"]["lr"]["high"] = 1.0
    report = check(client, team, wide).json()
    assert not report["ok"] and not report["admissible"] and report["override"] is None
    by_rule = {v["rule"]: v for v in report["violations"]}
    assert set(by_rule) == {"optimizer", "lr"}
    assert by_rule["optimizer"]["field"].startswith("search_space.optimizer")
    assert "rmsprop" in by_rule["optimizer"]["reason"]
    assert by_rule["optimizer"]["rationale"].startswith("Adam")

    report = check(client, team, {**wide, "override": {"reason": "rmsprop ablation"}}).json()
    assert not report["ok"] and report["admissible"]
    assert report["override"] == "rmsprop ablation" and len(report["violations"]) == 2

    assert_error(check(client, team, wide, ref="unknown"), 404, "not_found")
    assert_error(check(client, team, wide, ref="a@b@c"), 422, "invalid")
    error = assert_error(
        client.post(
            f"{API}/standards/check", json={"standard": NAME}, headers=team.headers("viewer")
        ),
        422,
        "invalid",
    )
    assert [d["field"] for d in error["details"]] == ["spec"]

    assert client.get(f"{API}/studies", headers=team.headers()).json()["items"] == []
    assert [
        s["version"] for s in client.get(f"{API}/standards", headers=team.headers()).json()["items"]
    ] == [1]


def test_study_under_a_standard(client: TestClient, team: Team) -> None:
    created(publish(client, team))
    member = team.headers("member")

    rejected = client.post(f"{API}/studies", json=violating_spec(), headers=member)
    error = assert_error(rejected, 422, "standard_violation")
    assert "optimizer" in error["message"] and f"{NAME}@1" in error["message"]
    assert [v["rule"] for v in error["details"]["violations"]] == ["optimizer"]
    assert client.get(f"{API}/studies", headers=team.headers()).json()["items"] == []

    body = violating_spec(override={"reason": "rmsprop ablation"})
    study_id = create_study(client, team, body)
    study = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer")).json()
    assert study["standard"] == f"{NAME}@1"
    assert study["override_reason"] == "rmsprop ablation"
    assert study["spec"]["pruner"]["type"] == "hyperband"
    assert study["spec"]["early_stopping"]["patience"] == 5

    study_id = create_study(client, team, spec(name="kept", standard=f"{NAME}@1"))
    study = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer")).json()
    assert study["standard"] == f"{NAME}@1" and study["override_reason"] is None
    assert study["spec"]["pruner"]["type"] == "hyperband"
    assert study["spec"]["early_stopping"]["min_delta"] == 1e-4


def _judge(db_url: str, study_id: int, final: dict[int, dict[str, float]]) -> None:
    with session_scope(db_url) as session:
        for number, metrics in final.items():
            trial = repo.get_trial(session, study_id, number)
            assert trial is not None and trial.state == "complete"
            judge(session, trial, metrics)


def test_promote_the_best_accepted_trial(client: TestClient, team: Team, db_url: str) -> None:
    created(publish(client, team))
    study_id = create_study(client, team, spec(standard=NAME))
    numbers = run_trials(db_url, study_id, [0.98, 0.99, 0.975])
    _judge(
        db_url,
        study_id,
        {
            numbers[0]: {"val_accuracy": 0.98, "generalization_gap": 0.01},
            numbers[1]: {"val_accuracy": 0.99, "generalization_gap": 0.2},
            numbers[2]: {"val_accuracy": 0.975, "generalization_gap": 0.0},
        },
    )
    viewer = team.headers("viewer")
    best = client.get(f"{API}/studies/{study_id}/trials/{numbers[0]}", headers=viewer).json()
    assert best["accepted"] is True and best["verdict"]["accepted"] is True
    overfit = client.get(f"{API}/studies/{study_id}/trials/{numbers[1]}", headers=viewer).json()
    assert overfit["accepted"] is False

    promoted = created(
        client.post(f"{API}/studies/{study_id}/promote", headers=team.headers("maintainer"))
    )
    assert (promoted["name"], promoted["version"], promoted["status"]) == (NAME, 2, "active")
    assert (
        promoted["changelog"] == f"promoted from study {study_id} trial {numbers[0]} (value 0.98)"
    )
    params = best["params"]
    document = promoted["document"]
    assert document["defaults"]["fixed"] == params
    defaults = {rule["param"]: rule["default"] for rule in document["rules"]}
    assert defaults == params
    assert document["acceptance"] == STANDARD["acceptance"]

    detail = client.get(f"{API}/standards/{NAME}", headers=viewer).json()
    assert detail["version"] == 2 and [v["version"] for v in detail["versions"]] == [1, 2]

    reused = spec(name="reuse", standard=NAME)
    del reused["search_space"]["optimizer"], reused["search_space"]["hidden"]
    study = client.get(f"{API}/studies/{create_study(client, team, reused)}", headers=viewer).json()
    assert study["standard"] == f"{NAME}@2"
    assert study["spec"]["fixed"]["optimizer"] == params["optimizer"]
    assert study["spec"]["fixed"]["hidden"] == params["hidden"]

    again = client.post(f"{API}/studies/{study_id}/promote", headers=team.headers("maintainer"))
    assert "already carries" in assert_error(again, 409, "conflict")["message"]


def test_promote_needs_a_standard_and_an_accepted_trial(
    client: TestClient, team: Team, db_url: str
) -> None:
    created(publish(client, team))
    maintainer = team.headers("maintainer")

    plain = create_study(client, team)
    run_trials(db_url, plain, [0.99])
    assert_error(client.post(f"{API}/studies/{plain}/promote", headers=maintainer), 409, "conflict")

    judged = create_study(client, team, spec(name="judged", standard=NAME))
    assert_error(
        client.post(f"{API}/studies/{judged}/promote", headers=maintainer), 409, "conflict"
    )
    [number] = run_trials(db_url, judged, [0.9])
    _judge(db_url, judged, {number: {"val_accuracy": 0.9, "generalization_gap": 0.0}})
    error = assert_error(
        client.post(f"{API}/studies/{judged}/promote", headers=maintainer), 409, "conflict"
    )
    assert "no accepted trial" in error["message"]

    assert_error(client.post(f"{API}/studies/999999/promote", headers=maintainer), 404, "not_found")
    assert [
        v["version"]
        for v in client.get(f"{API}/standards/{NAME}/versions", headers=maintainer).json()["items"]
    ] == [1]


def test_teams_are_isolated(client: TestClient, team: Team, other_team: Team, db_url: str) -> None:
    created(publish(client, team))
    study_id = create_study(client, team, spec(standard=NAME))
    [number] = run_trials(db_url, study_id, [0.99])
    _judge(db_url, study_id, {number: {"val_accuracy": 0.99, "generalization_gap": 0.0}})

    theirs, maintainer = other_team.headers("viewer"), other_team.headers("maintainer")
    assert client.get(f"{API}/standards", headers=theirs).json()["items"] == []
    for path in (
        f"/standards/{NAME}",
        f"/standards/{NAME}/versions",
        f"/standards/{NAME}/versions/1",
        f"/standards/{NAME}/diff?from=1&to=1",
    ):
        assert_error(client.get(API + path, headers=theirs), 404, "not_found")
    assert_error(
        client.post(f"{API}/standards/{NAME}/versions", json=narrower_lr(), headers=maintainer),
        404,
        "not_found",
    )
    assert_error(
        client.post(f"{API}/standards/{NAME}/versions/1/deprecate", headers=maintainer),
        404,
        "not_found",
    )
    assert_error(check(client, other_team, spec(standard=NAME)), 404, "not_found")
    assert_error(
        client.post(f"{API}/studies/{study_id}/promote", headers=maintainer), 404, "not_found"
    )
    refused = client.post(
        f"{API}/studies", json=spec(standard=NAME), headers=other_team.headers("member")
    )
    assert assert_error(refused, 422, "invalid")["details"][0]["field"] == "standard"

    own = created(publish(client, other_team, narrower_lr()))
    assert (own["name"], own["version"]) == (NAME, 1)
    mine = client.get(f"{API}/standards/{NAME}/versions/1", headers=team.headers("viewer")).json()
    assert mine["document"]["rules"][1]["range"]["high"] == 1.0e-1
    assert [
        v["version"]
        for v in client.get(
            f"{API}/standards/{NAME}/versions", headers=team.headers("viewer")
        ).json()["items"]
    ] == [1]


def test_changes_land_in_the_audit_log(client: TestClient, team: Team, db_url: str) -> None:
    created(publish(client, team, standard(changelog="first cut")))
    maintainer = team.headers("maintainer")
    created(client.post(f"{API}/standards/{NAME}/versions", json=narrower_lr(), headers=maintainer))
    client.post(f"{API}/standards/{NAME}/versions/1/deprecate", headers=maintainer)
    check(client, team, violating_spec())
    create_study(client, team, violating_spec(override={"reason": "rmsprop ablation"}))

    assert_error(client.get(f"{API}/audit", headers=maintainer), 403, "forbidden")
    entries = client.get(f"{API}/audit", headers=team.headers("admin")).json()["items"]
    by_action = {e["action"]: e for e in entries}
    assert {"standard.create", "standard.publish", "standard.deprecate", "study.override"} <= set(
        by_action
    )
    assert by_action["standard.create"]["object_id"] == f"{NAME}@1"
    assert by_action["standard.create"]["actor"] == f"key:{team.key_ids['maintainer']}"
    assert by_action["standard.publish"]["details"]["changes"]["rules_changed"] == ["lr"]
    assert by_action["standard.deprecate"]["object_id"] == f"{NAME}@1"
    assert by_action["study.override"]["details"]["reason"] == "rmsprop ablation"
    assert not any(e["action"].startswith("standard.check") for e in entries)


def test_openapi_documents_the_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    create = schema["paths"][f"{API}/standards"]["post"]
    content = create["requestBody"]["content"]["application/json"]
    example = content["examples"]["vision-baseline"]["value"]
    assert example["name"] == NAME and "changelog" in example
    body = schema["components"]["schemas"][content["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"name", "rules", "defaults", "acceptance", "changelog"} <= set(body["properties"])
    assert "201" in create["responses"] and "409" in create["responses"]
    promote = schema["paths"][f"{API}/studies/{{study_id}}/promote"]["post"]
    assert "201" in promote["responses"] and "409" in promote["responses"]
    diff = schema["paths"][f"{API}/standards/{{name}}/diff"]["get"]
    assert {p["name"] for p in diff["parameters"]} >= {"from", "to"}
    check_body = schema["paths"][f"{API}/standards/check"]["post"]["requestBody"]
    assert check_body["content"]["application/json"]["schema"]["$ref"].endswith("/CheckRequest")


@pytest.mark.usefixtures("env")
def test_cli_standards_commands(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("TUNEBOARD_API_KEY", team.keys["maintainer"])
    document = tmp_path / "standard.yaml"
    document.write_text(yaml.safe_dump(STANDARD))
    first = runner.invoke(
        cli, ["standards", "publish", str(document), "--changelog", "first cut", "--json"]
    )
    assert first.exit_code == 0, first.output
    assert (json.loads(first.stdout)["version"], json.loads(first.stdout)["changelog"]) == (
        1,
        "first cut",
    )
    document.write_text(yaml.safe_dump({**narrower_lr(), "changelog": "narrower lr"}))
    second = runner.invoke(cli, ["standards", "publish", str(document)])
    assert second.exit_code == 0, second.output
    assert f"Published {NAME}@2" in second.stdout and "narrower lr" in second.stdout

    listed = runner.invoke(cli, ["standards", "list", "--json"])
    assert [(s["name"], s["version"]) for s in json.loads(listed.stdout)] == [(NAME, 2)]
    table = runner.invoke(cli, ["standards", "list"])
    assert table.exit_code == 0 and NAME in table.stdout

    shown = runner.invoke(cli, ["standards", "show", NAME, "--json"])
    assert [v["version"] for v in json.loads(shown.stdout)["versions"]] == [1, 2]
    old = runner.invoke(cli, ["standards", "show", NAME, "--version", "1"])
    assert old.exit_code == 0, old.output
    assert f"# {NAME}@1" in old.stdout
    yaml_text = "\n".join(line for line in old.stdout.splitlines() if not line.startswith("#"))
    assert yaml.safe_load(yaml_text)["rules"][1]["range"]["high"] == 1.0e-1

    diff = runner.invoke(cli, ["standards", "diff", NAME, "--from", "1", "--to", "2"])
    assert diff.exit_code == 0, diff.output
    assert "rule lr.range.high: 0.1 -> 0.01" in diff.stdout
    as_json = runner.invoke(cli, ["standards", "diff", NAME, "--from", "1", "--to", "2", "--json"])
    assert json.loads(as_json.stdout)["rules"]["changed"][0]["param"] == "lr"

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({**violating_spec(), "standard": f"{NAME}@1"}))
    broken = runner.invoke(cli, ["standards", "check", str(study)])
    assert broken.exit_code == 1
    assert f"breaks {NAME}@1" in broken.stdout and "x optimizer" in broken.stdout
    study.write_text(yaml.safe_dump(violating_spec(override={"reason": "rmsprop ablation"})))
    overridden = runner.invoke(
        cli, ["standards", "check", str(study), "--standard", f"{NAME}@1", "--json"]
    )
    assert overridden.exit_code == 0, overridden.output
    assert json.loads(overridden.stdout)["override"] == "rmsprop ablation"

    monkeypatch.setenv("TUNEBOARD_API_KEY", team.keys["member"])
    forbidden = runner.invoke(cli, ["standards", "publish", str(document)])
    assert forbidden.exit_code == 1 and "403 forbidden" in forbidden.stderr
    missing = runner.invoke(cli, ["standards", "show", "nope"])
    assert missing.exit_code == 1 and "404 not_found" in missing.stderr
    document.write_text(yaml.safe_dump(standard(name="bad", rules=[{"param": "lr"}])))
    monkeypatch.setenv("TUNEBOARD_API_KEY", team.keys["maintainer"])
    invalid = runner.invoke(cli, ["standards", "publish", str(document)])
    assert invalid.exit_code == 1 and "422 invalid" in invalid.stderr
    assert "rules.0" in invalid.stderr
