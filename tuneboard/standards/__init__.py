"""Standards: a team's explicit, versioned decision criteria for hyperparameters.

A standard document carries rules (allowed values and ranges per param), defaults merged into
study specs where they are silent, and acceptance criteria that judge finished trials.
"""

from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.defaults import apply_defaults
from tuneboard.standards.diff import diff_documents
from tuneboard.standards.repository import ImmutableVersionError
from tuneboard.standards.rules import check_spec, scale_warnings
from tuneboard.standards.schemas import (
    CheckReport,
    CheckRequest,
    Criterion,
    CriterionResult,
    MetricCriterion,
    PublishRequest,
    RangeSpec,
    Rule,
    StabilityCriterion,
    StabilitySpec,
    StandardDefaults,
    StandardDiff,
    StandardDocument,
    StandardVersionOut,
    Verdict,
    Violation,
    document_of,
    parse_document,
    version_ref,
)
from tuneboard.standards.service import (
    PUBLISH_ROLE,
    AppliedStandard,
    admit,
    check,
    create_standard,
    deprecate_version,
    diff,
    get_standard,
    get_version,
    list_standards,
    list_versions,
    promote,
    promote_best,
    publish_version,
    resolve,
)

__all__ = [
    "PUBLISH_ROLE",
    "AppliedStandard",
    "CheckReport",
    "CheckRequest",
    "Criterion",
    "CriterionResult",
    "ImmutableVersionError",
    "MetricCriterion",
    "PublishRequest",
    "RangeSpec",
    "Rule",
    "StabilityCriterion",
    "StabilitySpec",
    "StandardDefaults",
    "StandardDiff",
    "StandardDocument",
    "StandardVersionOut",
    "Verdict",
    "Violation",
    "admit",
    "apply_defaults",
    "check",
    "check_spec",
    "create_standard",
    "deprecate_version",
    "diff",
    "diff_documents",
    "document_of",
    "evaluate",
    "get_standard",
    "get_version",
    "list_standards",
    "list_versions",
    "parse_document",
    "promote",
    "promote_best",
    "publish_version",
    "resolve",
    "scale_warnings",
    "version_ref",
]
