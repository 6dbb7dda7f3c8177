"""A study's trials as one table, for CSV or Parquet: one row per trial, by number.

Columns, in order: ``number``, ``state``, one column per objective named by its metric (the
trial's value as stored: a pruned trial carries its last intermediate value, as in Optuna),
``param_<name>`` for every parameter any trial has (its external value: ``"adam"``, not a
choice index), ``metric_<name>`` for every per-epoch metric any trial reported (the last value
it reported), then ``epochs_run``, ``attempt``,
``retry_of``, ``accepted``, ``device``, ``datetime_start``, ``datetime_complete`` (UTC).
Non-finite numbers are empty (null in Parquet).

The table is read in one short transaction (two queries) and then encoded: CSV is produced in
chunks as the response is sent, Parquet is built whole with pyarrow.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from tuneboard.db.models import Study
from tuneboard.schemas import finite_or_none
from tuneboard.studies import export_repository as repo
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import spec_metrics, trial_params

__all__ = ["ExportFormat", "TrialTable", "csv_chunks", "filename", "parquet_bytes", "trial_table"]

CSV_ROWS_PER_CHUNK = 500
LEADING = ("number", "state")
TRAILING = (
    "epochs_run", "attempt", "retry_of", "accepted", "device", "datetime_start",
    "datetime_complete",
)


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        if self is ExportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.apache.parquet"


@dataclass(frozen=True)
class TrialTable:
    """Column names and one row per trial; each column's Arrow type (None: inferred)."""

    columns: list[str]
    types: list[pa.DataType | None]
    rows: list[list[Any]]


def _value_columns(study: Study) -> list[str]:
    # A metric named like a fixed column keeps the fixed one unambiguous.
    reserved = set(LEADING) | set(TRAILING)
    return [f"value_{m}" if m in reserved else m for m in spec_metrics(study)]


def trial_table(session: Session, study: Study) -> TrialTable:
    trials = studies.trial_table(session, study)
    finals = repo.final_metrics(session, study.id)
    params = [trial_params(t) for t in trials]
    param_names = list(dict.fromkeys(name for p in params for name in p))
    metric_names = sorted({name for m in finals.values() for name in m})
    values = _value_columns(study)

    columns = [
        *LEADING, *values, *(f"param_{n}" for n in param_names),
        *(f"metric_{n}" for n in metric_names), *TRAILING,
    ]
    types: list[pa.DataType | None] = [
        pa.int64(), pa.string(), *(pa.float64() for _ in values), *(None for _ in param_names),
        *(pa.float64() for _ in metric_names), pa.int64(), pa.int64(), pa.int64(), pa.bool_(),
        pa.string(), pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="UTC"),
    ]
    rows = []
    for trial, trial_param in zip(trials, params, strict=True):
        objective = list(trial.values or [])
        objective += [None] * (len(values) - len(objective))
        final = finals.get(trial.number, {})
        rows.append([
            trial.number, str(trial.state),
            *(finite_or_none(v) for v in objective[: len(values)]),
            *(trial_param.get(n) for n in param_names),
            *(finite_or_none(final.get(n)) for n in metric_names),
            trial.epochs_run or 0, trial.attempt or 1, trial.retry_of, trial.accepted,
            trial.device, _utc(trial.datetime_start), _utc(trial.datetime_complete),
        ])
    return TrialTable(columns, types, rows)


def _utc(value: datetime | None) -> datetime | None:
    # The store keeps naive UTC.
    return None if value is None else value.replace(tzinfo=UTC)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def csv_chunks(table: TrialTable) -> Iterator[str]:
    """The table as CSV (a header row, then one row per trial), a few hundred rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for start in range(0, len(table.rows), CSV_ROWS_PER_CHUNK):
        writer.writerows(
            [_csv_cell(v) for v in row] for row in table.rows[start : start + CSV_ROWS_PER_CHUNK]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _arrow_column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    if kind is not None:
        return pa.array(values, type=kind)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A parameter whose values mix types (categorical choices such as [1, "a"]): as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def parquet_bytes(table: TrialTable) -> bytes:
    columns = [list(c) for c in zip(*table.rows, strict=True)] or [[] for _ in table.columns]
    arrays = [_arrow_column(c, k) for c, k in zip(columns, table.types, strict=True)]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=table.columns), sink)
    return sink.getvalue()


def filename(study: Study, fmt: ExportFormat) -> str:
    """A file name that is safe in a Content-Disposition header and on any file system."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", study.name).strip("-.")[:80] or "study"
    return f"study-{study.id}-{name}-trials.{fmt}"
