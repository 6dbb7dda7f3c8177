"""When a study may end before its budget is spent (``stopping``).

Two rules, one per spec:

- a plateau, ``{patience: 20, min_delta: 0.001}``: the best value (the best *accepted* value
  when the study's standard has acceptance criteria) has not improved by more than
  ``min_delta`` over the last ``patience`` finished trials;
- Optuna's Terminator, ``{terminator: {regret_bound: 0.01}}``: its regret-bound evaluator (a
  Gaussian process over the complete trials) says the best value could still improve by less
  than ``regret_bound``; it is asked once ``min_n_trials`` trials are complete.

Either way the study ends ``completed`` with the reason stored on it. The dispatcher applies
the rule (``tuneboard.studies.stopping``); this module only says what a valid rule is.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from tuneboard.spec._problems import _Problems, _Spec
from tuneboard.spec.scalars import JsonFloat, JsonInt

__all__ = ["StoppingSpec", "TerminatorSpec"]


class TerminatorSpec(_Spec):
    """Optuna's ``Terminator`` with its regret-bound evaluator and a fixed error bound."""

    regret_bound: JsonFloat = Field(gt=0)
    min_n_trials: JsonInt = Field(20, ge=2, le=100_000)


class StoppingSpec(_Spec):
    """End the study on a plateau (``patience``, ``min_delta``) or when the Terminator says so."""

    patience: JsonInt | None = Field(None, ge=1, le=100_000)
    min_delta: JsonFloat | None = Field(None, ge=0, description="0 when left out.")
    terminator: TerminatorSpec | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        problems = _Problems("StoppingSpec")
        if self.terminator is not None and self.patience is not None:
            problems.add((), "Give either patience (a plateau) or terminator, not both.")
        elif self.terminator is None and self.patience is None:
            problems.add(
                ("patience",),
                "Say when to stop: patience (finished trials without improvement), or "
                "terminator: {regret_bound: ...}.",
            )
        if self.terminator is not None and self.min_delta is not None:
            problems.add(("min_delta",), "min_delta applies to patience, not to terminator.",
                         self.min_delta)
        problems.raise_if_any()
        return self
