"""Trial counts per state, kept per process and brought up to date with two small reads.

Counting a 100k-trial study's states is a scan of 100k index entries (tens of milliseconds),
and every study GET, list and event poll needs the counts. A finished trial's state never
changes and, within a study, trial numbers grow in commit order (every writer bumps
``studies.next_trial_number`` under the study's row lock before it inserts), so per study this
cache keeps the finished counts, the highest number seen and the unfinished trials, and on each
call reads only trials numbered above that and the unfinished ones it knows.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from tuneboard.spec.states import TrialState
from tuneboard.studies import repository as repo

__all__ = ["clear", "trial_counts_by_study"]

# Past this many unfinished trials, one full count is cheaper than asking for each of them.
MAX_TRACKED_UNFINISHED = 1000


@dataclass
class _Entry:
    max_number: int = -1
    finished: Counter[TrialState] = field(default_factory=Counter)
    unfinished: dict[int, TrialState] = field(default_factory=dict)

    def counts(self) -> dict[TrialState, int]:
        out = dict(self.finished)
        for state in self.unfinished.values():
            out[state] = out.get(state, 0) + 1
        return out


_lock = threading.Lock()
_entries: dict[tuple[str, int], _Entry] = {}


def clear() -> None:
    """Forget every cached count (as a new process would)."""
    with _lock:
        _entries.clear()


def _load(session: Session, study_ids: Sequence[int]) -> dict[int, _Entry]:
    """Full counts in one statement (one snapshot): finished counts, unfinished trials, and the
    highest number, so no trial is counted twice or lost between two reads."""
    entries = {sid: _Entry() for sid in study_ids}
    for study_id, state, n, trial_id in repo.trial_state_snapshot(session, study_ids):
        entry = entries[study_id]
        if trial_id is not None:
            entry.unfinished[int(trial_id)] = state
        elif state is None:
            entry.max_number = int(n)
        else:
            entry.finished[state] = int(n)
    return entries


def _refresh(session: Session, entries: dict[int, _Entry]) -> None:
    """Apply what changed since each entry was read: new trials, and unfinished ones that moved.

    Each trial is read once per refresh, so the statements need no common snapshot.
    """
    highest = {sid: entry.max_number for sid, entry in entries.items()}
    for study_id, number, trial_id, state in repo.trials_numbered_above(session, highest):
        entry = entries[study_id]
        entry.max_number = max(entry.max_number, number)
        entry.unfinished.pop(trial_id, None)
        if state.is_active():
            entry.unfinished[trial_id] = state
        else:
            entry.finished[state] += 1

    owner = {tid: sid for sid, entry in entries.items() for tid in entry.unfinished}
    if not owner:
        return
    seen = set()
    for trial_id, state in repo.trial_states(session, list(owner)):
        seen.add(trial_id)
        entry = entries[owner[trial_id]]
        if state.is_active():
            entry.unfinished[trial_id] = state
        else:
            del entry.unfinished[trial_id]
            entry.finished[state] += 1
    for trial_id in set(owner) - seen:  # gone with its study
        entries[owner[trial_id]].unfinished.pop(trial_id, None)


def trial_counts_by_study(
    session: Session, study_ids: Sequence[int]
) -> dict[int, dict[TrialState, int]]:
    """Each study's trials per state, as of this session's reads.

    Entries are replaced, never changed in place, and no lock is held while reading the
    database: a refresh is correct from whichever entry it starts, so racing callers only
    repeat some work.
    """
    if not study_ids:
        return {}
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _lock:
        known = {sid: _entries.get((url, sid)) for sid in study_ids}
    current = {
        sid: copy.deepcopy(e)
        for sid, e in known.items()
        if e is not None and len(e.unfinished) <= MAX_TRACKED_UNFINISHED
    }
    if current:
        _refresh(session, current)
    missing = [sid for sid in study_ids if sid not in current]
    if missing:
        current.update(_load(session, missing))
    with _lock:
        for sid, entry in current.items():
            _entries[(url, sid)] = entry
    return {sid: current[sid].counts() for sid in study_ids}
