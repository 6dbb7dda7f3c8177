"""Property-based requests from /openapi.json with every schemathesis check: the document says
what the server does (statuses, media types, headers, bodies, ``Allow``), and no input is a 5xx.

Each operation gets a few generated cases (positive and negative, every phase), then a stateful
run follows the document's links (``POST /studies`` -> the study's routes, ...). Both run against
this test's app, on each backend, as the team's admin. Nothing is excluded: the key in use is
the team's last admin key, which the server refuses to revoke (a 409 the document lists).
Rate limits are raised out of the way here; their 429s have tests of their own.

A few bodies obey rules that no JSON Schema can state (``SEMANTIC_RULES``); a schema-valid body
that breaks one is refused with a 422, which passes here only in the documented error shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation.case import Case

from api.main import app as documented_app
from api.openapi import ErrorBody
from tests.api.conftest import BROKER_URL, Team
from tuneboard.config import Settings

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
(POSITIVE_DATA_ACCEPTANCE,) = (c for c in ALL_CHECKS if c.__name__ == "positive_data_acceptance")

# Operations whose schema-valid bodies may still break a rule stated only in the server's
# validation, so a positive case may get a 422 (each one names the rule).
SEMANTIC_RULES = {
    # Cross-field rules: low < high, a step that divides the range, parameter names the
    # built-in trainer knows, metrics it reports and their directions, conditions on choices.
    "POST /api/v1/studies",
    # A rule's default must be among its allowed values or within its range.
    "POST /api/v1/standards",
    # ... and the document's name must be the standard's name in the path.
    "POST /api/v1/standards/{name}/versions",
    # A template's params must be its distributions' values; a distribution is Optuna's JSON.
    "POST /api/v1/optuna/studies/{study_id}/trials",
    "POST /api/v1/optuna/trials/{trial_id}/params",
}

# CI speed: a handful of cases per operation; requests wait on the database, not the clock.
CI = hypothesis_settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
STATEFUL = hypothesis_settings(CI, max_examples=10, stateful_step_count=6)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        broker_url=BROKER_URL,
        home=tmp_path,
        environment="test",
        rate_limit_per_key="1000000/minute",
        rate_limit_per_address="1000000/minute",
        rate_limit_auth_failures="1000000/minute",
    )


# The document does not depend on the database; each test sends its cases (and the requests
# that checks such as ignored_auth send again) to an app of its own.
schema = schemathesis.openapi.from_asgi("/openapi.json", documented_app)


def validate(
    case: Case, response: Any, headers: dict[str, str], transport: dict[str, Any]
) -> None:
    """Every check; a 422 from an operation of ``SEMANTIC_RULES`` must be the error shape."""
    excluded = []
    if case.operation.label in SEMANTIC_RULES and response.status_code == 422:
        ErrorBody.model_validate(response.json())
        excluded.append(POSITIVE_DATA_ACCEPTANCE)
    case.validate_response(
        response,
        checks=ALL_CHECKS,
        excluded_checks=excluded,
        headers=headers,
        transport_kwargs=transport,
    )


@schema.parametrize()
@CI
def test_every_operation_conforms(case: Case, app: FastAPI, team: Team) -> None:
    headers = team.headers("admin")
    validate(case, case.call(app=app, headers=headers), headers, {"app": app})


def test_stateful_links_conform(app: FastAPI, team: Team) -> None:
    headers = team.headers("admin")
    base = schemathesis.openapi.from_asgi("/openapi.json", app).as_state_machine()

    class Links(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            validate(case, response, headers, kwargs)

    Links.run(settings=STATEFUL)
