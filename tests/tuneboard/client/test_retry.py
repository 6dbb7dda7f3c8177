"""The client's one retrying request path against a real local HTTP server: busy answers are
tried again (after at least their Retry-After), a server that cannot be reached is a
ConfigError once the attempts are spent, and a request that may have reached the server is
sent again only when that is harmless."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.live_server import free_port
from tuneboard.client import ConfigError
from tuneboard.client._http import Retry, send

FAST = Retry(attempts=3, first_s=0.01, max_s=0.05)


class Busy:
    """Answers 503 (with ``Retry-After``) to the first ``busy`` requests, then 200."""

    def __init__(self, busy: int, retry_after: str | None = None) -> None:
        self.busy, self.retry_after, self.seen = busy, retry_after, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen += 1
                status = 503 if outer.seen <= outer.busy else 200
                self.send_response(status)
                if status == 503 and outer.retry_after is not None:
                    self.send_header("Retry-After", outer.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def busy(request: pytest.FixtureRequest) -> Iterator[Busy]:
    server = Busy(*request.param)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("busy", [(2, None)], indirect=True)
def test_busy_answers_are_tried_again(busy: Busy) -> None:
    with httpx.Client(base_url=busy.url) as http:
        response = send(http, "GET", "/", retry=FAST, safe=True)
    assert (response.status_code, busy.seen) == (200, 3)


@pytest.mark.parametrize("busy", [(5, None)], indirect=True)
def test_the_last_busy_answer_is_returned_once_the_attempts_are_spent(busy: Busy) -> None:
    with httpx.Client(base_url=busy.url) as http:
        response = send(http, "GET", "/", retry=FAST, safe=True)
    assert (response.status_code, busy.seen) == (503, 3)


@pytest.mark.parametrize("busy", [(1, "1")], indirect=True)
def test_a_retry_waits_for_retry_after(busy: Busy) -> None:
    start = time.monotonic()
    with httpx.Client(base_url=busy.url) as http:
        assert send(http, "GET", "/", retry=FAST, safe=True).status_code == 200
    assert time.monotonic() - start >= 1.0


def test_an_unreachable_server_is_a_config_error_after_every_attempt() -> None:
    unreachable = httpx.Client(base_url=f"http://127.0.0.1:{free_port()}")
    with unreachable as http, pytest.raises(ConfigError, match="cannot reach the API"):
        send(http, "GET", "/", retry=FAST, safe=True)


@pytest.fixture
def hangs_up() -> Iterator[tuple[str, list[int]]]:
    """A server that reads each request and closes the connection without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(65536)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()


@pytest.mark.parametrize(("safe", "sent"), [(False, 1), (True, 3)])
def test_a_request_that_may_have_arrived_is_repeated_only_when_safe(
    hangs_up: tuple[str, list[int]], safe: bool, sent: int
) -> None:
    url, accepted = hangs_up
    lost = pytest.raises(ConfigError, match="lost the connection")
    with httpx.Client(base_url=url) as http, lost:
        send(http, "POST", "/", retry=FAST, safe=safe, json={})
    assert len(accepted) == sent
