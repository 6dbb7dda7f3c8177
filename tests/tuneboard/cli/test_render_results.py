"""How ``watch``, ``studies show`` and ``trials`` show a study: budgets, counts, best trial,
multi-objective values named by their metrics."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from tuneboard.cli import render

COUNTS = {"waiting": 1, "running": 2, "complete": 4, "pruned": 2, "fail": 1}


def _study(**changes: Any) -> dict[str, Any]:
    study: dict[str, Any] = {
        "id": 7, "name": "digits-[red]mlp", "state": "running", "metrics": ["val_accuracy"],
        "directions": ["maximize"], "counts": COUNTS, "spec": {"budget": {"n_trials": 20}},
        "standard": None, "created_at": "2026-11-22T10:00:00Z", "created_by": "key:4",
    }
    study.update(changes)
    return study


def _text(renderable: Any) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_progress_counts_finished_trials_against_the_budget() -> None:
    assert render.finished_of(_study(), COUNTS) == (7, 20)
    # Trials outside the budget (enqueued, retries) make the total grow, never overflow it.
    assert render.finished_of(_study(spec={"budget": {"n_trials": 5}}), COUNTS) == (7, 10)
    assert render.finished_of(_study(spec={}), COUNTS) == (7, 10)


def test_watch_display_shows_progress_counts_and_the_best_trial() -> None:
    best = {"number": 3, "value": 0.97, "values": [0.97], "params": {"lr": 0.01}}
    progress = {"state": "running", "counts": COUNTS, "best_value": 0.97}
    text = _text(render.watch_display(_study(), progress, best))
    assert "Study 7 digits-[red]mlp  running" in text
    assert "7/20 finished" in text
    assert "complete 4  pruned 2  failed 1  running 2  waiting 1" in text
    assert "best val_accuracy 0.97  (trial #3)  lr=0.01" in text
    assert "no complete trial yet" in _text(render.watch_display(_study(), None, None))


def test_multi_objective_values_are_named_by_their_metrics() -> None:
    study = _study(metrics=["val_accuracy", "val_loss"], directions=["maximize", "minimize"])
    best = {"number": 2, "value": 0.9, "values": [0.9, 0.25], "params": {}}
    assert render.best_text(study, best) == (
        "best by val_accuracy: val_accuracy 0.9, val_loss 0.25  (trial #2)"
    )
    table = _text(render.trials_table(study, [{**best, "state": "complete", "epochs_run": 3,
                                               "accepted": None, "device": "cpu"}]))
    assert "values" in table and "val_accuracy 0.9, val_loss 0.25" in table
