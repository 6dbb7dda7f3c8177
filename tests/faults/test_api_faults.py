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
