"""The OpenAPI document, made to say what the server does.

- Every operation lists the errors it can answer, in the one error shape: whatever any request
  can meet (400 from the body and encoding checks, 404, 422, 503; 401, 403 and 429 with
  ``Retry-After`` on the API's routes; 409 on those that change something; 413 where there is a
  body), whatever the route's own media type (an event stream still fails in JSON).
- ``POST`` on a collection links its response's ``id`` to the operations on the item, for
  stateful clients and tests.
- The rate limits in force are stated in the description.
- The study spec's schema is the body of ``POST /studies`` (the route takes a plain object so
  that a standard's defaults can fill it in before it is validated).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api.deps import API_PREFIX
from tuneboard.config import Settings
from tuneboard.spec import EXAMPLE_SPEC, StudySpec

REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["study 12 not found"])
    details: Any = Field(
        None,
        description="For 422: a list of {field, in, reason}; otherwise context or null.",
    )


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorBody, "description": "The key's role is too low"},
    404: {"model": ErrorBody, "description": "Not found (or another team's)"},
    422: {"model": ErrorBody, "description": "Invalid input: each field and why"},
}

_MUTATIONS = frozenset({"post", "put", "patch", "delete"})
_EVERYWHERE = {
    400: "Malformed request: a bad Content-Length, or text that is not valid UTF-8",
    404: "Not found (or another team's)",
    422: "Invalid input: each field and why",
    503: "A dependency (the database) is unavailable; retry later",
}
_API = {
    401: "Missing, invalid or revoked API key",
    403: "The key's role is too low",
    429: "Rate limit or team cap reached; retry after `Retry-After` seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the request may succeed.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}
}


def spec_request_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=StudySpec.__name__)},
                    "examples": {"digits-mlp": {"value": EXAMPLE_SPEC}},
                }
            },
        }
    }


def _only_refs(node: Any) -> None:
    """A schema that names a $ref keeps only the $ref (FastAPI merges openapi_extra into the
    schema it derived from the route's signature)."""
    if isinstance(node, dict):
        schema = node.get("schema")
        if isinstance(schema, dict) and "$ref" in schema and len(schema) > 1:
            node["schema"] = {"$ref": schema["$ref"]}
        for value in node.values():
            _only_refs(value)
    elif isinstance(node, list):
        for value in node:
            _only_refs(value)


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> dict[int, str]:
    statuses = dict(_EVERYWHERE)
    if path.startswith(API_PREFIX):
        statuses |= _API
        if method in _MUTATIONS:
            statuses[409] = "Conflicts with the resource's current state, or a concurrent change"
    if "requestBody" in operation:
        statuses[413] = "The request body is over the server's limit"
    return statuses


def document_errors(schema: dict[str, Any]) -> None:
    """Each operation's error responses: the ones every request can meet, added to the route's
    own, every one of them in the error shape and JSON."""
    error_body = {"application/json": {"schema": {"$ref": REF.format(model=ErrorBody.__name__)}}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "head", "options", *_MUTATIONS}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _error_statuses(path, method, operation).items():
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = error_body
            if "429" in responses:
                responses["429"]["headers"] = _RETRY_AFTER
            if "401" in responses:
                responses["401"]["headers"] = _WWW_AUTHENTICATE


def _properties(schema: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    properties: dict[str, Any] = body.get("properties", {})
    return properties


def link_created_items(schema: dict[str, Any]) -> None:
    """``POST /things`` answering 201 with an ``id``: links to each operation on
    ``/things/{thing_id}`` (the item's single new path parameter), e.g. create a study, then
    read, cancel or extend it."""
    paths = schema.get("paths", {})
    for collection, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None or "id" not in _properties(schema, created):
            continue
        links: dict[str, Any] = {}
        for path, target in paths.items():
            rest = path.removeprefix(collection + "/")
            if rest == path or not rest.startswith("{"):
                continue
            param = rest[1:].split("}", 1)[0]
            if rest.count("{") != 1:
                continue
            for method, operation in target.items():
                if method not in {"get", *_MUTATIONS} or "operationId" not in operation:
                    continue
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {param: "$response.body#/id"},
                }
        if links:
            created["links"] = links


def describe_limits(settings: Settings) -> str:
    return (
        "\n\n## Limits\n\nRequests over a limit answer **429** with `Retry-After` (seconds): "
        f"per client address `{settings.rate_limit_per_address}`, per API key "
        f"`{settings.rate_limit_per_key}`, failed authentications per address "
        f"`{settings.rate_limit_auth_failures}` (past it the address is refused any key until "
        "the window ends). Per team: running trials at once "
        f"{settings.max_running_trials_per_team or 'unlimited'}, studies created per hour "
        f"{settings.max_studies_per_hour or 'unlimited'}. Request bodies are at most "
        f"{settings.max_body_bytes} bytes (**413**); pages at most {settings.max_page_size} "
        "items."
    )


def install(app: FastAPI, extra_models: tuple[type[BaseModel], ...] = (StudySpec,)) -> None:
    settings: Settings = app.state.settings

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=(app.description or "") + describe_limits(settings),
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        models: tuple[type[BaseModel], ...] = (ErrorBody, *extra_models)
        for model in models:
            model_schema = model.model_json_schema(ref_template=REF)
            for name, definition in model_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, model_schema)
        _only_refs(schema.get("paths", {}))
        document_errors(schema)
        link_created_items(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
