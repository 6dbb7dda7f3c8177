"""Exporting a study's trials: CSV read back with the csv module, Parquet with pyarrow; both
carry the trials as they were created."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, Team, create_study, run_trials, spec
from tests.api.test_auth import assert_error

FIXED = [
    "number", "state", "val_accuracy", "param_lr", "param_optimizer", "param_hidden",
    "metric_lr", "metric_val_accuracy", "metric_val_loss", "epochs_run", "attempt", "retry_of",
    "accepted", "device", "datetime_start", "datetime_complete",
]


def _trials(client: TestClient, team: Team, study_id: int) -> list[dict[str, Any]]:
    response = client.get(f"{API}/studies/{study_id}/trials", headers=team.headers("viewer"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _export(client: TestClient, team: Team, study_id: int, fmt: str) -> bytes:
    response = client.get(f"{API}/studies/{study_id}/trials/export", params={"format": fmt},
                          headers=team.headers("viewer"))
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="study-{study_id}-digits-mlp-trials.{fmt}"'
    return response.content


@pytest.fixture
def finished(client: TestClient, team: Team, db_url: str) -> tuple[int, list[dict[str, Any]]]:
    study_id = create_study(client, team)
    run_trials(db_url, study_id, [0.5, None, 0.9], epochs=3)
    client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))
    return study_id, _trials(client, team, study_id)


def _expected(trial: dict[str, Any], i: int) -> dict[str, Any]:
    """What the export must say of a trial ``run_trials`` made as its i-th (3 epochs)."""
    final = trial["value"] if trial["state"] == "complete" else 0.1
    return {
        "number": trial["number"], "state": trial["state"], "val_accuracy": trial["value"],
        **{f"param_{k}": v for k, v in trial["params"].items()},
        "metric_lr": 1e-3, "metric_val_accuracy": final, "metric_val_loss": 1.0 / (3 + i),
        "epochs_run": 2, "attempt": 1, "retry_of": None, "accepted": None, "device": None,
    }


def test_csv_has_one_row_per_trial(
    client: TestClient, team: Team, finished: tuple[int, list[dict[str, Any]]]
) -> None:
    study_id, trials = finished
    text = _export(client, team, study_id, "csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == FIXED
    rows = list(reader)
    ran = [t for t in trials if t["params"]]
    assert [int(r["number"]) for r in rows] == [t["number"] for t in trials]
    by_number = {int(r["number"]): r for r in rows}
    for i, trial in enumerate(ran):
        row = by_number[trial["number"]]
        for column, value in _expected(trial, i).items():
            if value is None:
                assert row[column] == "", (column, row)
            elif isinstance(value, float):
                assert float(row[column]) == pytest.approx(value), (column, row)
            else:
                assert row[column] == str(value), (column, row)
        assert row["datetime_start"] == trial["datetime_start"]
        assert row["datetime_complete"] == trial["datetime_complete"]
    assert [by_number[t["number"]]["state"] for t in ran] == ["complete", "pruned", "complete"]


def test_parquet_has_typed_columns(
    client: TestClient, team: Team, finished: tuple[int, list[dict[str, Any]]]
) -> None:
    study_id, trials = finished
    table = pq.read_table(io.BytesIO(_export(client, team, study_id, "parquet")))
    assert table.column_names == FIXED
    rows = {r["number"]: r for r in table.to_pylist()}
    assert sorted(rows) == [t["number"] for t in trials]
    ran = [t for t in trials if t["params"]]
    for i, trial in enumerate(ran):
        row = rows[trial["number"]]
        for column, value in _expected(trial, i).items():
            assert row[column] == (pytest.approx(value) if isinstance(value, float) else value), (
                column, row)
        assert row["datetime_complete"].isoformat().replace("+00:00", "Z") == (
            trial["datetime_complete"])
    assert str(table.schema.field("param_hidden").type) == "int64"
    assert str(table.schema.field("param_optimizer").type) == "string"
    assert str(table.schema.field("datetime_start").type) == "timestamp[us, tz=UTC]"


def test_multi_objective_columns_are_its_metrics(
    client: TestClient, team: Team, db_url: str
) -> None:
    body = spec(objective={**spec()["objective"], "metric": ["val_accuracy", "val_loss"],
                           "direction": ["maximize", "minimize"]},
                sampler={"type": "nsga2", "seed": 1})
    study_id = create_study(client, team, body)
    run_trials(db_url, study_id, [(0.9, 0.2), (0.8, 0.1)], metrics=False)
    reader = csv.DictReader(io.StringIO(_export(client, team, study_id, "csv").decode()))
    assert reader.fieldnames is not None and reader.fieldnames[:4] == [
        "number", "state", "val_accuracy", "val_loss"
    ]
    assert not any(name.startswith("metric_") for name in reader.fieldnames)
    values = [(float(r["val_accuracy"]), float(r["val_loss"])) for r in reader if r["val_loss"]]
    assert values == [(0.9, 0.2), (0.8, 0.1)]


def test_an_empty_study_exports_a_header(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team, spec(budget={"n_trials": 1}))
    client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))
    text = _export(client, team, study_id, "csv").decode()
    assert text.splitlines()[0].startswith("number,state,val_accuracy,")
    assert pq.read_table(io.BytesIO(_export(client, team, study_id, "parquet"))).num_rows == len(
        text.splitlines()) - 1


def test_bad_format_and_other_teams(client: TestClient, team: Team, other_team: Team) -> None:
    study_id = create_study(client, team)
    path = f"{API}/studies/{study_id}/trials/export"
    error = assert_error(client.get(path, params={"format": "xlsx"},
                                    headers=team.headers("viewer")), 422, "invalid")
    assert error["details"][0]["field"] == "format"
    assert_error(client.get(path, headers=other_team.headers("admin")), 404, "not_found")
    assert_error(client.get(path), 401, "unauthorized")
    # /trials/{number} still answers for numbers, and a trial named "export" is not a thing.
    assert client.get(f"{API}/studies/{study_id}/trials/0",
                      headers=team.headers("viewer")).status_code in (200, 404)
