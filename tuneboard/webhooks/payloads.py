"""The ``data`` of each event, built from the rows of the fact it reports.

One function per event, so a receiver's contract is written down in one place. Every payload
names its study or standard by id and by name; ``standard`` is ``"name@N"``.
"""

from __future__ import annotations

from typing import Any

from tuneboard.db.models import StandardVersion, Study, Trial
from tuneboard.spec import StandardRef

__all__ = ["best_accepted", "standard_version", "study_finished", "study_override"]


def _standard(version: StandardVersion | None) -> str | None:
    return None if version is None else str(StandardRef(version.standard.name, version.version))


def _study(study: Study) -> dict[str, Any]:
    return {
        "id": study.id,
        "name": study.name,
        "state": str(study.state),
        "standard": _standard(study.standard_version),
    }


def study_finished(study: Study) -> dict[str, Any]:
    """study.finished: the study's final state (completed, failed or cancelled), when, why it
    stopped before its budget was spent (``stop_reason``) and its error, if any."""
    return {
        "study": _study(study),
        "finished_at": study.finished_at,
        "stop_reason": study.stop_reason,
        "error": study.error,
    }


def best_accepted(study: Study, trial: Trial, params: dict[str, Any]) -> dict[str, Any]:
    """trial.best_accepted: the study's new best accepted trial (``params`` as the API shows
    them) and its verdict."""
    return {
        "study": _study(study),
        "trial": {
            "number": trial.number,
            "value": trial.value,
            "values": trial.values,
            "params": params,
            "verdict": trial.verdict,
        },
    }


def standard_version(version: StandardVersion) -> dict[str, Any]:
    """standard.published and standard.deprecated: the version and its status now."""
    return {
        "standard": _standard(version),
        "name": version.standard.name,
        "version": version.version,
        "status": version.status,
        "author": version.author,
        "changelog": version.changelog,
    }


def study_override(study: Study, report: dict[str, Any]) -> dict[str, Any]:
    """study.override: a study admitted although it breaks its standard, the reason given and
    the rules it breaks (``report``: the standard check's report, as JSON)."""
    return {
        "study": _study(study),
        "reason": study.override_reason,
        "violations": report.get("violations", []),
    }
