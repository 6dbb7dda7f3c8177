from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, Team, create_study, run_trials, spec
from tests.api.test_auth import assert_error
from tuneboard.db import session_scope, utcnow
from tuneboard.studies import repository as repo


def test_enqueue_trial(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    params = {"lr": 0.003, "optimizer": "adamw", "hidden": 64}
    response = client.post(
        f"{API}/studies/{study_id}/trials", json={"params": params}, headers=team.headers("member")
    )
    assert response.status_code == 201, response.text
    trial = response.json()
    assert trial["state"] == "waiting" and trial["origin"] == "manual"
    assert trial["params"] == params
    listed = client.get(
        f"{API}/studies/{study_id}/trials",
        params={"state": "waiting"},
        headers=team.headers("viewer"),
    ).json()["items"]
    assert trial["number"] in [t["number"] for t in listed]


@pytest.mark.parametrize(
    "body",
    [
        {"params": {"lr": 5.0}},
        {"params": {"optimizer": "adamx"}},
        {"params": {"nope": 1}},
        {"params": "lr=0.1"},
        {},
        {"params": {}, "extra": 1},
    ],
)
def test_enqueue_bad_params_is_422(client: TestClient, team: Team, body: dict) -> None:
    study_id = create_study(client, team)
    error = assert_error(
        client.post(f"{API}/studies/{study_id}/trials", json=body, headers=team.headers("member")),
        422,
        "invalid",
    )
    assert error["details"] and all("field" in d and "reason" in d for d in error["details"])


def test_trials_pages_and_detail(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    numbers = run_trials(db_url, study_id, [0.5, 0.9, None, 0.7, 0.8])
    with session_scope(db_url) as session:
        row = repo.get_trial(session, study_id, numbers[1])
        assert row is not None
        row.error = None
        failed = repo.get_trial(session, study_id, numbers[3])
        assert failed is not None
        failed.state, failed.error = "fail", "CUDA out of memory"

    seen, cursor = [], None
    while True:
        page = client.get(
            f"{API}/studies/{study_id}/trials",
            params={"limit": 2, "cursor": cursor},
            headers=team.headers("viewer"),
        ).json()
        assert set(page) == {"items", "next_cursor"}
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [t["number"] for t in seen] == sorted(numbers)
    by_number = {t["number"]: t for t in seen}
    best = by_number[numbers[1]]
    assert best["state"] == "complete" and best["value"] == pytest.approx(0.9)
    assert best["values"] == [pytest.approx(0.9)]
    assert best["params"]["optimizer"] in ("sgd", "adam", "adamw")
    assert isinstance(best["params"]["hidden"], int) and best["params"]["hidden"] % 32 == 0
    assert {
        "attempt",
        "retry_of",
        "worker",
        "device",
        "verdict",
        "accepted",
        "epochs_run",
        "datetime_start",
        "datetime_complete",
    } <= set(best)
    assert by_number[numbers[2]]["state"] == "pruned"

    detail = client.get(
        f"{API}/studies/{study_id}/trials/{numbers[3]}", headers=team.headers("viewer")
    ).json()
    assert detail["state"] == "fail" and detail["error"] == "CUDA out of memory"
    assert [s["step"] for s in detail["intermediate_values"]] == [0, 1, 2]
    assert_error(
        client.get(f"{API}/studies/{study_id}/trials/999", headers=team.headers("viewer")),
        404,
        "not_found",
    )

    complete = client.get(
        f"{API}/studies/{study_id}/trials", params={"state": "complete"}, headers=team.headers()
    ).json()["items"]
    assert sorted(t["number"] for t in complete) == sorted([numbers[0], numbers[1], numbers[4]])


def test_metrics_by_step(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    (number,) = run_trials(db_url, study_id, [0.9], epochs=5)
    url = f"{API}/studies/{study_id}/trials/{number}/metrics"
    whole = client.get(url, headers=team.headers("viewer")).json()
    assert whole["next_cursor"] is None
    assert [s["step"] for s in whole["items"]] == [0, 1, 2, 3, 4]
    assert set(whole["items"][0]["metrics"]) == {"val_accuracy", "val_loss", "lr"}
    assert whole["items"][-1]["metrics"]["val_accuracy"] == pytest.approx(0.9)

    steps, cursor = [], None
    while True:
        page = client.get(url, params={"limit": 2, "cursor": cursor}, headers=team.headers()).json()
        steps += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert steps == whole["items"]


def test_non_finite_values_render_as_null(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    (number,) = run_trials(db_url, study_id, [0.5], epochs=2)
    with session_scope(db_url) as session:
        row = repo.get_trial(session, study_id, number)
        assert row is not None
        row.values = ["inf"]
        row.value = float("inf")
        row.intermediate_values = {"0": "nan", "1": 0.5}
        repo.record_reports(session, row.id, {7: {"val_loss": float("nan")}}, utcnow())
    detail = client.get(f"{API}/studies/{study_id}/trials/{number}", headers=team.headers())
    assert detail.status_code == 200
    body = detail.json()
    assert body["value"] is None and body["values"] == [None]
    assert body["intermediate_values"] == [{"step": 0, "value": None}, {"step": 1, "value": 0.5}]
    metrics = client.get(
        f"{API}/studies/{study_id}/trials/{number}/metrics", headers=team.headers()
    ).json()["items"]
    assert metrics[-1] == {"step": 7, "metrics": {"val_loss": None}}
    board = client.get(f"{API}/studies/{study_id}/leaderboard", headers=team.headers())
    assert board.status_code == 200
    assert board.json()["items"][0]["value"] is None


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_study_leaderboard(client: TestClient, team: Team, db_url: str, direction: str) -> None:
    body = spec()
    metric = "val_accuracy" if direction == "maximize" else "val_loss"
    body["objective"] = {**body["objective"], "metric": metric, "direction": direction}
    study_id = create_study(client, team, body)
    values = [0.3, 0.9, None, 0.5, 0.9, 0.1]
    numbers = run_trials(db_url, study_id, values)
    with session_scope(db_url) as session:
        accepted = repo.get_trial(session, study_id, numbers[3])
        assert accepted is not None
        accepted.accepted = True
        accepted.verdict = {"accepted": True, "criteria": []}

    url = f"{API}/studies/{study_id}/leaderboard"
    whole = client.get(url, headers=team.headers("viewer")).json()
    assert whole["metric"] == metric and whole["direction"] == direction
    assert whole["multi_objective"] is False
    ranked = [(e["rank"], e["number"], e["value"]) for e in whole["items"]]
    complete = [(n, v) for n, v in zip(numbers, values, strict=True) if v is not None]
    expected = sorted(
        complete, key=lambda nv: (-nv[1] if direction == "maximize" else nv[1], nv[0])
    )
    assert [(n, pytest.approx(v)) for n, v in expected] == [(r[1], r[2]) for r in ranked]
    assert [r[0] for r in ranked] == list(range(1, len(expected) + 1))

    paged, cursor = [], None
    while True:
        page = client.get(url, params={"limit": 2, "cursor": cursor}, headers=team.headers()).json()
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["items"]

    only = client.get(url, params={"accepted_only": True}, headers=team.headers()).json()
    assert [(e["rank"], e["number"], e["accepted"]) for e in only["items"]] == [
        (1, numbers[3], True)
    ]
    assert only["items"][0]["verdict"] == {"accepted": True, "criteria": []}

    detail = client.get(f"{API}/studies/{study_id}", headers=team.headers()).json()
    assert detail["best_trial"]["number"] == expected[0][0]
    assert detail["counts"]["complete"] == 5 and detail["counts"]["pruned"] == 1


def test_importance(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    url = f"{API}/studies/{study_id}/importance"
    empty = client.get(url, headers=team.headers("viewer"))
    assert empty.status_code == 200
    assert empty.json()["importances"] == {} and "at least 2" in empty.json()["reason"]

    run_trials(db_url, study_id, [0.1 * i for i in range(1, 9)], metrics=False)
    for evaluator in ("fanova", "mean_decrease_impurity", "ped_anova"):
        response = client.get(url, params={"evaluator": evaluator}, headers=team.headers())
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["evaluator"] == evaluator and result["n_trials"] == 8
        assert result["metric"] == "val_accuracy"
        if result["importances"]:
            assert set(result["importances"]) == {"lr", "optimizer", "hidden"}
        else:
            assert result["reason"]
    default = client.get(url, headers=team.headers()).json()
    assert default["evaluator"] == "ped_anova"
    fanova = client.get(url, params={"evaluator": "fanova"}, headers=team.headers()).json()
    assert sum(fanova["importances"].values()) == pytest.approx(1.0)
    assert_error(
        client.get(url, params={"evaluator": "shap"}, headers=team.headers()), 422, "invalid"
    )
    assert_error(client.get(url, params={"objective": 1}, headers=team.headers()), 422, "invalid")


def test_team_leaderboard(client: TestClient, team: Team, other_team: Team, db_url: str) -> None:
    accuracy = [create_study(client, team, spec(name=f"acc{i}")) for i in range(3)]
    loss_body = spec(name="loss")
    loss_body["objective"] = {
        **loss_body["objective"],
        "metric": "val_loss",
        "direction": "minimize",
    }
    loss = create_study(client, team, loss_body)
    iris = spec(name="iris")
    iris["objective"] = {**iris["objective"], "dataset": "iris"}
    iris_id = create_study(client, team, iris)
    create_study(client, team, spec(name="empty"))
    theirs = create_study(client, other_team, spec(name="theirs"))

    run_trials(db_url, accuracy[0], [0.7, 0.8])
    run_trials(db_url, accuracy[1], [0.95, 0.6])
    run_trials(db_url, accuracy[2], [0.85])
    run_trials(db_url, loss, [0.4, 0.2, 0.3])
    run_trials(db_url, iris_id, [0.99])
    run_trials(db_url, theirs, [1.0])

    url = f"{API}/leaderboard"
    whole = client.get(url, headers=team.headers("viewer")).json()
    rows = [(e["metric"], e["rank"], e["study_id"], e["value"]) for e in whole["items"]]
    assert rows == [
        ("val_accuracy", 1, iris_id, pytest.approx(0.99)),
        ("val_accuracy", 2, accuracy[1], pytest.approx(0.95)),
        ("val_accuracy", 3, accuracy[2], pytest.approx(0.85)),
        ("val_accuracy", 4, accuracy[0], pytest.approx(0.8)),
        ("val_loss", 1, loss, pytest.approx(0.2)),
    ]
    first = whole["items"][0]
    assert first["study_name"] == "iris" and first["dataset"] == "iris"
    assert first["direction"] == "maximize" and set(first["params"]) == {
        "lr",
        "optimizer",
        "hidden",
    }
    assert theirs not in [e["study_id"] for e in whole["items"]]

    paged, cursor = [], None
    while True:
        page = client.get(url, params={"limit": 2, "cursor": cursor}, headers=team.headers()).json()
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["items"]

    by_metric = client.get(url, params={"metric": "val_loss"}, headers=team.headers()).json()
    assert [e["study_id"] for e in by_metric["items"]] == [loss]
    by_dataset = client.get(url, params={"dataset": "iris"}, headers=team.headers()).json()
    assert [e["study_id"] for e in by_dataset["items"]] == [iris_id]
    assert (
        client.get(url, params={"standard": "vision-baseline"}, headers=team.headers()).json()[
            "items"
        ]
        == []
    )
    assert (
        client.get(url, params={"accepted_only": True}, headers=team.headers()).json()["items"]
        == []
    )


def test_multi_objective_leaderboard_and_importance(
    client: TestClient, team: Team, db_url: str
) -> None:
    body = spec(sampler={"type": "nsga2", "seed": 0})
    body["objective"] = {
        **body["objective"],
        "metric": ["val_accuracy", "epoch_time_s"],
        "direction": ["maximize", "minimize"],
    }
    study_id = create_study(client, team, body)
    numbers = run_trials(db_url, study_id, [(0.7, 2.0), (0.9, 5.0), (0.8, 1.0), (0.6, 0.5)])
    board = client.get(f"{API}/studies/{study_id}/leaderboard", headers=team.headers()).json()
    assert board["multi_objective"] is True and board["metric"] == "val_accuracy"
    assert [e["number"] for e in board["items"]] == [numbers[1], numbers[2], numbers[0], numbers[3]]
    assert board["items"][0]["values"] == [pytest.approx(0.9), pytest.approx(5.0)]
    for objective, metric in ((0, "val_accuracy"), (1, "epoch_time_s")):
        for evaluator in ("fanova", "ped_anova"):
            result = client.get(
                f"{API}/studies/{study_id}/importance",
                params={"objective": objective, "evaluator": evaluator},
                headers=team.headers(),
            ).json()
            assert result["metric"] == metric and result["n_trials"] == 4
