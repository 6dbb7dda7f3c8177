"""The objective registry: what a study's ``objective`` section names, as a callable.

``builtin: classifier`` (or its alias ``regressor``; the trainer takes the task from the
dataset) is :func:`workers.training.train`. ``entrypoint: NAME`` is the function an installed
package registers under the entry-point group ``tuneboard.objectives``::

    [project.entry-points."tuneboard.objectives"]
    my-objective = "my_package.objectives:train"

No code arrives over HTTP: only installed packages can add objectives.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, cast

from tuneboard.objective import Objective
from workers.training import train

__all__ = [
    "BUILTIN_OBJECTIVES",
    "ENTRY_POINT_GROUP",
    "ObjectiveLoadError",
    "UnknownObjective",
    "available_objectives",
    "load_objective",
]

ENTRY_POINT_GROUP = "tuneboard.objectives"
BUILTIN_OBJECTIVES: Mapping[str, Objective] = {"classifier": train, "regressor": train}


class UnknownObjective(LookupError):
    """No built-in objective or installed entry point has the name a study gives."""


class ObjectiveLoadError(ImportError):
    """An entry point exists but cannot be used: its import fails, it names something that is
    not callable, or two installed packages register the same name differently."""


def _entry_points() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def available_objectives(kind: Literal["builtin", "entrypoint"] | None = None) -> list[str]:
    """Sorted names a study can use: built-in ones, installed entry points, or (default) both."""
    names: set[str] = set()
    if kind in (None, "builtin"):
        names |= set(BUILTIN_OBJECTIVES)
    if kind in (None, "entrypoint"):
        names |= set(_entry_points())
    return sorted(names)


def _load_entry_point(name: str) -> Objective:
    candidates = _entry_points().get(name, [])
    if not candidates:
        installed = ", ".join(available_objectives("entrypoint")) or "none"
        raise UnknownObjective(
            f"no objective {name!r} in entry-point group {ENTRY_POINT_GROUP!r} "
            f"(installed: {installed})"
        )
    targets = sorted({ep.value for ep in candidates})
    if len(targets) > 1:
        raise ObjectiveLoadError(
            f"objective {name!r} is registered more than once: {', '.join(targets)}"
        )
    try:
        loaded = candidates[0].load()
    except Exception as exc:
        raise ObjectiveLoadError(
            f"objective {name!r} ({targets[0]}) failed to import: {exc}"
        ) from exc
    if not callable(loaded):
        raise ObjectiveLoadError(f"objective {name!r} ({targets[0]}) is not callable")
    return cast(Objective, loaded)


def load_objective(objective_config: Mapping[str, Any]) -> Objective:
    """The callable a study's ``objective`` section names (``builtin`` or ``entrypoint``).

    Raises :class:`UnknownObjective` for a name nothing provides, :class:`ObjectiveLoadError`
    for an entry point that cannot be used, and ``ValueError`` when the section names both
    kinds or neither.
    """
    builtin, entrypoint = objective_config.get("builtin"), objective_config.get("entrypoint")
    if (builtin is None) == (entrypoint is None):
        raise ValueError("objective: give exactly one of builtin and entrypoint")
    if builtin is not None:
        if builtin not in BUILTIN_OBJECTIVES:
            raise UnknownObjective(
                f"no built-in objective {builtin!r}; expected one of "
                f"{', '.join(BUILTIN_OBJECTIVES)}"
            )
        return BUILTIN_OBJECTIVES[builtin]
    return _load_entry_point(str(entrypoint))
