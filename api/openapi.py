"""OpenAPI extras: the error shape on every operation, and the study spec's schema for the
body of ``POST /studies`` (which the route takes as a plain object so that a standard's defaults
can fill it in before it is validated)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from tuneboard.studies.schemas import EXAMPLE_SPEC, StudySpec

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


def install(app: FastAPI, extra_models: tuple[type[BaseModel], ...] = (StudySpec,)) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in extra_models:
            model_schema = model.model_json_schema(ref_template=REF)
            for name, definition in model_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, model_schema)
        _only_refs(schema.get("paths", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
