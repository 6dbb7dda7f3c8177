"""The webhook dispatcher: sends the deliveries that are due, from the database.

Invariants:
- A delivery is sent only while it is pending and claimed: the claim moves its
  ``next_attempt_at`` past the send (``CLAIM_S``), so concurrent dispatchers (one per reaper)
  never send it at the same time; a dispatcher that dies mid-send leaves it due again later.
- A 2xx answer makes it delivered, and a delivered row is never sent again. Anything else (a
  status, a refused connection, a timeout) is one more attempt and a later retry, doubling
  from ``BACKOFF_BASE_S`` up to ``BACKOFF_CAP_S``, until ``MAX_ATTEMPTS`` make it failed.
- Delivery is at least once: a receiver that acknowledged just before its dispatcher died
  hears the event again after the claim lapses, with the same ``X-Tuneboard-Delivery``; that
  id is what a receiver de-duplicates on.
- Nothing here raises for a receiver's fault, and no database transaction is held open while a
  receiver is waited on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from tuneboard.db import session_scope, utcnow
from tuneboard.webhooks import repository
from tuneboard.webhooks.repository import Claimed

__all__ = ["DeliveryReport", "backoff_s", "deliver_due", "render_body", "signature"]

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
CLAIM_S = 60.0  # longer than any send (``TIMEOUT_S`` for each phase of one request)
BACKOFF_BASE_S = 10.0
BACKOFF_CAP_S = 3600.0
MAX_ATTEMPTS = 20  # about half a day of retries at the cap
BATCH = 16
SENDERS = 8  # a pass against slow receivers stays within BATCH / SENDERS * TIMEOUT_S
ERROR_CHARS = 500
USER_AGENT = "tuneboard-webhooks/1"


@dataclass
class DeliveryReport:
    """What one pass did: deliveries acknowledged, to be retried, and given up."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def backoff_s(attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt."""
    return float(min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_CAP_S))


def signature(secret: str, body: bytes) -> str:
    """``X-Tuneboard-Signature``: the hex HMAC-SHA256 of the raw body with the hook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def render_body(delivery: Claimed) -> bytes:
    """The JSON document a receiver gets (the same bytes on every attempt)."""
    document = {
        "event": delivery.event,
        "event_id": delivery.event_id,
        "delivery_id": delivery.id,
        "team_id": delivery.team_id,
        "created_at": delivery.created_at.isoformat() + "Z",
        "data": delivery.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def deliver_due(database_url: str, now: datetime | None = None) -> DeliveryReport:
    """One pass: claim up to ``BATCH`` due deliveries, send them, record how each went."""
    now = now or utcnow()
    report = DeliveryReport()
    with session_scope(database_url) as session:
        claimed = repository.claim_due(
            session, now, limit=BATCH, until=now + timedelta(seconds=CLAIM_S)
        )
    if not claimed:
        return report
    with (
        httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client,
        ThreadPoolExecutor(max_workers=min(SENDERS, len(claimed))) as pool,
    ):
        outcomes = list(pool.map(lambda d: _send(client, d), claimed))
    with session_scope(database_url) as session:
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            _record(session, delivery, outcome, now, report)
    if report.retried or report.failed:
        log.info("webhooks: %s", report.as_dict())
    return report


def _send(client: httpx.Client, delivery: Claimed) -> _Outcome:
    body = render_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Tuneboard-Event": delivery.event,
        "X-Tuneboard-Delivery": str(delivery.id),
        "X-Tuneboard-Signature": signature(delivery.secret, body),
    }
    try:
        response = client.post(delivery.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return _Outcome(response.status_code, None)
    text = response.text.strip()[:ERROR_CHARS]
    error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
    return _Outcome(response.status_code, error)


def _record(
    session: Session, delivery: Claimed, outcome: _Outcome, now: datetime, report: DeliveryReport
) -> None:
    if outcome.ok:
        assert outcome.status is not None
        repository.mark_delivered(session, delivery.id, status=outcome.status, now=now)
        report.delivered += 1
        return
    attempts = delivery.attempts + 1
    retry_at = now + timedelta(seconds=backoff_s(attempts)) if attempts < MAX_ATTEMPTS else None
    repository.mark_attempt_failed(
        session, delivery.id, status=outcome.status, error=outcome.error or "",
        next_attempt_at=retry_at,
    )
    if retry_at is None:
        report.failed += 1
        log.warning("webhook delivery %d (%s) failed after %d attempts: %s",
                    delivery.id, delivery.event, attempts, outcome.error)
    else:
        report.retried += 1
