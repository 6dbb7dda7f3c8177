"""What every spec model shares: the problem collector and the "did you mean" hints.

Every error is a sentence located at the field it is about (``("search_space", "lr", "high")``);
a validator that finds several problems collects them and raises them together as one
``ValidationError``, so a user sees every mistake of a spec at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[int | str, ...]

# Other names people give the built-in trainer's parameters, suggested when they are unknown.
_PARAM_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "l2": "weight_decay",
    "bs": "batch_size",
    "batchsize": "batch_size",
    "hidden_size": "hidden",
    "hidden_dim": "hidden",
    "units": "hidden",
    "width": "hidden",
    "num_layers": "layers",
    "n_layers": "layers",
    "depth": "layers",
    "dropout_rate": "dropout",
    "opt": "optimizer",
    "normalization": "norm",
    "act": "activation",
}


def _error(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, "{reason}", {"reason": message})


def _listing(names: Iterable[object]) -> str:
    return ", ".join(str(n) for n in names)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    alias = _PARAM_ALIASES.get(name.lower())
    if alias is not None and alias in known and alias not in matches:
        matches.insert(0, alias)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


class _Problems:
    """Problems found by one validator, raised together as one ``ValidationError``."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: Any = None, code: str = "invalid_spec") -> None:
        self._errors.append(InitErrorDetails(type=_error(code, message), loc=loc, input=value))

    def extend(self, exc: ValidationError, prefix: Loc = ()) -> None:
        for err in exc.errors():
            self.add(prefix + tuple(err["loc"]), err["msg"], err.get("input"), err["type"])

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError.from_exception_data(self._title, self._errors)


def _raise_at(loc: Loc, message: str, value: Any, code: str = "invalid_spec") -> None:
    problems = _Problems("StudySpec")
    problems.add(loc, message, value, code)
    problems.raise_if_any()


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
