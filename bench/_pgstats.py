"""Counting what a process asks of its database, for the benchmarks.

Two views of the same work:

- PostgreSQL's own: ``pg_stat_database`` of one database (transactions committed and rolled
  back, rows read and written), read before and after a run. It counts every transaction,
  including those SQLAlchemy does not see: ``pool_pre_ping``'s ``SELECT 1`` at each checkout
  runs in autocommit, one server transaction of its own. A backend reports its counts when it
  ends, or at most once a second while busy and within ten seconds of going idle, so
  :func:`settled` waits for the numbers to stop moving.
- The process's own, by code path: :func:`install` counts, through SQLAlchemy's engine and pool
  events, each statement, each transaction (begin), each checkout (one ping where the engine
  pings) and commits and rollbacks, under the label of the innermost frame of the caller's
  code (``runner._claim``, ``reporting.ReportWriter._write``; for Optuna the API call:
  ``report``, ``should_prune``, ``ask``, ...). Every half second and at exit it writes them to
  ``$TB_PGSTATS_DIR/<pid>.json``, so a process killed at the end loses at most the last half
  second. ``pg_stat_statements`` would count statements on the server, but it needs
  ``shared_preload_libraries`` and a restart of the server, which a benchmark on a shared server
  must not do.

``python bench/_pgstats.py -m module args...`` runs a module (``celery``, ``uvicorn``) with the
counters installed; forked children (Celery's pool) count afresh.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

import sqlalchemy as sa

ENV = "TB_PGSTATS_DIR"
ROOT = Path(__file__).resolve().parents[1]
KINDS = ("statements", "transactions", "checkouts", "commits", "rollbacks")
DB_FIELDS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted",
             "tup_updated", "tup_deleted")

# Optuna's API calls a trial's code makes, innermost first wins.
_OPTUNA_CALLS = frozenset({
    "report", "should_prune", "_suggest", "ask", "_tell_with_warning", "create_study",
    "load_study", "_run_trial",
})
_SKIPPED = ("outage.py", "_pgstats.py")

_counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
_lock = threading.Lock()
_labels: dict[str, str | None] = {}
_installed = False


def _file_tag(filename: str) -> str | None:
    """'optuna' for Optuna's own code, the module's name for the workers' and the API's, None
    for anything else (SQLAlchemy, storages, repositories: below the code path)."""
    tag = _labels.get(filename, "")
    if tag != "":
        return tag
    path = Path(filename)
    tag = None
    if "optuna" in path.parts and "storages" not in path.parts:
        tag = "optuna"
    elif path.name not in _SKIPPED and path.is_relative_to(ROOT):
        top = path.relative_to(ROOT).parts[0]
        tag = "api" if top == "api" else path.stem if top == "workers" else None
    _labels[filename] = tag
    return tag


def _label() -> str:
    """The innermost worker (or API) function on the stack, with the innermost Optuna call
    below it: ``reporting.TrialReporter.__call__ > should_prune``; Optuna's call alone in a
    process that runs ``study.optimize``."""
    frame: FrameType | None = sys._getframe(2)
    optuna_call = None
    while frame is not None:
        code = frame.f_code
        tag = _file_tag(code.co_filename)
        if tag == "optuna":
            if optuna_call is None and code.co_name in _OPTUNA_CALLS:
                optuna_call = code.co_name
        elif tag == "api":
            return "api"
        elif tag is not None:
            return f"{tag}.{code.co_qualname}" + (f" > {optuna_call}" if optuna_call else "")
        frame = frame.f_back
    return f"optuna.{optuna_call}" if optuna_call else "other"


def _count(kind: str) -> None:
    label = _label()
    with _lock:
        _counts[kind][label] += 1


def _dump() -> None:
    directory = os.environ.get(ENV)
    if not directory:
        return
    with _lock:
        data = {"pid": os.getpid(), "argv": sys.argv[:3],
                **{kind: dict(counter) for kind, counter in _counts.items()}}
    path = Path(directory) / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _dump_every(interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        _dump()


def _start_dumping() -> None:
    threading.Thread(target=_dump_every, args=(0.5,), daemon=True, name="pgstats").start()


def _reset_in_child() -> None:
    for counter in _counts.values():
        counter.clear()
    _start_dumping()


def install() -> None:
    """Count this process's database work (and that of children it forks) by code path."""
    global _installed
    if _installed:
        return
    _installed = True
    sa.event.listen(sa.engine.Engine, "before_cursor_execute",
                    lambda *_a, **_k: _count("statements"))
    sa.event.listen(sa.engine.Engine, "begin", lambda *_a: _count("transactions"))
    sa.event.listen(sa.engine.Engine, "commit", lambda *_a: _count("commits"))
    sa.event.listen(sa.engine.Engine, "rollback", lambda *_a: _count("rollbacks"))
    sa.event.listen(sa.pool.Pool, "checkout", lambda *_a: _count("checkouts"))
    os.register_at_fork(after_in_child=_reset_in_child)
    atexit.register(_dump)
    _start_dumping()


def collect(directory: Path, pids: Iterable[int] | None = None) -> dict[str, Counter[str]]:
    """The counts the processes wrote to ``directory`` (those of ``pids``, or all), summed."""
    wanted = None if pids is None else set(pids)
    total: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        if wanted is not None and data["pid"] not in wanted:
            continue
        for kind in KINDS:
            total[kind].update(data.get(kind, {}))
    return total


# --- PostgreSQL's view ---------------------------------------------------------------------


def database_stats(admin_url: str, database: str) -> dict[str, int]:
    query = sa.text(
        f"SELECT {', '.join(DB_FIELDS)} FROM pg_stat_database WHERE datname = :name"
    )
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(query, {"name": database}).one()
    finally:
        engine.dispose()
    return dict(zip(DB_FIELDS, (int(v or 0) for v in row), strict=True))


def settled(admin_url: str, database: str, *, quiet_s: float = 1.5,
            limit_s: float = 15.0) -> dict[str, int]:
    """``database_stats`` once they stopped changing for ``quiet_s`` (every backend that did
    work has reported it), or after ``limit_s``. Reading them is itself a transaction, on
    another database."""
    deadline = time.monotonic() + limit_s
    last = database_stats(admin_url, database)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = database_stats(admin_url, database)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def transactions(stats: dict[str, int]) -> int:
    return stats["xact_commit"] + stats["xact_rollback"]


def pg_stat_statements_available(admin_url: str) -> bool:
    """True where the server preloads ``pg_stat_statements`` (needed before it can count)."""
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            loaded = conn.exec_driver_sql("SHOW shared_preload_libraries").scalar_one()
    finally:
        engine.dispose()
    return "pg_stat_statements" in str(loaded)


# --- CPU of process trees ------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system, with reaped children) of every process in group ``pgid``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the command: state ppid pgrp ... utime(12) stime(13) cutime(14) cstime(15)
        if int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15]) / _TICK
    return total


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL process on this machine (server and backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        if name.startswith("postgres"):
            fields = raw.rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:13]) / _TICK
    return total


def _main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "-m":
        raise SystemExit("usage: python bench/_pgstats.py -m module [args...]")
    install()
    sys.path[0] = str(ROOT)  # as ``python -m`` from the repository root
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


def summary(counts: dict[str, Counter[str]], per: float) -> list[tuple[str, dict[str, float]]]:
    """(label, {kind: count / per}) by transactions then statements, most first."""
    labels = set().union(*(counts[kind] for kind in KINDS))
    rows = [(label, {kind: counts[kind][label] / per for kind in KINDS}) for label in labels]
    return sorted(rows, key=lambda r: (-r[1]["transactions"], -r[1]["statements"], r[0]))


if __name__ == "__main__":
    _main(sys.argv[1:])


__all__: list[str] = [
    "collect", "database_stats", "delta", "group_cpu_s", "install",
    "pg_stat_statements_available", "postgres_cpu_s", "settled", "summary", "transactions",
]
