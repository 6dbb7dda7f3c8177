"""How errors and values are shown: real ``ApiError``s as the API's handler shapes them."""

from __future__ import annotations

from tuneboard.cli import render
from tuneboard.client import ApiError, ConfigError


def test_a_422_names_each_field_once_and_not_the_summary_again() -> None:
    details = [
        {"field": "budget.n_trials", "in": "body", "reason": "must be at least 1"},
        {"field": "sampler.type", "reason": "unknown sampler 'tpx'; did you mean 'tpe'?"},
        {"field": "budget.n_trials", "in": "body", "reason": "must be at least 1"},
        {"field": "objective.metric", "reason": "required"},
    ]
    err = ApiError(422, "invalid", "budget.n_trials: must be at least 1 (and 3 more)", details)
    assert render.error_lines(err) == [
        "[red]error[/red] 422 invalid: 3 problems",
        "  budget.n_trials: must be at least 1",
        "  sampler.type: unknown sampler 'tpx'; did you mean 'tpe'?",
        "  objective.metric: required",
    ]


def test_other_errors_keep_their_message_and_details() -> None:
    assert render.error_lines(ApiError(404, "not_found", "study 7 does not exist")) == [
        "[red]error[/red] 404 not_found: study 7 does not exist"
    ]
    conflict = render.error_lines(ApiError(409, "conflict", "busy", {"retry_after": 2}))
    assert conflict[0] == "[red]error[/red] 409 conflict: busy"
    assert '"retry_after": 2' in conflict[1]
    assert render.error_lines(ConfigError("no API key [x]")) == [
        "[red]error[/red] no API key \\[x]"
    ]


def test_values() -> None:
    assert render.fmt(None) == "-"
    assert render.fmt(0.123456789) == "0.123457"
    assert render.fmt({"lr": 0.001, "optimizer": "adam"}) == "lr=0.001, optimizer=adam"
