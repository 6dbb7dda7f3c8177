"""Webhooks of the caller's team (admin): register a receiver (the secret is shown once), list,
delete, and see each delivery's status. Another team's webhook is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import API_PREFIX, MAX_ID, Admin, SessionDep
from api.openapi import ERRORS
from api.pagination import CursorKey, Limit, page
from tuneboard import webhooks
from tuneboard.schemas import Page
from tuneboard.webhooks import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

router = APIRouter(prefix=f"{API_PREFIX}/webhooks", tags=["webhooks"], responses=ERRORS)

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook",
    description="Each event is POSTed as JSON with `X-Tuneboard-Event`, `X-Tuneboard-Delivery` "
    "(the delivery's id, the same on every retry) and `X-Tuneboard-Signature: sha256=<hex "
    "HMAC-SHA256 of the raw body with the secret>`. A 2xx answer acknowledges it; anything else "
    "is retried with exponential backoff. The `secret` is in this response only.",
)
def create_webhook(session: SessionDep, principal: Admin, body: WebhookCreate) -> WebhookCreated:
    hook = webhooks.create_webhook(
        session, team_id=principal.team_id, actor=principal.actor, body=body
    )
    return WebhookCreated.of_new(hook)


@router.get("", summary="The team's webhooks, oldest first")
def list_webhooks(
    session: SessionDep, principal: Admin, limit: Limit, after: CursorKey
) -> Page[WebhookOut]:
    rows = webhooks.list_webhooks(session, principal.team_id, limit=limit + 1, after_id=after)
    items, next_cursor = page(rows, limit, lambda h: (h.id,))
    return Page[WebhookOut](items=[WebhookOut.of(h) for h in items], next_cursor=next_cursor)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook",
    description="It receives nothing more; its pending deliveries are given up.",
)
def delete_webhook(session: SessionDep, principal: Admin, webhook_id: WebhookId) -> None:
    webhooks.delete_webhook(
        session, team_id=principal.team_id, actor=principal.actor, webhook_id=webhook_id
    )


@router.get("/{webhook_id}/deliveries", summary="A webhook's deliveries, newest first")
def list_deliveries(
    session: SessionDep,
    principal: Admin,
    webhook_id: WebhookId,
    limit: Limit,
    before: CursorKey,
) -> Page[DeliveryOut]:
    rows = webhooks.list_deliveries(
        session, principal.team_id, webhook_id, limit=limit + 1, before_id=before
    )
    items, next_cursor = page(rows, limit, lambda d: (d.id,))
    return Page[DeliveryOut](items=[DeliveryOut.of(d) for d in items], next_cursor=next_cursor)
