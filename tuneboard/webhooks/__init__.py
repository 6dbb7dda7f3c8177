"""Webhooks: a team's receivers for the facts it cares about, fed from a database outbox.

``emit`` is called by the domain where a fact happens (a study settles, a trial becomes the best
accepted one, a standard version is published or deprecated, an override is recorded), in that
fact's transaction. ``deliver_due`` sends what is owed; the reaper runs it every pass. This
package sits low in the core (it knows the database, the audit log and the vocabulary, nothing
of studies or standards), so every domain can emit without an import cycle.
"""

from tuneboard.webhooks import payloads
from tuneboard.webhooks.delivery import DeliveryReport, deliver_due, render_body, signature
from tuneboard.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookEvent,
    WebhookOut,
)
from tuneboard.webhooks.service import (
    create_webhook,
    delete_webhook,
    emit,
    get_webhook,
    list_deliveries,
    list_webhooks,
)

__all__ = [
    "DeliveryOut",
    "DeliveryReport",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookEvent",
    "WebhookOut",
    "create_webhook",
    "delete_webhook",
    "deliver_due",
    "emit",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "payloads",
    "render_body",
    "signature",
]
