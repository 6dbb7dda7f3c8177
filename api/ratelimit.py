"""Rate limits and per-team caps: 429 with ``Retry-After``, in the one error shape.

Three rate limits, each in the ``limits`` notation ("600/minute", several joined by ";"):

- ``TUNEBOARD_RATE_LIMIT_PER_ADDRESS``: every ``/api/`` request from a client address, counted
  before authentication, so a flood costs no database work;
- ``TUNEBOARD_RATE_LIMIT_PER_KEY``: every request made with an API key, once the key is known;
- ``TUNEBOARD_RATE_LIMIT_AUTH_FAILURES``: wrong or revoked keys from an address. Past it the
  address is refused any key, right or wrong, until the window ends: guessing keys is slow, and
  a 429 says nothing about whether the guess was right.

The counters live in ``TUNEBOARD_RATE_LIMIT_STORAGE_URL``: ``memory://`` (one process: the
embedded default) or ``redis://...``, shared by every API process (the default when the broker
is Redis). A counter store that fails or does not answer within the broker timeout is skipped
for ``TUNEBOARD_BROKER_PUBLISH_BACKOFF_S``, counting in this process' memory meanwhile: the
limiter must never be what makes the API wait.

Per-team caps (``TUNEBOARD_MAX_RUNNING_TRIALS_PER_TEAM``, ``TUNEBOARD_MAX_STUDIES_PER_HOUR``;
0 turns one off) are read from the database, and refuse new work while the team is at its cap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.orm import Session

from tuneboard.config import Settings
from tuneboard.db.base import utcnow
from tuneboard.errors import TooManyRequests
from tuneboard.teams import repository as teams

log = logging.getLogger(__name__)

# How soon a team at its running-trials cap is told to try again.
RUNNING_CAP_RETRY_S = 30
STUDIES_WINDOW = timedelta(hours=1)


def client_address(request: Request) -> str:
    """The peer's address. Behind a proxy, run uvicorn with ``--proxy-headers`` (and
    ``--forwarded-allow-ips``) so that this is the client's, not the proxy's."""
    return request.client.host if request.client else "unknown"


def _shared_storage(settings: Settings) -> Storage:
    url = settings.rate_limit_storage_url
    options: dict[str, float | bool] = {}
    if url.startswith(("redis://", "rediss://")):
        timeout = settings.broker_publish_timeout_s
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                   "wrap_exceptions": True}
    storage = storage_from_string(url, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"TUNEBOARD_RATE_LIMIT_STORAGE_URL={url!r} is an async storage")
    return storage


class RateLimiter:
    """The app's three rate limits over one counter store (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.per_key = parse_many(settings.rate_limit_per_key)
        self.per_address = parse_many(settings.rate_limit_per_address)
        self.auth_failures = parse_many(settings.rate_limit_auth_failures)
        self._shared = FixedWindowRateLimiter(_shared_storage(settings))
        self._local = FixedWindowRateLimiter(MemoryStorage())
        self._backoff_s = settings.broker_publish_backoff_s
        self._shared_down_until = 0.0
        self._lock = threading.Lock()

    def _limiter(self) -> FixedWindowRateLimiter:
        return self._local if time.monotonic() < self._shared_down_until else self._shared

    def _degrade(self, err: Exception) -> FixedWindowRateLimiter:
        with self._lock:
            self._shared_down_until = time.monotonic() + self._backoff_s
        log.warning("rate-limit store unavailable (%s: %s); counting in memory for %.0fs",
                    type(err).__name__, err, self._backoff_s)
        return self._local

    def _count(
        self,
        op: Callable[..., bool],
        limiter: FixedWindowRateLimiter,
        item: RateLimitItem,
        identifiers: tuple[str, ...],
    ) -> tuple[FixedWindowRateLimiter, bool]:
        """``op`` (``hit`` or ``test``) on ``limiter``, or on the local one once it fails."""
        try:
            return limiter, op(limiter, item, *identifiers)
        except Exception as err:  # a failing counter store must not fail the request
            limiter = self._degrade(err)
            return limiter, op(limiter, item, *identifiers)

    def _hit(self, items: list[RateLimitItem], *identifiers: str) -> None:
        limiter = self._limiter()
        for item in items:
            limiter, allowed = self._count(FixedWindowRateLimiter.hit, limiter, item, identifiers)
            if not allowed:
                raise self._refusal(limiter, item, identifiers, "too many requests")

    def _refusal(
        self,
        limiter: FixedWindowRateLimiter,
        item: RateLimitItem,
        identifiers: tuple[str, ...],
        what: str,
    ) -> TooManyRequests:
        try:
            reset = limiter.get_window_stats(item, *identifiers).reset_time
        except Exception:  # the window's end is only advice
            reset = time.time() + item.get_expiry()
        retry_after = math.ceil(reset - time.time())
        return TooManyRequests(
            f"{what}: the limit is {item}; retry in {max(1, retry_after)}s",
            retry_after,
            {"limit": str(item), "retry_after_s": max(1, retry_after)},
        )

    def hit_address(self, address: str) -> None:
        self._hit(self.per_address, "address", address)

    def hit_key(self, key_id: int) -> None:
        self._hit(self.per_key, "key", str(key_id))

    def check_not_locked_out(self, address: str) -> None:
        """429 while ``address`` is past its failed-authentication limit."""
        limiter, identifiers = self._limiter(), ("auth-failure", address)
        for item in self.auth_failures:
            limiter, allowed = self._count(FixedWindowRateLimiter.test, limiter, item, identifiers)
            if not allowed:
                raise self._refusal(limiter, item, identifiers,
                                    "too many failed authentications from this address")

    def record_auth_failure(self, address: str) -> None:
        limiter, identifiers = self._limiter(), ("auth-failure", address)
        for item in self.auth_failures:
            limiter, _ = self._count(FixedWindowRateLimiter.hit, limiter, item, identifiers)


def limit_address(request: Request) -> None:
    """App-wide dependency: the per-address limit on ``/api/`` routes (probes, metrics and the
    UI's pages are not limited)."""
    if request.url.path.startswith("/api/"):
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.hit_address(client_address(request))


def check_running_trials_cap(session: Session, settings: Settings, team_id: int) -> None:
    """429 while the team has ``max_running_trials_per_team`` trials running."""
    cap = settings.max_running_trials_per_team
    if not cap:
        return
    running = teams.count_running_trials(session, team_id)
    if running >= cap:
        raise TooManyRequests(
            f"the team has {running} trials running, its cap is {cap}; "
            "new work is accepted once some finish",
            RUNNING_CAP_RETRY_S,
            {"cap": "max_running_trials_per_team", "limit": cap, "running": running,
             "retry_after_s": RUNNING_CAP_RETRY_S},
        )


def check_studies_per_hour_cap(session: Session, settings: Settings, team_id: int) -> None:
    """429 once the team has created ``max_studies_per_hour`` studies in the past hour."""
    cap = settings.max_studies_per_hour
    if not cap:
        return
    now = utcnow()
    created, first = teams.studies_created_since(session, team_id, now - STUDIES_WINDOW)
    if created >= cap:
        retry_after = max(1, math.ceil(((first or now) + STUDIES_WINDOW - now).total_seconds()))
        raise TooManyRequests(
            f"the team created {created} studies in the past hour, its cap is {cap}",
            retry_after,
            {"cap": "max_studies_per_hour", "limit": cap, "created": created,
             "retry_after_s": retry_after},
        )
