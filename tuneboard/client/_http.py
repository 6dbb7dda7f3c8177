"""The HTTP client of the Tuneboard API: one method per route the CLI and scripts use.

``TuneboardClient.from_env()`` reads ``TUNEBOARD_URL`` (default http://127.0.0.1:8000) and
``TUNEBOARD_API_KEY`` (else the key file ``$TUNEBOARD_HOME/api-key`` that ``tuneboard up``
writes). Every error response becomes an ``ApiError`` carrying the API's code, message and
field-level details; a server that cannot be reached is a ``ConfigError``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from tuneboard.client._errors import ApiError, ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"

log = logging.getLogger("tuneboard.client")


@dataclass(frozen=True)
class Retry:
    """How often a request is tried (``attempts``, the first included) while the server cannot
    be reached or answers one of ``statuses``, and the waits between: from ``first_s``, doubling
    up to ``max_s``, at least the answer's ``Retry-After`` (at most ``retry_after_max_s``)."""

    attempts: int
    statuses: frozenset[int] = frozenset({503})
    first_s: float = 0.25
    max_s: float = 8.0
    retry_after_max_s: float = 30.0


ONCE = Retry(attempts=1)


def send(
    http: httpx.Client, method: str, path: str, *, retry: Retry, safe: bool, **kwargs: Any
) -> httpx.Response:
    """``http.request(method, path, **kwargs)``, tried again as ``retry`` says. A request that
    may have reached the server (the connection broke once it was sent) is tried again only when
    ``safe``: sending it twice changes nothing. No answer at all is a ``ConfigError``; an error
    answer is returned, for the caller to turn into its own exception."""
    url = str(http.base_url).rstrip("/")
    delay = retry.first_s
    for attempt in range(1, retry.attempts + 1):
        last = attempt == retry.attempts
        try:
            response = http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            if last:
                raise ConfigError(f"cannot reach the API at {url}: {err}") from err
            reason = str(err)
        except httpx.TransportError as err:
            if last or not safe:
                raise ConfigError(f"lost the connection to {url}: {err}") from err
            reason = str(err)
        else:
            if response.status_code not in retry.statuses or last:
                return response
            delay = max(delay, min(_retry_after(response), retry.retry_after_max_s))
            reason = str(response.status_code)
        log.warning("%s %s: %s; retrying in %.1fs", method, path, reason, delay)
        time.sleep(delay * (1 + 0.1 * random.random()))
        delay = min(delay * 2, retry.max_s)
    raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float:
    """The answer's ``Retry-After`` in seconds (0 when it has none, or gives a date)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return 0.0


def api_key_from_env() -> str | None:
    key = os.environ.get("TUNEBOARD_API_KEY", "").strip()
    if key:
        return key
    path = Path(os.environ.get("TUNEBOARD_HOME", ".tuneboard")) / "api-key"
    if path.is_file():
        return path.read_text().strip() or None
    return None


class TuneboardClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout)
        self._http.headers.update(headers)

    @classmethod
    def from_env(cls) -> TuneboardClient:
        key = api_key_from_env()
        if key is None:
            raise ConfigError(
                "no API key: set TUNEBOARD_API_KEY (or run `tuneboard up`, which writes "
                "$TUNEBOARD_HOME/api-key)"
            )
        return cls(os.environ.get("TUNEBOARD_URL", DEFAULT_URL), key)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TuneboardClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ---

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return _decode(send(self._http, method, API_PREFIX + path, retry=ONCE, safe=False,
                            **kwargs))

    def _pages(self, path: str, params: dict[str, Any], limit: int | None) -> Iterator[Any]:
        """Every item of a list (at most ``limit`` items)."""
        items = paginate(lambda query: self._request("GET", path, params=query), params)
        for given, item in enumerate(items):
            if limit is not None and given >= limit:
                return
            yield item

    # --- studies ---

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._request("POST", "/studies", json=spec, headers=headers)
        return result

    def study(self, study_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/studies/{study_id}")
        return result

    def studies(
        self,
        *,
        state: str | None = None,
        name: str | None = None,
        standard: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        params = {"state": state, "name": name, "standard": standard,
                  "limit": min(limit, 500) if limit else 100}
        return self._pages("/studies", params, limit)

    def cancel(self, study_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/studies/{study_id}/cancel")
        return result

    def trials(self, study_id: int, *, state: str | None = None) -> Iterator[dict[str, Any]]:
        return self._pages(f"/studies/{study_id}/trials", {"state": state, "limit": 500}, None)

    def trial(self, study_id: int, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/studies/{study_id}/trials/{number}")
        return result

    def export(self, study_id: int, out: BinaryIO, *, fmt: str = "csv") -> int:
        """Write the study's trials as CSV or Parquet (``fmt``) to ``out``, as they arrive;
        returns the number of bytes written."""
        path = f"{API_PREFIX}/studies/{study_id}/trials/export"
        written = 0
        try:
            with self._http.stream("GET", path, params={"format": fmt}) as response:
                if response.status_code >= 400:
                    response.read()
                    _decode(response)
                for chunk in response.iter_bytes():
                    written += out.write(chunk)
        except httpx.TransportError as err:
            raise ConfigError(f"cannot reach the API at {self.url}: {err}") from err
        return written

    def notes(
        self, study_id: int, *, trial: int | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Notes newest first: the study's (on it and on its trials), or one trial's."""
        path = f"/studies/{study_id}" + (f"/trials/{trial}" if trial is not None else "")
        params = {"limit": min(limit, 500) if limit else 100}
        return self._pages(path + "/notes", params, limit)

    def add_note(self, study_id: int, body: str, *, trial: int | None = None) -> dict[str, Any]:
        path = f"/studies/{study_id}" + (f"/trials/{trial}" if trial is not None else "")
        result: dict[str, Any] = self._request("POST", path + "/notes", json={"body": body})
        return result

    def leaderboard(
        self, study_id: int, *, limit: int = 10, accepted_only: bool = False
    ) -> dict[str, Any]:
        params = {"limit": limit, "accepted_only": accepted_only}
        result: dict[str, Any] = self._request(
            "GET", f"/studies/{study_id}/leaderboard", params=params
        )
        return result

    def team_leaderboard(
        self,
        *,
        limit: int = 20,
        metric: str | None = None,
        dataset: str | None = None,
        standard: str | None = None,
        accepted_only: bool = False,
    ) -> list[dict[str, Any]]:
        params = {"metric": metric, "dataset": dataset, "standard": standard,
                  "accepted_only": accepted_only, "limit": min(limit, 500)}
        return list(self._pages("/leaderboard", params, limit))

    def events(self, study_id: int, *, max_s: float = 3600) -> Iterator[tuple[str, Any]]:
        """The study's server-sent events as (event, data) until the server ends the stream."""
        path = f"{API_PREFIX}/studies/{study_id}/events"
        try:
            with self._http.stream(
                "GET", path, params={"max_s": max_s}, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _decode(response)
                yield from _parse_sse(response.iter_lines())
        except httpx.TransportError as err:
            raise ConfigError(f"lost the event stream from {self.url}: {err}") from err

    # --- standards ---

    def standards(self) -> Iterator[dict[str, Any]]:
        """The team's standards, each at its newest version."""
        return self._pages("/standards", {"limit": 200}, None)

    def standard(self, name: str, version: int | None = None) -> dict[str, Any]:
        path = f"/standards/{quote(name, safe='')}"
        if version is not None:
            path += f"/versions/{version}"
        result: dict[str, Any] = self._request("GET", path)
        return result

    def publish_standard(self, document: dict[str, Any]) -> dict[str, Any]:
        """Version 1 of a new standard, or the next version of an existing one."""
        try:
            result: dict[str, Any] = self._request("POST", "/standards", json=document)
        except ApiError as err:
            if err.code != "conflict" or not isinstance(document.get("name"), str):
                raise
            path = f"/standards/{quote(document['name'], safe='')}/versions"
            result = self._request("POST", path, json=document)
        return result

    def diff_standard(self, name: str, from_version: int, to_version: int) -> dict[str, Any]:
        params = {"from": from_version, "to": to_version}
        path = f"/standards/{quote(name, safe='')}/diff"
        result: dict[str, Any] = self._request("GET", path, params=params)
        return result

    def check_standard(self, standard: str, spec: dict[str, Any]) -> dict[str, Any]:
        """How a study spec fares against a standard (``name`` or ``name@N``); creates nothing."""
        body = {"standard": standard, "spec": spec}
        result: dict[str, Any] = self._request("POST", "/standards/check", json=body)
        return result


def paginate(fetch: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> Iterator[Any]:
    """Every item of a list, following ``next_cursor``; a page is read when its items are
    taken. ``fetch(query)`` answers one page, ``{"items", "next_cursor"}``, for the query of
    ``params`` (those not None) and the previous page's cursor."""
    query = {k: v for k, v in params.items() if v is not None}
    while True:
        page = fetch(query)
        yield from page["items"]
        if not page.get("next_cursor"):
            return
        query["cursor"] = page["next_cursor"]


def _decode(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise ApiError(response.status_code, str(error.get("code", "error")),
                       str(error.get("message", "")), error.get("details"))
    raise ApiError(response.status_code, "error", response.text[:500] or response.reason_phrase)


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        yield event, json.loads("\n".join(data))
