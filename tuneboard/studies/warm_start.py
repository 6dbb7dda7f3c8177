"""Warm start: the first trials of a study under a standard come from what the team already knows.

Where they come from, in this order:

1. The standard's promoted configurations (unless ``warm_start.promoted`` is false). A
   promotion (``standards.service.promote``) publishes a version whose rule defaults and
   ``defaults.fixed`` carry the promoted trial's parameters, and whose changelog begins
   ``PROMOTED_CHANGELOG``. Each such version up to the one the study pins gives one
   configuration: its rule defaults and ``defaults.fixed`` together, what the standard
   recommended right after that promotion. Newest promotion first.
2. For each study of ``warm_start.from_studies``, in the order given, its ``top_k`` best
   accepted trials (best first, by its own direction). Each must be a study of the same team
   under the same standard (any version), with one objective; otherwise the request is refused
   with a 422 at ``warm_start.from_studies.<i>``.

Decisions:
- Only the new study's search space counts. A parameter it does not search (it may be fixed
  there, or absent) is left out, as is a value outside its range or choices, or a conditional
  parameter whose condition does not hold; the sampler draws what is left out. Each left-out
  parameter is recorded with its reason on the trial (``WARM_START_ATTR``), never a 422: a
  standard's defaults and an earlier study's space need not match this study's space. A
  configuration with no parameter left, or the same as an earlier one, is dropped, and the
  drop recorded on the study.
- The configurations are resolved once, at submission, and stored on the study
  (``system_attrs[WARM_START_ATTR]``); later promotions do not change a study already admitted.
- They are the first trials of the budget: trial k of ``budget.n_trials`` (k counted by
  ``studies.sampler_trials``, under the study's row lock) takes configuration k while there is
  one, so they respect ``max_parallel`` and ``n_trials`` and exist once however many workers
  ask, unlike Optuna's ``enqueue_trial``, which runs again in every process that calls it.
  Configurations beyond ``n_trials`` are dropped.
- Neither the grid sampler (it walks its grid in order) nor an external study (its clients ask
  for trials themselves) takes a warm start: the spec refuses one, and promoted configurations
  are not applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tuneboard.db.models import StandardVersion, Study
from tuneboard.errors import InvalidInput
from tuneboard.optimization.params import external_params
from tuneboard.optimization.space import InvalidParamsError, validate_fixed_params
from tuneboard.spec import AnyParam, StudySpec, canonical_hash
from tuneboard.spec.states import TrialOrigin
from tuneboard.standards import repository as standards_repo
from tuneboard.standards.schemas import document_of, version_ref
from tuneboard.standards.service import PROMOTED_CHANGELOG

__all__ = ["WARM_START_ATTR", "budget_trials", "resolve"]

WARM_START_ATTR = "tuneboard:warm_start"
NOT_SEARCHED = "not a parameter of this study's search space"


def resolve(
    session: Session, team_id: int, spec: StudySpec, version: StandardVersion | None
) -> dict[str, Any]:
    """The study's ``system_attrs`` for its warm start (empty when it has none). Raises
    InvalidInput naming ``warm_start.from_studies.<i>`` for a study that cannot be used."""
    warm = spec.warm_start
    if version is None or spec.sampler.type == "grid" or spec.objective.external:
        return {}
    sources: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    if warm is None or warm.promoted:
        sources += _promoted(session, version)
    if warm is not None:
        sources += _from_studies(session, team_id, version, warm.from_studies, warm.top_k)
    configs: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    seen: set[str] = set()
    for source, params in sources:
        fitted, skipped = _fit(spec.search_space, params)
        key = canonical_hash(fitted)
        if not fitted or key in seen or len(configs) >= spec.budget.n_trials:
            reason = ("no parameter of it fits this study's search space" if not fitted
                      else "the same as an earlier configuration" if key in seen
                      else f"beyond budget.n_trials={spec.budget.n_trials}")
            dropped.append({"source": source, "reason": reason})
            continue
        seen.add(key)
        configs.append({"params": fitted, "source": source, "skipped": skipped})
    if not configs and not dropped:
        return {}
    return {WARM_START_ATTR: {"configs": configs, "dropped": dropped}}


def budget_trials(
    study: Study, first: int, n: int
) -> list[tuple[TrialOrigin, list[dict[str, Any]]]]:
    """The trial fields of budget positions ``first`` .. ``first + n - 1`` by origin: the warm
    start's configurations while they last, then the sampler's. The caller holds the study's
    row lock and advances ``sampler_trials`` by ``n``."""
    configs = ((study.system_attrs or {}).get(WARM_START_ATTR) or {}).get("configs") or []
    warm = [
        {"system_attrs": {"fixed_params": c["params"],
                          WARM_START_ATTR: {"source": c["source"], "skipped": c["skipped"]}}}
        for c in configs[first:first + n]
    ]
    out: list[tuple[TrialOrigin, list[dict[str, Any]]]] = []
    if warm:
        out.append((TrialOrigin.WARM_START, warm))
    if n > len(warm):
        out.append((TrialOrigin.SAMPLER, [{"system_attrs": {}} for _ in range(n - len(warm))]))
    return out


def _promoted(
    session: Session, version: StandardVersion
) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
    versions = standards_repo.list_versions(session, version.standard_id, limit=version.version)
    out: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    for row in reversed(versions):
        if not row.changelog.startswith(PROMOTED_CHANGELOG):
            continue
        doc = document_of(row)
        params = {**(doc.defaults.fixed or {}),
                  **{r.param: r.default for r in doc.rules if r.default is not None}}
        out.append(({"standard": version_ref(row), "changelog": row.changelog}, params))
    return out


def _from_studies(
    session: Session,
    team_id: int,
    version: StandardVersion,
    study_ids: Sequence[int],
    top_k: int,
) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
    problems: list[dict[str, str]] = []
    out: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    name = version.standard.name
    for i, study_id in enumerate(study_ids):
        field = f"warm_start.from_studies.{i}"
        source = standards_repo.get_study(session, team_id, study_id)
        if source is None:
            problems.append({"field": field, "reason": f"study {study_id} not found"})
            continue
        pinned = source.standard_version
        if pinned is None or pinned.standard_id != version.standard_id:
            under = f"under {version_ref(pinned)}" if pinned is not None else "under no standard"
            problems.append({"field": field, "reason": f"study {study_id} ran {under}, not "
                             f"under {name}; warm start from studies of the same standard"})
            continue
        if len(source.directions or []) != 1:
            problems.append({"field": field, "reason": f"study {study_id} has "
                             f"{len(source.directions or [])} objectives; its best trials are "
                             "not ranked by one value"})
            continue
        for trial in standards_repo.top_accepted_trials(session, source, top_k):
            params = external_params(trial.params or {}, trial.distributions or {})
            out.append(({"study_id": source.id, "trial_number": trial.number,
                         "value": trial.value}, params))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(f"{first['field']}: {first['reason']}{more}", problems)
    return out


def _fit(
    search_space: Mapping[str, AnyParam], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The part of ``params`` this search space takes, and why each other parameter is left out."""
    skipped = {name: NOT_SEARCHED for name in params if name not in search_space}
    candidate = {name: value for name, value in params.items() if name in search_space}
    while True:
        try:
            return validate_fixed_params(search_space, candidate), skipped
        except InvalidParamsError as err:
            skipped.update(err.problems)
            for name in err.problems:
                candidate.pop(name, None)
