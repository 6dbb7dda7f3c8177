"""Standards: publish, read, diff and deprecate versions; check a spec; promote a study's best
accepted trial into a new version. Publishing, deprecating and promoting need ``PUBLISH_ROLE``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, status
from pydantic import BaseModel, Field

from api.deps import API_PREFIX, MAX_ID, SessionDep, StudyId, Viewer, require_role
from api.openapi import ERRORS, ErrorBody
from api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from tuneboard import standards
from tuneboard.db.models import StandardVersion
from tuneboard.standards import (
    PUBLISH_ROLE,
    CheckReport,
    CheckRequest,
    StandardDiff,
    StandardDocument,
    StandardVersionOut,
)
from tuneboard.standards.service import MAX_LIMIT
from tuneboard.studies.views import Page, UtcDatetime
from tuneboard.teams import Principal

router = APIRouter(prefix=API_PREFIX, tags=["standards"], responses=ERRORS)

Publisher = Annotated[Principal, Depends(require_role(PUBLISH_ROLE))]
StandardName = Annotated[
    str, Path(min_length=1, max_length=200, description="The standard's name.")
]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="The version number.")]
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "Conflict"}}

EXAMPLE_DOCUMENT: dict[str, Any] = {
    "name": "vision-baseline",
    "description": "House rules for small image classifiers.",
    "rules": [
        {
            "param": "optimizer",
            "allowed": ["sgd", "momentum", "adam", "adamw"],
            "default": "adam",
            "rationale": "Adam with beta1=0.9, beta2=0.999 is our starting point.",
        },
        {"param": "lr", "range": {"low": 1.0e-5, "high": 1.0e-2, "log": True}, "default": 1.0e-3},
        {
            "param": "batch_size",
            "range": {"low": 16, "high": 512},
            "rationale": "smaller batches tend to flatter minima.",
        },
    ],
    "defaults": {
        "early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 5, "min_delta": 1e-4},
        "pruner": {"type": "hyperband"},
    },
    "acceptance": [
        {"metric": "val_accuracy", "op": ">=", "value": 0.97},
        {"metric": "generalization_gap", "op": "<=", "value": 0.03},
        {"stability": {"metric": "val_accuracy", "seeds": 3, "max_std": 0.005}},
    ],
    "changelog": "first version",
}


class StandardBody(StandardDocument):
    """A standard document (design section 5), as written in YAML, with an optional changelog
    line for the version it becomes."""

    changelog: str = Field(
        default="", max_length=2000, description="One line on what this version changes."
    )

    def document(self) -> StandardDocument:
        return StandardDocument.model_validate(self.model_dump(exclude={"changelog"}))


PublishBody = Annotated[
    StandardBody,
    Body(openapi_examples={"vision-baseline": {"value": EXAMPLE_DOCUMENT}}),
]


class StandardVersionView(StandardVersionOut):
    """One immutable version of a standard: its document, author, changelog and status."""

    created_at: UtcDatetime

    @classmethod
    def of(cls, version: StandardVersion) -> StandardVersionView:
        view = cls.from_version(version)
        assert isinstance(view, cls)
        return view


class VersionSummary(BaseModel):
    version: int
    status: Literal["active", "deprecated"]
    author: str
    changelog: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, version: StandardVersion) -> VersionSummary:
        return cls.model_validate(
            {
                "version": version.version,
                "status": version.status,
                "author": version.author,
                "changelog": version.changelog,
                "created_at": version.created_at,
            }
        )


class StandardDetail(StandardVersionView):
    """The newest version of a standard, and every version oldest first."""

    versions: list[VersionSummary]
    versions_next_cursor: str | None = Field(
        None,
        description="More versions than fit here: pass as ?cursor= to "
        "GET /standards/{name}/versions.",
    )


def _service_cursor(cursor: str | None) -> str | None:
    return str(decode_cursor(cursor, int)[0]) if cursor else None


def _api_cursor(cursor: str | None) -> str | None:
    return encode_cursor(int(cursor)) if cursor is not None else None


@router.post(
    "/standards",
    status_code=status.HTTP_201_CREATED,
    summary="Create a standard (version 1)",
    description="The body is the standard document itself, with an optional `changelog`. "
    "A team has one standard per name: an existing name is a **409**; publish a new version "
    "instead.",
    responses=CONFLICT,
)
def create_standard(
    session: SessionDep, principal: Publisher, body: PublishBody
) -> StandardVersionView:
    version = standards.create_standard(session, principal, body.document(), body.changelog)
    return StandardVersionView.of(version)


@router.get("/standards", summary="The team's standards (each at its newest version)")
def list_standards(
    session: SessionDep, principal: Viewer, limit: Limit, cursor: Cursor = None
) -> Page[StandardVersionView]:
    rows, next_cursor = standards.list_standards(
        session, principal.team_id, limit=limit, cursor=_service_cursor(cursor)
    )
    return Page[StandardVersionView](
        items=[StandardVersionView.of(v) for v in rows], next_cursor=_api_cursor(next_cursor)
    )


@router.post(
    "/standards/check",
    summary="Check a study spec against a standard; creates nothing",
    description='`standard` is "name" (its latest active version) or "name@N". The report '
    "lists each rule the spec breaks, the defaults the standard would fill in and, when the "
    "spec carries `override: {reason}`, the reason (then `admissible` is true).",
)
def check_spec(session: SessionDep, principal: Viewer, body: CheckRequest) -> CheckReport:
    return standards.check(session, principal.team_id, body.standard, body.spec)


@router.get("/standards/{name}", summary="A standard: its newest version and every version")
def get_standard(session: SessionDep, principal: Viewer, name: StandardName) -> StandardDetail:
    latest = standards.get_standard(session, principal.team_id, name)
    versions, next_cursor = standards.list_versions(
        session, principal.team_id, name, limit=MAX_LIMIT
    )
    return StandardDetail(
        **StandardVersionView.of(latest).model_dump(),
        versions=[VersionSummary.of(v) for v in versions],
        versions_next_cursor=_api_cursor(next_cursor),
    )


@router.post(
    "/standards/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Publish a new version of a standard",
    description="The body is the whole new document (its `name` is the standard's), with an "
    "optional `changelog`. Earlier versions never change.",
)
def publish_version(
    session: SessionDep, principal: Publisher, name: StandardName, body: PublishBody
) -> StandardVersionView:
    version = standards.publish_version(session, principal, name, body.document(), body.changelog)
    return StandardVersionView.of(version)


@router.get("/standards/{name}/versions", summary="A standard's versions, oldest first")
def list_versions(
    session: SessionDep, principal: Viewer, name: StandardName, limit: Limit, cursor: Cursor = None
) -> Page[VersionSummary]:
    rows, next_cursor = standards.list_versions(
        session, principal.team_id, name, limit=limit, cursor=_service_cursor(cursor)
    )
    return Page[VersionSummary](
        items=[VersionSummary.of(v) for v in rows], next_cursor=_api_cursor(next_cursor)
    )


@router.get("/standards/{name}/versions/{version}", summary="One version of a standard")
def get_version(
    session: SessionDep, principal: Viewer, name: StandardName, version: VersionNumber
) -> StandardVersionView:
    return StandardVersionView.of(standards.get_version(session, principal.team_id, name, version))


@router.post(
    "/standards/{name}/versions/{version}/deprecate",
    summary="Deprecate a version",
    description='"name" no longer resolves to it; studies that pin it ("name@N") keep it. '
    "Deprecating a deprecated version changes nothing.",
)
def deprecate_version(
    session: SessionDep, principal: Publisher, name: StandardName, version: VersionNumber
) -> StandardVersionView:
    return StandardVersionView.of(standards.deprecate_version(session, principal, name, version))


@router.get("/standards/{name}/diff", summary="What changed between two versions")
def diff_versions(
    session: SessionDep,
    principal: Viewer,
    name: StandardName,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_ID)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_ID)],
) -> StandardDiff:
    return standards.diff(session, principal.team_id, name, from_version, to_version)


@router.post(
    "/studies/{study_id}/promote",
    status_code=status.HTTP_201_CREATED,
    summary="Promote a study's best accepted trial into its standard",
    description="Publishes a new version of the study's standard whose defaults carry the "
    "trial's parameters. **409** when the study names no standard, has no complete accepted "
    "trial, or the newest version already carries those parameters.",
    responses=CONFLICT,
)
def promote(session: SessionDep, principal: Publisher, study_id: StudyId) -> StandardVersionView:
    return StandardVersionView.of(standards.promote_best(session, principal, study_id))
