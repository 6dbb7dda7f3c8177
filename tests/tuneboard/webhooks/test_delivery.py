"""The dispatcher against a real local HTTP receiver, on both databases: signed bodies, retries
with backoff while the receiver is down or failing, and one acknowledged delivery per event."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.tuneboard.webhooks.receiver import Receiver
from tuneboard import webhooks
from tuneboard.config import Settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import DeliveryState, WebhookDelivery
from tuneboard.teams import Principal
from tuneboard.teams.service import authenticate, create_team
from tuneboard.webhooks import WebhookCreate, WebhookEvent, delivery
from workers import reaper

EVENT = WebhookEvent.STUDY_FINISHED


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver.on_free_port()
    yield receiver
    receiver.stop()


@pytest.fixture
def team(db_url: str) -> Principal:
    with session_scope(db_url) as session:
        _, key = create_team(session, "team-a")
        return authenticate(session, key)


def _hook(db_url: str, team: Principal, url: str) -> tuple[int, str]:
    with session_scope(db_url) as session:
        hook = webhooks.create_webhook(
            session, team_id=team.team_id, actor=team.actor,
            body=WebhookCreate(url=url, events=[EVENT]),
        )
        return hook.id, hook.secret


def _emit(db_url: str, team: Principal, *study_ids: int) -> None:
    with session_scope(db_url) as session:
        for study_id in study_ids:
            webhooks.emit(session, team_id=team.team_id, event=EVENT,
                          payload={"study": {"id": study_id}})


def _deliveries(db_url: str) -> list[WebhookDelivery]:
    with session_scope(db_url) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_delivery_is_signed_and_sent_once(
    db_url: str, team: Principal, receiver: Receiver
) -> None:
    receiver.start()
    hook_id, secret = _hook(db_url, team, receiver.url)
    _emit(db_url, team, 7)
    assert webhooks.deliver_due(db_url).delivered == 1
    [got] = receiver.requests
    [row] = _deliveries(db_url)
    assert got.signed_with(secret) and not got.signed_with(secret + "x")
    assert got.headers["x-tuneboard-event"] == "study.finished"
    assert got.headers["x-tuneboard-delivery"] == str(row.id)
    assert got.headers["content-type"] == "application/json"
    body = got.json()
    assert body["event"] == "study.finished" and body["event_id"] == row.event_id
    assert body["delivery_id"] == row.id and body["team_id"] == team.team_id
    assert body["data"] == {"study": {"id": 7}}
    assert row.webhook_id == hook_id and row.state == DeliveryState.DELIVERED
    assert (row.attempts, row.last_status, row.next_attempt_at) == (1, 200, None)
    assert row.delivered_at is not None

    later = utcnow() + timedelta(days=2)
    assert webhooks.deliver_due(db_url, later).as_dict() == {
        "delivered": 0, "retried": 0, "failed": 0
    }
    assert len(receiver.requests) == 1


def test_a_receiver_down_then_up_gets_the_event_exactly_once(
    db_url: str, team: Principal, receiver: Receiver
) -> None:
    _hook(db_url, team, receiver.url)  # nothing listens there yet: connections are refused
    _emit(db_url, team, 1)
    now = utcnow()
    assert webhooks.deliver_due(db_url, now).retried == 1
    [row] = _deliveries(db_url)
    assert row.state == DeliveryState.PENDING and row.attempts == 1
    assert row.last_status is None and "ConnectError" in (row.last_error or "")
    assert row.next_attempt_at == now + timedelta(seconds=delivery.BACKOFF_BASE_S)
    assert webhooks.deliver_due(db_url, now + timedelta(seconds=1)).retried == 0  # not due yet

    receiver.start()
    due = now + timedelta(seconds=delivery.BACKOFF_BASE_S)
    assert webhooks.deliver_due(db_url, due).delivered == 1
    for hours in (1, 24):
        assert webhooks.deliver_due(db_url, due + timedelta(hours=hours)).delivered == 0
    [got] = receiver.requests
    assert got.headers["x-tuneboard-delivery"] == str(row.id)
    [row] = _deliveries(db_url)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        DeliveryState.DELIVERED, 2, 200, None
    )


def test_non_2xx_answers_back_off_then_give_up(
    db_url: str, team: Principal, receiver: Receiver
) -> None:
    receiver.status = 503
    receiver.start()
    _hook(db_url, team, receiver.url)
    _emit(db_url, team, 1)
    now: datetime = utcnow()
    waits = []
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        report = webhooks.deliver_due(db_url, now)
        [row] = _deliveries(db_url)
        assert row.attempts == attempt and row.last_status == 503
        assert row.last_error is not None and row.last_error.startswith("HTTP 503")
        if attempt < delivery.MAX_ATTEMPTS:
            assert report.retried == 1 and row.next_attempt_at is not None
            waits.append((row.next_attempt_at - now).total_seconds())
            now = row.next_attempt_at
        else:
            assert report.failed == 1
            assert row.state == DeliveryState.FAILED and row.next_attempt_at is None
    assert waits[:4] == [10.0, 20.0, 40.0, 80.0]
    assert max(waits) == delivery.BACKOFF_CAP_S and waits == sorted(waits)
    assert len(receiver.requests) == delivery.MAX_ATTEMPTS
    assert webhooks.deliver_due(db_url, now + timedelta(days=7)).failed == 0  # never again


def test_racing_dispatchers_send_each_delivery_once(
    db_url: str, team: Principal, receiver: Receiver
) -> None:
    receiver.start()
    _hook(db_url, team, receiver.url)
    _emit(db_url, team, *range(2 * delivery.BATCH))
    barrier = threading.Barrier(4)

    def dispatcher() -> None:
        barrier.wait()
        for _ in range(3):
            webhooks.deliver_due(db_url)

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [r.headers["x-tuneboard-delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 2 * delivery.BATCH
    assert {d.state for d in _deliveries(db_url)} == {DeliveryState.DELIVERED}


def test_a_deleted_webhook_gets_nothing_more(
    db_url: str, team: Principal, receiver: Receiver
) -> None:
    receiver.start()
    hook_id, _ = _hook(db_url, team, receiver.url)
    _emit(db_url, team, 1)
    with session_scope(db_url) as session:
        webhooks.delete_webhook(session, team_id=team.team_id, actor=team.actor,
                                webhook_id=hook_id)
    _emit(db_url, team, 2)
    assert webhooks.deliver_due(db_url).delivered == 0
    assert receiver.requests == []
    [row] = _deliveries(db_url)
    assert row.state == DeliveryState.FAILED and row.last_error == "webhook deleted"


def test_each_reaper_pass_sends_what_is_due(
    db_url: str, team: Principal, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.start()
    _hook(db_url, team, receiver.url)
    _emit(db_url, team, 1)
    reaper.reap_once(Settings(database_url=db_url, home=tmp_path, environment="test"))
    [got] = receiver.requests
    assert got.json()["data"] == {"study": {"id": 1}}
