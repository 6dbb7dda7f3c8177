"""Tuneboard behind PgBouncer in transaction mode: a PgBouncer of the test's own (Debian's
``pgbouncer``, on a free port) in front of the shared PostgreSQL. The migrations run against
PostgreSQL directly, as a deployment runs them; the API and a real Celery worker go through
PgBouncer with ``TUNEBOARD_DB_PGBOUNCER=true``, which stops psycopg preparing statements: a
server connection serves many clients in turn, and a statement one client prepared on it is
missing for, or collides with, the next (PgBouncer before 1.21 does not track them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from api.main import create_app
from tests.api.conftest import API, make_team
from tests.db_support import POSTGRES_ADMIN_URL, create_database, drop_database
from tests.faults.conftest import RedisServer
from tests.faults.stacks import fault_stack
from tests.live_server import free_port
from tests.workers.conftest import Stack, steps_spec, wait_until
from tuneboard.config import get_settings
from tuneboard.db import create_db_engine

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None
)
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed")


@dataclass
class PgBouncer:
    """A pgbouncer process (run as ``postgres`` when the tests run as root: it refuses root) in
    transaction mode, trusting every client, in front of the shared PostgreSQL. The database
    ``<name>_single`` is ``<name>`` through a pool of one server connection."""

    directory: Path
    database: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str | None = None) -> str:
        user = urlsplit(POSTGRES_ADMIN_URL).username or "postgres"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database or self.database}"

    def start(self) -> None:
        assert PGBOUNCER is not None
        server = urlsplit(POSTGRES_ADMIN_URL)
        user = server.username or "postgres"
        target = f"host={server.hostname} port={server.port or 5432} dbname={self.database}"
        (self.directory / "users.txt").write_text(f'"{user}" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text("\n".join([
            "[databases]",
            f"{self.database} = {target}",
            f"{self.database}_single = {target} pool_size=1",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.directory / 'users.txt'}",
            "pool_mode = transaction",
            "default_pool_size = 8",
            "max_client_conn = 200",
            "ignore_startup_parameters = extra_float_digits",
            f"logfile = {self.directory / 'pgbouncer.log'}",
            "",
        ]))
        command = [PGBOUNCER, str(config)]
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            for path in self.directory.iterdir():
                shutil.chown(path, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)
        probe = sa.create_engine(self.url(), poolclass=sa.NullPool)
        deadline = time.monotonic() + 15
        while True:
            try:
                with probe.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                break
            except sa.exc.OperationalError:
                assert self.process.poll() is None, f"pgbouncer exited:\n{self.log()}"
                assert time.monotonic() < deadline, f"pgbouncer did not start:\n{self.log()}"
                time.sleep(0.1)
        probe.dispose()

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def bouncer(tmp_path: Path) -> Iterator[PgBouncer]:
    """A fresh database, migrated directly on PostgreSQL, and a PgBouncer in front of it."""
    direct = create_database("postgresql", tmp_path)
    directory = Path(f"/tmp/tb-pgbouncer-{uuid.uuid4().hex[:8]}")
    directory.mkdir()
    pgbouncer = PgBouncer(directory, direct.rsplit("/", 1)[1], free_port())
    try:
        pgbouncer.start()
        yield pgbouncer
    finally:
        pgbouncer.stop()
        shutil.rmtree(directory, ignore_errors=True)
        drop_database(direct)


def _repeat_on_two_clients(url: str) -> None:
    """Two clients, one server connection: each runs the same statement often enough for psycopg
    to prepare it (its fifth run)."""
    engines = [create_db_engine(url, poolclass=sa.NullPool) for _ in range(2)]
    try:
        for engine in engines:
            with engine.connect() as conn:
                for i in range(8):
                    conn.execute(sa.text("SELECT count(*) FROM teams WHERE id > :i"), {"i": i})
                    conn.commit()
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize("behind_pgbouncer", [False, True])
def test_prepared_statements_are_off_behind_pgbouncer(
    bouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch, behind_pgbouncer: bool
) -> None:
    monkeypatch.setenv("TUNEBOARD_DB_PGBOUNCER", str(behind_pgbouncer).lower())
    get_settings.cache_clear()
    try:
        single = bouncer.url(f"{bouncer.database}_single")
        if behind_pgbouncer:
            _repeat_on_two_clients(single)
        else:
            with pytest.raises(sa.exc.ProgrammingError, match="prepared statement"):
                _repeat_on_two_clients(single)
    finally:
        get_settings.cache_clear()


def test_a_study_runs_through_pgbouncer(
    bouncer: PgBouncer,
    tmp_path: Path,
    redis_server: RedisServer,
    serve: Callable[[FastAPI], str],
    client_env: Callable[[Stack], None],
) -> None:
    url = bouncer.url()
    stack = fault_stack(url, redis_server.url, tmp_path / "home", client_env,
                        db_pgbouncer="true")
    try:
        worker = stack.start_worker("bounced", queues="default", concurrency=2)
        stack.wait_ready(worker, stack.start_reaper())
        api = serve(create_app(get_settings()))
        team = make_team(url, "bounced")
        spec = steps_spec("through-pgbouncer", n_trials=6, max_parallel=2, steps=8)
        with httpx.Client(base_url=api, timeout=30) as http:
            created = http.post(f"{API}/studies", json=spec, headers=team.headers("member"))
            assert created.status_code == 201, created.text
            study_id = created.json()["id"]

            def finished() -> dict[str, object] | None:
                body: dict[str, object] = http.get(
                    f"{API}/studies/{study_id}", headers=team.headers("member")
                ).json()
                return body if body["state"] not in ("queued", "running") else None

            study = wait_until(finished, timeout=120, message="the study to finish",
                               interval=0.5)
            assert study["state"] == "completed", (study, stack.logs(), bouncer.log())
            trials = http.get(f"{API}/studies/{study_id}/trials",
                              headers=team.headers("member")).json()["items"]
        assert [t["state"] for t in trials] == ["complete"] * 6, trials
        assert all(t["epochs_run"] == 8 for t in trials)
        assert "prepared statement" not in stack.logs()
    finally:
        stack.stop_all()
