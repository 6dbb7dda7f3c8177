"""Fixtures for the worker tests: real Celery worker processes on a real broker and database.

Each database backend is paired with the broker it is deployed with: SQLite with the embedded
broker (kombu's SQLAlchemy transport on an SQLite file), PostgreSQL with Redis (a database
number of its own, flushed). Timings are shortened (heartbeat 0.5 s, grace period 4 s, reaper
every 1 s) so that lost workers are noticed within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

import tuneboard.queue as queue_module
from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.db.engine import is_sqlite
from tuneboard.db.models import Study, Trial, TrialMetric
from tuneboard.studies import service
from tuneboard.teams import Principal
from tuneboard.teams import service as teams

PLUGINS = Path(__file__).parent / "plugins"
REDIS_URL = os.environ.get("TUNEBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TIMINGS = {
    "TUNEBOARD_HEARTBEAT_INTERVAL_S": "0.5",
    "TUNEBOARD_GRACE_PERIOD_S": "4",
    "TUNEBOARD_REAPER_INTERVAL_S": "1",
}
READY_TIMEOUT_S = 90.0


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, message: str, interval: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group: the Celery main process and its pool."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=30)


@dataclass
class Stack:
    """A database, a broker and the processes started on them (all killed at teardown)."""

    db_url: str
    broker_url: str
    home: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **TIMINGS,
            "TUNEBOARD_DATABASE_URL": self.db_url,
            "TUNEBOARD_BROKER_URL": self.broker_url,
            "TUNEBOARD_HOME": str(self.home),
            "TUNEBOARD_ENVIRONMENT": "test",
            "PYTHONPATH": os.pathsep.join(
                [str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "OMP_NUM_THREADS": "1",
        }

    def _start(self, name: str, argv: list[str]) -> Process:
        log = self.home / "logs" / f"{name}-{uuid.uuid4().hex[:6]}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = Process(name=name, popen=popen, log=log)
        self.processes.append(proc)
        return proc

    def start_worker(self, name: str, *, queues: str = "default", concurrency: int = 1) -> Process:
        argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                "-P", "prefork", "-c", str(concurrency), "-Q", queues, "-n", f"{name}@%h",
                "-l", "INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"]
        return self._start(name, argv)

    def start_reaper(self) -> Process:
        return self._start("reaper", [sys.executable, "-m", "workers.reaper"])

    def wait_ready(self, *procs: Process) -> None:
        for proc in procs:
            wait_until(
                lambda p=proc: self._ready(p), timeout=READY_TIMEOUT_S,
                message=f"{proc.name} to start:\n{proc.tail()}", interval=0.3,
            )

    @staticmethod
    def _ready(proc: Process) -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
        return " ready." in text or "reaper: every" in text

    def logs(self) -> str:
        return "\n\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes)

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.popen.poll() is None:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=30)
        self.processes.clear()


def broker_for(db_url: str, home: Path) -> str:
    if is_sqlite(db_url):
        return f"sqla+sqlite:///{home / 'broker.db'}"
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture(scope="module")
def shared_stack(
    migrated_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Two workers consuming ``default`` and a reaper, shared by the tests of one module and
    backend; stopped after them, so that they never act on another module's trials."""
    home = tmp_path_factory.mktemp("stack")
    stack = Stack(db_url=migrated_db, broker_url=broker_for(migrated_db, home), home=home)
    try:
        procs = [stack.start_worker("w1"), stack.start_worker("w2"), stack.start_reaper()]
        stack.wait_ready(*procs)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def own_stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack for a test that starts (and kills) its own processes; no process runs yet."""
    home = tmp_path / "home"
    home.mkdir()
    stack = Stack(db_url=db_url, broker_url=broker_for(db_url, home), home=home)
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Stack], None]]:
    """Point this test process (the services, the Celery producer) at a stack."""

    def configure(stack: Stack) -> None:
        for key, value in stack.env.items():
            if key.startswith("TUNEBOARD_"):
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        monkeypatch.setattr(queue_module, "_client", None)

    yield configure
    get_settings.cache_clear()


@dataclass
class Studies:
    """Create studies and read their trials, as a member of a fresh team."""

    db_url: str
    principal: Principal

    def create(self, spec: dict[str, Any]) -> int:
        with session_scope(self.db_url) as session:
            study, _ = service.create_study(session, self.principal, spec)
            return study.id

    def cancel(self, study_id: int) -> None:
        with session_scope(self.db_url) as session:
            service.cancel_study(session, self.principal, study_id)

    def study(self, study_id: int) -> Study:
        with session_scope(self.db_url) as session:
            study = session.get(Study, study_id)
            assert study is not None
            session.expunge(study)
            return study

    def trials(self, study_id: int) -> list[Trial]:
        with session_scope(self.db_url) as session:
            trials = list(session.scalars(
                select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)
            ))
            session.expunge_all()
            return trials

    def metrics(self, trial_id: int) -> dict[int, dict[str, float | None]]:
        with session_scope(self.db_url) as session:
            rows = session.execute(
                select(TrialMetric.step, TrialMetric.name, TrialMetric.value)
                .where(TrialMetric.trial_id == trial_id)
            )
            out: dict[int, dict[str, float | None]] = {}
            for step, name, value in rows:
                out.setdefault(step, {})[name] = value
            return out

    def wait_finished(
        self, study_id: int, stack: Stack | None = None, timeout: float = 60
    ) -> Study:
        try:
            wait_until(
                lambda: self.study(study_id).state not in ("queued", "running"),
                timeout=timeout, message=f"study {study_id} to finish",
            )
        except AssertionError as err:
            states = [(t.number, t.state, t.error) for t in self.trials(study_id)]
            logs = stack.logs() if stack is not None else ""
            raise AssertionError(f"{err}\ntrials: {states}\n{logs}") from None
        return self.study(study_id)


@pytest.fixture
def studies(db_url: str) -> Studies:
    with session_scope(db_url) as session:
        _, raw = teams.create_team(session, f"team-{uuid.uuid4().hex[:8]}")
        principal = teams.authenticate(session, raw)
    return Studies(db_url=db_url, principal=principal)


def steps_spec(
    name: str = "steps",
    *,
    n_trials: int = 3,
    max_parallel: int = 1,
    queue: str = "default",
    max_retries: int = 2,
    sampler: str = "random",
    **fixed: Any,
) -> dict[str, Any]:
    """A study of the ``tb-steps`` test objective (see plugins/)."""
    return {
        "name": name,
        "objective": {"entrypoint": "tb-steps", "metric": "loss", "direction": "minimize"},
        "search_space": {"x": {"type": "float", "low": -5.0, "high": 5.0}},
        "fixed": {"steps": 3, "sleep_s": 0.0, **fixed},
        "sampler": {"type": sampler, "seed": 7},
        "budget": {"n_trials": n_trials, "max_parallel": max_parallel,
                   "max_retries": max_retries},
        "resources": {"queue": queue},
    }


@pytest.fixture
def local(
    db_url: str,
    tmp_path: Path,
    client_env: Callable[[Stack], None],
    monkeypatch: pytest.MonkeyPatch,
) -> Stack:
    """This process as the worker and reaper (no Celery process): the database, an embedded
    broker on a file of its own, the settings pointed at them, and the test objectives."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    home = tmp_path / "home"
    home.mkdir()
    stack = Stack(db_url=db_url, broker_url=f"sqla+sqlite:///{home / 'broker.db'}", home=home)
    client_env(stack)
    return stack
