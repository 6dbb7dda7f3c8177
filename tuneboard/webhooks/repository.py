"""Every query on webhooks and their deliveries. Reads are scoped to a team; the dispatcher's
claim and outcome updates are conditional, so racing dispatchers change each delivery once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tuneboard.db.models import DeliveryState, Webhook, WebhookDelivery


def add_webhook(
    session: Session, *, team_id: int, url: str, events: list[str], secret: str, created_by: str
) -> Webhook:
    hook = Webhook(team_id=team_id, url=url, events=events, secret=secret,
                   created_by=created_by, active=True)
    session.add(hook)
    session.flush()
    return hook


def get_webhook(session: Session, team_id: int, webhook_id: int) -> Webhook | None:
    """The team's webhook, unless deleted."""
    return session.scalar(
        select(Webhook).where(
            Webhook.team_id == team_id, Webhook.id == webhook_id, Webhook.active.is_(True)
        )
    )


def list_webhooks(
    session: Session, team_id: int, *, limit: int, after_id: int | None = None
) -> list[Webhook]:
    stmt = select(Webhook).where(Webhook.team_id == team_id, Webhook.active.is_(True))
    if after_id is not None:
        stmt = stmt.where(Webhook.id > after_id)
    return list(session.scalars(stmt.order_by(Webhook.id).limit(limit)))


def subscribed_webhook_ids(session: Session, team_id: int, event: str) -> list[int]:
    # ``events`` is a short JSON list; a team has few hooks, so it is filtered here.
    rows = session.execute(
        select(Webhook.id, Webhook.events).where(
            Webhook.team_id == team_id, Webhook.active.is_(True)
        )
    )
    return [hook_id for hook_id, events in rows if event in (events or [])]


def add_deliveries(
    session: Session,
    webhook_ids: Sequence[int],
    *,
    event: str,
    event_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """One pending delivery per webhook; an event already owed to a hook is left as it is."""
    rows = [
        {
            "webhook_id": hook_id,
            "event": event,
            "event_id": event_id,
            "payload": payload,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for hook_id in webhook_ids
    ]
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert(WebhookDelivery).values(rows)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["webhook_id", "event_id"]))


def list_deliveries(
    session: Session, webhook_id: int, *, limit: int, before_id: int | None = None
) -> list[WebhookDelivery]:
    """The webhook's deliveries, newest first; ``before_id`` is the cursor."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


def give_up_pending(session: Session, webhook_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.state == DeliveryState.PENDING,
        )
        .values(state=DeliveryState.FAILED, next_attempt_at=None, last_error=reason)
    )


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds until ``until``, with what sending it needs."""

    id: int
    event: str
    event_id: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    team_id: int
    url: str
    secret: str


def claim_due(session: Session, now: datetime, *, limit: int, until: datetime) -> list[Claimed]:
    """Pending deliveries due by ``now``, each moved to ``until`` so no other dispatcher takes
    it meanwhile. PostgreSQL skips rows another dispatcher has locked; SQLite transactions
    already hold the write lock. The update is conditional on both, and only the rows it
    changed are claimed."""
    stmt = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            Webhook.active.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
    claimed: list[int] = []
    for delivery_id in session.scalars(stmt).all():
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=until)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    if not claimed:
        return []
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(claimed))
        .order_by(WebhookDelivery.id)
    )
    return [
        Claimed(id=d.id, event=d.event, event_id=d.event_id, payload=d.payload,
                created_at=d.created_at, attempts=d.attempts, team_id=h.team_id,
                url=h.url, secret=h.secret)
        for d, h in rows
    ]


def mark_delivered(session: Session, delivery_id: int, *, status: int, now: datetime) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == DeliveryState.PENDING
        )
        .values(
            state=DeliveryState.DELIVERED,
            attempts=WebhookDelivery.attempts + 1,
            last_status=status,
            last_error=None,
            delivered_at=now,
            next_attempt_at=None,
        )
    )


def mark_attempt_failed(
    session: Session,
    delivery_id: int,
    *,
    status: int | None,
    error: str,
    next_attempt_at: datetime | None,
) -> None:
    """One more failed attempt; no ``next_attempt_at`` means the delivery is given up."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == DeliveryState.PENDING
        )
        .values(
            state=DeliveryState.PENDING if next_attempt_at else DeliveryState.FAILED,
            attempts=WebhookDelivery.attempts + 1,
            last_status=status,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )
