"""Standards: publish, read, diff and deprecate versions; check a spec; promote a study's best
accepted trial into a new version. Publishing, deprecating and promoting need ``PUBLISH_ROLE``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status

from api.deps import API_PREFIX, MAX_ID, SessionDep, StudyId, Viewer, require_role
from api.openapi import ERRORS, ErrorBody
from api.pagination import CursorKey, Limit, page
from tuneboard import standards
from tuneboard.schemas import Page
from tuneboard.standards import (
    PUBLISH_ROLE,
    CheckReport,
    CheckRequest,
    StandardBody,
    StandardDetail,
    StandardDiff,
    StandardVersionOut,
    VersionSummary,
)
from tuneboard.standards.usage import StandardUsage, standard_usage
from tuneboard.teams import Principal

router = APIRouter(prefix=API_PREFIX, tags=["standards"], responses=ERRORS)

Publisher = Annotated[Principal, Depends(require_role(PUBLISH_ROLE))]
StandardName = Annotated[
    str, Path(min_length=1, max_length=200, description="The standard's name.")
]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="The version number.")]
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "Conflict"}}
DETAIL_VERSIONS = 200
"""How many versions GET /standards/{name} lists before it hands over to a cursor."""

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


PublishBody = Annotated[
    StandardBody,
    Body(openapi_examples={"vision-baseline": {"value": EXAMPLE_DOCUMENT}}),
]


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
) -> StandardVersionOut:
    version = standards.create_standard(session, principal, body.document(), body.changelog)
    return StandardVersionOut.of(version)


@router.get("/standards", summary="The team's standards (each at its newest version)")
def list_standards(
    session: SessionDep, principal: Viewer, limit: Limit, after: CursorKey
) -> Page[StandardVersionOut]:
    rows = standards.list_standards(
        session, principal.team_id, limit=limit + 1, after_standard_id=after
    )
    items, next_cursor = page(rows, limit, lambda v: (v.standard_id,))
    return Page[StandardVersionOut](
        items=[StandardVersionOut.of(v) for v in items], next_cursor=next_cursor
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
    rows = standards.list_versions(session, principal.team_id, name, limit=DETAIL_VERSIONS + 1)
    versions, next_cursor = page(rows, DETAIL_VERSIONS, lambda v: (v.version,))
    return StandardDetail.of_standard(latest, versions, next_cursor)


@router.post(
    "/standards/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Publish a new version of a standard",
    description="The body is the whole new document (its `name` is the standard's), with an "
    "optional `changelog`. Earlier versions never change.",
)
def publish_version(
    session: SessionDep, principal: Publisher, name: StandardName, body: PublishBody
) -> StandardVersionOut:
    version = standards.publish_version(session, principal, name, body.document(), body.changelog)
    return StandardVersionOut.of(version)


@router.get("/standards/{name}/versions", summary="A standard's versions, oldest first")
def list_versions(
    session: SessionDep, principal: Viewer, name: StandardName, limit: Limit, after: CursorKey
) -> Page[VersionSummary]:
    rows = standards.list_versions(
        session, principal.team_id, name, limit=limit + 1, after_version=after
    )
    items, next_cursor = page(rows, limit, lambda v: (v.version,))
    return Page[VersionSummary](
        items=[VersionSummary.of(v) for v in items], next_cursor=next_cursor
    )


@router.get("/standards/{name}/versions/{version}", summary="One version of a standard")
def get_version(
    session: SessionDep, principal: Viewer, name: StandardName, version: VersionNumber
) -> StandardVersionOut:
    return StandardVersionOut.of(standards.get_version(session, principal.team_id, name, version))


@router.post(
    "/standards/{name}/versions/{version}/deprecate",
    summary="Deprecate a version",
    description='"name" no longer resolves to it; studies that pin it ("name@N") keep it. '
    "Deprecating a deprecated version changes nothing.",
)
def deprecate_version(
    session: SessionDep, principal: Publisher, name: StandardName, version: VersionNumber
) -> StandardVersionOut:
    return StandardVersionOut.of(standards.deprecate_version(session, principal, name, version))


@router.get("/standards/{name}/diff", summary="What changed between two versions")
def diff_versions(
    session: SessionDep,
    principal: Viewer,
    name: StandardName,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_ID)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_ID)],
) -> StandardDiff:
    return standards.diff(session, principal.team_id, name, from_version, to_version)


@router.get(
    "/standards/{name}/usage",
    summary="How the standard has been used",
    description="Per version: the studies run under it (with override reasons), how many "
    "judged trials were accepted, rejected or pending overall and per acceptance criterion, "
    "and the best accepted trial for each objective.",
)
def get_usage(session: SessionDep, principal: Viewer, name: StandardName) -> StandardUsage:
    return standard_usage(session, principal.team_id, name)


@router.post(
    "/studies/{study_id}/promote",
    status_code=status.HTTP_201_CREATED,
    summary="Promote a study's best accepted trial into its standard",
    description="Publishes a new version of the study's standard whose defaults carry the "
    "trial's parameters. **409** when the study names no standard, has no complete accepted "
    "trial, or the newest version already carries those parameters.",
    responses=CONFLICT,
)
def promote(session: SessionDep, principal: Publisher, study_id: StudyId) -> StandardVersionOut:
    return StandardVersionOut.of(standards.promote_best(session, principal, study_id))
