"""Events are owed in the transaction of their fact, through the real domain services, on both
databases: one pending delivery per subscribed webhook of the team, never two for one event."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.tuneboard.standards.support import baseline, spec
from tuneboard import standards, webhooks
from tuneboard.db import session_scope
from tuneboard.db.models import DeliveryState, Trial, WebhookDelivery
from tuneboard.spec.states import StudyState, TrialState
from tuneboard.studies import dispatch, service, verdicts
from tuneboard.teams import Principal
from tuneboard.teams.service import authenticate, create_team
from tuneboard.webhooks import WebhookCreate, WebhookEvent

ALL_EVENTS = list(WebhookEvent)
METRICS_ONLY = [
    {"metric": "val_accuracy", "op": ">=", "value": 0.97},
    {"metric": "generalization_gap", "op": "<=", "value": 0.03},
]


def _principal(session: Session, name: str) -> Principal:
    _, key = create_team(session, name)
    return authenticate(session, key)


@pytest.fixture
def a(db_url: str) -> Principal:
    with session_scope(db_url) as session:
        return _principal(session, "team-a")


@pytest.fixture
def b(db_url: str) -> Principal:
    with session_scope(db_url) as session:
        return _principal(session, "team-b")


def _hook(db_url: str, who: Principal, events: list[WebhookEvent] = ALL_EVENTS) -> int:
    with session_scope(db_url) as session:
        body = WebhookCreate(url="http://127.0.0.1:9/hook", events=events)
        return webhooks.create_webhook(
            session, team_id=who.team_id, actor=who.actor, body=body
        ).id


def _owed(db_url: str, hook_id: int) -> list[WebhookDelivery]:
    with session_scope(db_url) as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == hook_id)
                .order_by(WebhookDelivery.id)
            )
        )


def test_only_subscribed_hooks_of_the_team_are_owed_and_only_once(
    db_url: str, a: Principal, b: Principal
) -> None:
    studies_only = _hook(db_url, a, [WebhookEvent.STUDY_FINISHED])
    standards_too = _hook(db_url, a, [WebhookEvent.STANDARD_PUBLISHED])
    other_team = _hook(db_url, b)
    with session_scope(db_url) as session:
        standards.create_standard(session, a, baseline())
    [delivery] = _owed(db_url, standards_too)
    assert delivery.event == WebhookEvent.STANDARD_PUBLISHED
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0
    assert delivery.payload["standard"] == "vision-baseline@1"
    assert _owed(db_url, studies_only) == [] and _owed(db_url, other_team) == []

    payload: dict[str, Any] = {"standard": "vision-baseline@1", "n": float("nan")}
    with session_scope(db_url) as session:
        for _ in range(2):  # the same fact seen twice is owed once
            webhooks.emit(session, team_id=a.team_id, event=WebhookEvent.STUDY_FINISHED,
                          payload=payload)
    [finished] = _owed(db_url, studies_only)
    assert finished.payload == {"standard": "vision-baseline@1", "n": None}


def test_an_event_rolls_back_with_its_fact(db_url: str, a: Principal) -> None:
    hook = _hook(db_url, a)
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        standards.create_standard(session, a, baseline())
        raise RuntimeError("the request failed after the fact")
    assert _owed(db_url, hook) == []


def test_standard_published_and_deprecated(db_url: str, a: Principal) -> None:
    hook = _hook(db_url, a)
    with session_scope(db_url) as session:
        standards.create_standard(session, a, baseline())
        standards.publish_version(session, a, "vision-baseline", baseline(description="v2"))
        standards.deprecate_version(session, a, "vision-baseline", 1)
        standards.deprecate_version(session, a, "vision-baseline", 1)  # no change, no event
    owed = [(d.event, d.payload["version"], d.payload["status"]) for d in _owed(db_url, hook)]
    assert owed == [
        ("standard.published", 1, "active"),
        ("standard.published", 2, "active"),
        ("standard.deprecated", 1, "deprecated"),
    ]


def test_an_override_is_announced_with_its_reason_and_violations(
    db_url: str, a: Principal
) -> None:
    hook = _hook(db_url, a, [WebhookEvent.STUDY_OVERRIDE])
    space = {**spec()["search_space"],
             "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]}}
    with session_scope(db_url) as session:
        standards.create_standard(session, a, baseline())
        service.create_study(session, a, spec())  # keeps the rules: no event
        overridden, _ = service.create_study(
            session, a,
            spec(name="ablation", search_space=space, override={"reason": "rmsprop ablation"}),
        )
    [delivery] = _owed(db_url, hook)
    assert delivery.payload["study"]["id"] == overridden.id
    assert delivery.payload["study"]["standard"] == "vision-baseline@1"
    assert delivery.payload["reason"] == "rmsprop ablation"
    assert [v["rule"] for v in delivery.payload["violations"]] == ["optimizer"]


def _finish(session: Session, trial: Trial, value: float, gap: float = 0.01) -> dict[str, float]:
    metrics = {"val_accuracy": value, "generalization_gap": gap}
    trial.system_attrs = {**(trial.system_attrs or {}),
                          verdicts.FINAL_METRICS_ATTR: verdicts.encode_metrics(metrics)}
    trial.state, trial.value, trial.values = TrialState.COMPLETE, value, [value]
    trial.params, trial.distributions = {}, {}
    session.flush()
    return metrics


def _trials(session: Session, study_id: int) -> list[Trial]:
    return list(session.scalars(
        select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)
    ))


def test_a_new_best_accepted_trial_and_the_finished_study(db_url: str, a: Principal) -> None:
    best_hook = _hook(db_url, a, [WebhookEvent.TRIAL_BEST_ACCEPTED])
    finished_hook = _hook(db_url, a, [WebhookEvent.STUDY_FINISHED])
    with session_scope(db_url) as session:
        standards.create_standard(session, a, baseline(acceptance=METRICS_ONLY))
        study, _ = service.create_study(
            session, a, spec(budget={"n_trials": 4, "max_parallel": 4})
        )
        study_id = study.id
        first, second, third, fourth = _trials(session, study_id)
        outcomes = [(first, 0.975, 0.01),  # accepted: the first best
                    (second, 0.99, 0.10),  # better value, rejected (gap)
                    (third, 0.972, 0.01),  # accepted, not better
                    (fourth, 0.985, 0.02)]  # accepted and better: a new best
        for trial, value, gap in outcomes:
            verdicts.judge(session, trial, _finish(session, trial, value, gap))
    assert _owed(db_url, finished_hook) == []  # not until the dispatcher settles it
    with session_scope(db_url) as session:
        dispatch.dispatch(session, study_id)
        assert service.get_study(session, a, study_id).state == StudyState.COMPLETED

    announced = [d.payload["trial"] for d in _owed(db_url, best_hook)]
    assert [(t["number"], t["value"]) for t in announced] == [(0, 0.975), (3, 0.985)]
    assert announced[1]["verdict"]["accepted"] is True
    [finished] = _owed(db_url, finished_hook)
    assert finished.event == WebhookEvent.STUDY_FINISHED
    assert finished.payload["study"] == {"id": study_id, "name": "digits-mlp",
                                         "state": "completed", "standard": "vision-baseline@1"}
    assert finished.payload["finished_at"].endswith("Z")
    with session_scope(db_url) as session:
        dispatch.dispatch(session, study_id)  # settled already: nothing more
    assert len(_owed(db_url, finished_hook)) == 1


def test_a_cancelled_study_is_finished_once_its_trials_have_ended(
    db_url: str, a: Principal
) -> None:
    hook = _hook(db_url, a, [WebhookEvent.STUDY_FINISHED])
    with session_scope(db_url) as session:
        study, _ = service.create_study(session, a, {**spec(), "standard": None})
        service.cancel_study(session, a, study.id)
    [delivery] = _owed(db_url, hook)
    assert delivery.payload["study"]["state"] == "cancelled"
    assert delivery.payload["study"]["standard"] is None
