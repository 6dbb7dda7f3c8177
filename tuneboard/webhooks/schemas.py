"""What the API takes and returns for webhooks and their deliveries, and the events they carry."""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tuneboard.db.models import DeliveryState, Webhook, WebhookDelivery
from tuneboard.schemas import UtcDatetime, View


class WebhookEvent(StrEnum):
    """What a team can subscribe to. Each is emitted in the transaction of its fact."""

    STUDY_FINISHED = "study.finished"  # settled by the dispatcher: completed, failed, cancelled
    TRIAL_BEST_ACCEPTED = "trial.best_accepted"  # a trial became its study's best accepted one
    STANDARD_PUBLISHED = "standard.published"  # a new version (created, published, promoted)
    STANDARD_DEPRECATED = "standard.deprecated"
    STUDY_OVERRIDE = "study.override"  # a study was admitted under an override reason


class WebhookCreate(BaseModel):
    """Body of POST /webhooks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://ci.example.com/tuneboard",
                    "events": ["study.finished", "trial.best_accepted"],
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
        r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
        r"(?:/[!-~]*)?$",
        description="Where to POST each event (http or https).",
    )
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("must not contain spaces or control characters")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises ValueError for a port out of range)
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not parts.hostname:
            raise ValueError("must name a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials; the signature authenticates us")
        return value

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        return list(dict.fromkeys(events))


class WebhookOut(View):
    id: int
    url: str
    events: list[WebhookEvent]
    active: bool
    created_by: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, hook: Webhook) -> WebhookOut:
        return cls(id=hook.id, url=hook.url, events=[WebhookEvent(e) for e in hook.events],
                   active=hook.active, created_by=hook.created_by, created_at=hook.created_at)


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signs every delivery (X-Tuneboard-Signature: sha256=<hex HMAC-SHA256 of "
        "the raw body>); shown this once, never again."
    )

    @classmethod
    def of_new(cls, hook: Webhook) -> WebhookCreated:
        return cls(**WebhookOut.of(hook).model_dump(), secret=hook.secret)


class DeliveryOut(View):
    """One event owed to a webhook, and how its delivery went."""

    id: int = Field(description="Sent as X-Tuneboard-Delivery; the same on every retry.")
    event: WebhookEvent
    event_id: str
    state: DeliveryState
    attempts: int
    next_attempt_at: UtcDatetime | None = Field(
        None, description="When the next attempt is due, while the delivery is pending."
    )
    last_status: int | None = Field(None, description="The receiver's last HTTP status.")
    last_error: str | None = None
    delivered_at: UtcDatetime | None = None
    created_at: UtcDatetime

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event=WebhookEvent(delivery.event),
            event_id=delivery.event_id,
            state=delivery.state,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )
