"""Use cases on webhooks, and ``emit``: what every other domain calls when a fact a team may
subscribe to happens. Services flush and never commit; the request or task commits.

Decisions:
- ``emit`` writes one pending delivery per subscribed webhook in the caller's transaction (an
  outbox): the delivery commits with the fact or not at all, so an event is never lost to a
  crash between the two and never announced for a fact that rolled back.
- An event's id is derived from its kind and payload unless the caller names one; a delivery
  is unique per (webhook, event id), so the same fact seen twice is owed once.
- The secret is kept as issued (signing needs it) and shown only in the creation response.
- DELETE deactivates the hook and gives up its pending deliveries; the rows stay as a record.
- Role checks (admin) belong to the API; these functions scope every read to the team.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import Webhook, WebhookDelivery
from tuneboard.errors import NotFound
from tuneboard.schemas import json_safe
from tuneboard.spec import canonical_hash
from tuneboard.webhooks import repository
from tuneboard.webhooks.schemas import WebhookCreate, WebhookEvent

SECRET_PREFIX = "whsec_"


def create_webhook(
    session: Session, *, team_id: int, actor: str, body: WebhookCreate
) -> Webhook:
    hook = repository.add_webhook(
        session,
        team_id=team_id,
        url=body.url,
        events=[str(e) for e in body.events],
        secret=SECRET_PREFIX + secrets.token_urlsafe(32),
        created_by=actor,
    )
    audit.record(session, team_id=team_id, actor=actor, action="webhook.create",
                 object_type="webhook", object_id=hook.id,
                 details={"url": hook.url, "events": hook.events})
    return hook


def list_webhooks(
    session: Session, team_id: int, *, limit: int, after_id: int | None = None
) -> list[Webhook]:
    """The team's webhooks, oldest first, after ``after_id``."""
    return repository.list_webhooks(session, team_id, limit=limit, after_id=after_id)


def get_webhook(session: Session, team_id: int, webhook_id: int) -> Webhook:
    hook = repository.get_webhook(session, team_id, webhook_id)
    if hook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


def delete_webhook(session: Session, *, team_id: int, actor: str, webhook_id: int) -> None:
    hook = get_webhook(session, team_id, webhook_id)
    hook.active = False
    repository.give_up_pending(session, hook.id, "webhook deleted", utcnow())
    session.flush()
    audit.record(session, team_id=team_id, actor=actor, action="webhook.delete",
                 object_type="webhook", object_id=hook.id, details={"url": hook.url})


def list_deliveries(
    session: Session, team_id: int, webhook_id: int, *, limit: int, before_id: int | None = None
) -> list[WebhookDelivery]:
    """The webhook's deliveries, newest first, before ``before_id``."""
    hook = get_webhook(session, team_id, webhook_id)
    return repository.list_deliveries(session, hook.id, limit=limit, before_id=before_id)


def emit(
    session: Session,
    *,
    team_id: int | None,
    event: WebhookEvent,
    payload: dict[str, Any],
    event_id: str | None = None,
) -> None:
    """Owe ``event`` to each of the team's webhooks subscribed to it, in this transaction.

    ``payload`` becomes the delivery's ``data`` (datetimes as ISO 8601 UTC, non-finite numbers
    as null). A study without a team (made through Optuna's own API) has no webhooks.
    """
    if team_id is None:
        return
    hook_ids = repository.subscribed_webhook_ids(session, team_id, str(event))
    if not hook_ids:
        return
    data = json_safe(json.loads(json.dumps(payload, default=_encode)))
    repository.add_deliveries(
        session,
        hook_ids,
        event=str(event),
        event_id=event_id or f"{event}:{canonical_hash(data)[:32]}",
        payload=data,
        now=utcnow(),
    )


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    return str(value)
