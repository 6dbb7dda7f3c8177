"""The API process itself under fault: SIGKILLed between a study's commit and the publish of its
trials (the broker cut off by a partition, so the publish is in flight), and flooded by one key.
After each, the five invariants hold."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.api.conftest import API, make_team
from tests.api.test_ratelimit import assert_429
from tests.faults.conftest import RedisServer
from tests.faults.invariants import check_invariants
from tests.faults.partition import Partition
from tests.faults.stacks import FaultStack, fault_stack, member_studies
from tests.workers.conftest import Stack, steps_spec, wait_until
from tuneboard.db import session_scope
from tuneboard.db.models import Study


@pytest.fixture
def partition(redis_server: RedisServer) -> Iterator[Partition]:
    proxy = Partition(redis_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def stacks(
    pg_db: str,
    redis_server: RedisServer,
    partition: Partition,
    tmp_path: Path,
    client_env: Callable[[Stack], None],
) -> Iterator[tuple[FaultStack, FaultStack]]:
    """Workers and a reaper on the broker itself; the API on the broker behind ``partition``,
    holding a publish for up to 20 s (and counting requests in its own memory, so the rate
    limiter never waits on the broker)."""
    workers = fault_stack(pg_db, redis_server.url, tmp_path / "workers", client_env)
    api = fault_stack(pg_db, partition.url(), tmp_path / "api", lambda _: None,
                      broker_publish_timeout_s="20", broker_publish_backoff_s="0",
                      rate_limit_storage_url="memory://")
    try:
        yield workers, api
    finally:
        api.stop_all()
        workers.stop_all()


def _study_id(db_url: str, name: str) -> int | None:
    with session_scope(db_url) as session:
        return session.scalar(select(Study.id).where(Study.name == name))


def test_an_api_killed_between_commit_and_publish_loses_nothing(
    stacks: tuple[FaultStack, FaultStack], partition: Partition
) -> None:
    workers, api = stacks
    worker, reaper = workers.start_worker("w"), workers.start_reaper()
    process, url = api.start_api()
    workers.wait_ready(worker, reaper)
    member = make_team(api.db_url, "alpha").headers("member")
    spec = steps_spec(n_trials=1, max_retries=0, steps=2)
    with httpx.Client(base_url=url, timeout=60) as http:
        sent = http.post(f"{API}/studies", json={**spec, "name": "sent"}, headers=member)
        assert sent.status_code == 201, sent.text
        partition.cut()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(http.post, f"{API}/studies", json={**spec, "name": "killed"},
                                  headers=member)
            killed = wait_until(lambda: _study_id(api.db_url, "killed"), timeout=30,
                                message="the second study to be committed")
            time.sleep(0.3)  # into the publish, which the partition holds
            assert not pending.done(), "the request ended before its publish"
            process.kill(signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                pending.result(timeout=10)
    partition.heal()
    _, url = api.start_api()
    with httpx.Client(base_url=url, timeout=30) as http:
        for sid in (sent.json()["id"], killed):
            response = http.get(f"{API}/studies/{sid}", headers=member)
            assert response.status_code == 200, response.text
    # The killed API's publish never reached the broker: the reaper re-sent the waiting trial.
    studies = member_studies(api.db_url)
    for sid in (sent.json()["id"], killed):
        study = studies.wait_finished(sid, workers, timeout=60)
        assert study.state == "completed", workers.logs()
        assert [t.state for t in studies.trials(sid)] == ["complete"], workers.logs()
    assert re.search(r"'resent': [1-9]", reaper.log.read_text()), reaper.tail()
    check_invariants(api.db_url, [sent.json()["id"], killed])


BURST = 1_000
PER_KEY = 200


@pytest.fixture
def flooded(
    pg_db: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[FaultStack, str]]:
    """The API in a process of its own, counting in its broker's Redis, with a per-key limit of
    200 a minute (the per-address limit raised out of the way: it has tests of its own)."""
    stack = fault_stack(pg_db, redis_server.url, tmp_path / "api", lambda _: None,
                        rate_limit_per_key=f"{PER_KEY}/minute",
                        rate_limit_per_address="10000/minute")
    try:
        _, url = stack.start_api()
        yield stack, url
    finally:
        stack.stop_all()


def test_a_burst_from_one_key_is_refused_and_costs_no_one_else(
    flooded: tuple[FaultStack, str]
) -> None:
    stack, url = flooded
    team = make_team(stack.db_url, "alpha")
    flood, reader = team.headers("member"), team.headers("viewer")
    spec = steps_spec(n_trials=1)
    done = False
    seen: list[tuple[str, int, float]] = []  # (what, status, seconds) of the reader's calls

    def request(i: int) -> httpx.Response:
        if i % 10 == 0:  # one request in ten creates a study
            return http.post(f"{API}/studies", json={**spec, "name": f"burst-{i}"},
                             headers=flood)
        return http.get(f"{API}/studies", headers=flood)

    def read_meanwhile() -> None:
        while not done:
            for what, path, headers in (("healthz", "/healthz", {}),
                                        ("read", f"{API}/studies", reader)):
                start = time.monotonic()
                status = http.get(path, headers=headers).status_code
                seen.append((what, status, time.monotonic() - start))
            time.sleep(0.1)

    with httpx.Client(base_url=url, timeout=30,
                      limits=httpx.Limits(max_connections=32)) as http:
        with ThreadPoolExecutor(17) as pool:
            meanwhile = pool.submit(read_meanwhile)
            start = time.monotonic()
            responses = list(pool.map(request, range(BURST)))
            took = time.monotonic() - start
            done = True
            meanwhile.result()
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 201, 429}, sorted(set(statuses))
        # Within one window (a minute from the first request), exactly the limit is served.
        assert took < 60, f"the burst took {took:.0f}s, past the limit's window"
        served = [r for r in responses if r.status_code != 429]
        assert len(served) == PER_KEY, len(served)
        for response in responses:
            if response.status_code == 429:
                assert assert_429(response)["details"]["limit"] == f"{PER_KEY} per 1 minute"
        # Probes and another key's reads were answered all along, promptly.
        assert seen and all(status == 200 for _, status, _ in seen), seen
        slowest = max(seconds for _, _, seconds in seen)
        assert slowest < 5, f"a read took {slowest:.1f}s during the burst"
        # And after: the flood is still refused, everyone else served.
        assert http.get("/healthz").status_code == 200
        assert http.get(f"{API}/studies", headers=reader).status_code == 200
        assert_429(http.get(f"{API}/studies", headers=flood))
    acknowledged = [r.json()["id"] for r in responses if r.status_code == 201]
    assert acknowledged
    with session_scope(stack.db_url) as session:
        stored = list(session.scalars(select(Study.id)))
    assert sorted(stored) == sorted(acknowledged), "a refused create left a study behind"
    check_invariants(stack.db_url, acknowledged)
