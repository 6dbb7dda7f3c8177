"""``warm_start`` and ``search`` in the spec: what a standard contributes to the search."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.tuneboard.standards.support import spec
from tuneboard.spec import StudySpec

BOUND = {"metric": "val_accuracy", "op": ">=", "value": 0.9}


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        StudySpec.model_validate(raw)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_a_warm_start_and_a_constrained_search_validate_and_round_trip() -> None:
    parsed = StudySpec.model_validate(spec(
        warm_start={"from_studies": [12, 15], "top_k": 3},
        search={"prefer_accepted": True, "constraints": [BOUND]},
    ))
    assert parsed.warm_start is not None and parsed.warm_start.promoted
    assert parsed.prefers_accepted
    assert StudySpec.model_validate(parsed.model_dump(mode="json")) == parsed


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"standard": None, "warm_start": {"from_studies": [3]}},
         "warm_start.from_studies", "needs a standard"),
        ({"warm_start": {"from_studies": [3, 4, 3]}}, "warm_start.from_studies", "repeated: 3"),
        ({"warm_start": {"from_studies": [0]}}, "warm_start.from_studies.0", "greater than"),
        ({"warm_start": {"top_k": 0}}, "warm_start.top_k", "greater than"),
        ({"warm_start": {}, "sampler": {"type": "grid"},
          "search_space": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}}},
         "warm_start", "grid sampler"),
        ({"search": {"prefer_accepted": True, "constraints": [BOUND]},
          "sampler": {"type": "random"}}, "search.prefer_accepted", "tpe, nsga2, gp"),
        ({"search": {"prefer_accepted": True, "constraints": [BOUND]},
          "sampler": {"type": "cmaes"}}, "search.prefer_accepted", "takes no constraints"),
        ({"search": {"prefer_accepted": True}}, "search.prefer_accepted",
         "no metric acceptance criteria"),
        ({"standard": None, "search": {"prefer_accepted": True, "constraints": [BOUND]}},
         "search.prefer_accepted", "name a standard"),
        ({"search": {"constraints": [BOUND]}}, "search.constraints", "prefer_accepted"),
    ],
)
def test_bad_priors_are_refused_at_their_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    problems = _problems(spec(**changes))
    assert field in problems, problems
    assert words in problems[field]
