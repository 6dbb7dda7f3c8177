"""Property-based requests from /openapi.json: whatever a client sends, no 5xx."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case

from api.main import app as documented_app
from tests.api.conftest import Team

# The schema does not depend on the database; each test sends its cases to an app on its own.
schema = schemathesis.openapi.from_asgi("/openapi.json", documented_app)


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Case, app: FastAPI, team: Team) -> None:
    response = case.call(app=app, headers=team.headers("admin"))
    case.validate_response(response, checks=[not_a_server_error])
