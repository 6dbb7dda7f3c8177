"""Standard documents (what a team publishes) and the reports built from them.

A document is validated once, when it is published; stored versions are read back with
``StandardDocument.model_validate``. Every model forbids unknown keys, so a typo in a standard
("alowed") is an error, not a rule that silently constrains nothing.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from tuneboard.db.models import StandardVersion
from tuneboard.errors import InvalidInput
from tuneboard.schemas import UtcDatetime, View
from tuneboard.spec.catalog import PRUNERS, SAMPLERS
from tuneboard.spec.refs import REF_PATTERN, StandardRef
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
PARAM_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"

Scalar = str | bool | int | float
Op = Literal[">=", ">", "<=", "<", "=="]

BUDGET_KEYS = frozenset({"n_trials", "max_parallel", "timeout_s", "max_failed", "max_retries"})
EARLY_STOPPING_KEYS = frozenset({"monitor", "mode", "patience", "min_delta", "restore_best"})
RESOURCES_KEYS = frozenset({"queue", "device"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_number(value: object) -> float | None:
    """The value as a float when it is a JSON number (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def same_value(a: object, b: object) -> bool:
    """Equality where 1 == 1.0 but True != 1 (JSON and YAML keep booleans apart from numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        return x == y
    return a == b


class RangeSpec(_Strict):
    low: JsonFloat
    high: JsonFloat
    log: JsonBool = False

    @model_validator(mode="after")
    def _check(self) -> RangeSpec:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got {self.low}")
        return self

    def contains(self, value: float) -> bool:
        return _at_least(value, self.low) and _at_least(self.high, value)

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")


def _at_least(a: float, b: float) -> bool:
    """``a >= b``, forgiving the last-digit noise of floats written in YAML or JSON."""
    return a >= b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


class Rule(_Strict):
    """A constraint on one parameter: the values it may take (``allowed``) or the interval it
    may span (``range``), and optionally the value to use when a study says nothing of it."""

    param: str = Field(pattern=PARAM_PATTERN)
    allowed: list[Scalar] | None = Field(default=None, min_length=1)
    range: RangeSpec | None = None
    default: Scalar | None = None
    rationale: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.allowed is not None and self.range is not None:
            raise ValueError(f"rule {self.param!r}: give either allowed or range, not both")
        if self.allowed is None and self.range is None and self.default is None:
            raise ValueError(
                f"rule {self.param!r} constrains nothing: give allowed, range or default"
            )
        if self.allowed is not None:
            for i, value in enumerate(self.allowed):
                if any(same_value(value, other) for other in self.allowed[:i]):
                    raise ValueError(f"rule {self.param!r}: allowed lists {value!r} twice")
        if self.default is not None and not self.admits(self.default):
            raise ValueError(
                f"rule {self.param!r}: default {self.default!r} is outside its own "
                + (
                    f"allowed values {self.allowed}"
                    if self.allowed is not None
                    else f"range {self.range}"
                )
            )
        return self

    def admits(self, value: object) -> bool:
        """Whether a single (fixed) value satisfies the rule."""
        if self.allowed is not None:
            return any(same_value(value, a) for a in self.allowed)
        if self.range is not None:
            number = as_number(value)
            return number is not None and math.isfinite(number) and self.range.contains(number)
        return True


StabilityTest = Literal["t", "wilcoxon"]


def wilcoxon_min_seeds(confidence: float) -> int:
    """The fewest seed runs with which the signed-rank bound exists at ``confidence``.

    With n runs the smallest one-sided p-value the exact signed-rank test can give is 2**-n (all
    n differences on one side), so a bound at confidence c needs 2**-n <= 1 - c: 5 runs for
    0.95, 7 for 0.99.
    """
    return max(1, math.ceil(math.log2(1.0 / (1.0 - confidence)) - 1e-9))


class StabilitySpec(_Strict):
    """Evidence over ``seeds`` runs of the same parameters (the trial and ``seeds - 1`` re-runs).

    ``max_std``: the metric's sample standard deviation is at most this. ``min_mean`` /
    ``max_mean``: the metric's centre clears the threshold with ``confidence``, by a one-sided
    bound: ``test: t`` bounds the mean (Student's t), ``test: wilcoxon`` the pseudo-median (the
    Hodges-Lehmann bound that inverts the exact signed-rank test). ``confidence`` and ``test``
    apply to ``min_mean`` / ``max_mean`` only.
    """

    metric: str = Field(min_length=1, max_length=100)
    seeds: JsonInt = Field(ge=2, le=100)
    max_std: JsonFloat | None = Field(default=None, ge=0)
    min_mean: JsonFloat | None = None
    max_mean: JsonFloat | None = None
    confidence: JsonFloat = Field(default=0.95, gt=0.5, lt=1.0)
    test: StabilityTest = "t"

    @field_validator("max_std", "min_mean", "max_mean")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _check(self) -> StabilitySpec:
        if self.max_std is None and self.min_mean is None and self.max_mean is None:
            raise ValueError(
                f"stability of {self.metric!r} asks nothing: give max_std, min_mean or max_mean"
            )
        if self.min_mean is not None and self.max_mean is not None:
            raise ValueError(
                "give min_mean or max_mean, not both: each is a one-sided bound at the stated "
                "confidence; write two stability criteria for a band"
            )
        if self.mean_threshold is not None and self.test == "wilcoxon":
            least = wilcoxon_min_seeds(self.confidence)
            if self.seeds < least:
                raise ValueError(
                    f"a one-sided Wilcoxon bound at confidence {self.confidence:g} needs seeds "
                    f">= {least}: with n runs the exact signed-rank test cannot go below a "
                    f"p-value of 2**-n; got seeds {self.seeds}"
                )
        return self

    @property
    def mean_threshold(self) -> float | None:
        return self.min_mean if self.min_mean is not None else self.max_mean


class MetricCriterion(_Strict):
    """``metric op value``, evaluated on the trial's final metrics."""

    metric: str = Field(min_length=1, max_length=100)
    op: Op
    value: JsonFloat

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class StabilityCriterion(_Strict):
    """The metric over ``seeds`` runs of the trial's parameters: its spread, its centre or both
    (see :class:`StabilitySpec`)."""

    stability: StabilitySpec


# Each member is a model loaded and run by one worker: a bound on what one ensemble costs.
MAX_ENSEMBLE_SIZE = 20


class EnsembleSpec(_Strict):
    """An ensemble of the study's ``k`` best accepted trials must improve on the best of them
    alone by at least ``min_gain``, in the study's direction (see ``acceptance.py``)."""

    k: JsonInt = Field(ge=2, le=MAX_ENSEMBLE_SIZE)
    min_gain: JsonFloat = 0.0

    @field_validator("min_gain")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("min_gain must be a finite number")
        return value


class EnsembleCriterion(_Strict):
    """A study-level criterion: judged once per finished study, never per trial."""

    ensemble: EnsembleSpec


def _criterion_kind(value: Any) -> str:
    if isinstance(value, dict):
        return next((kind for kind in ("stability", "ensemble") if kind in value), "metric")
    if isinstance(value, EnsembleCriterion):
        return "ensemble"
    return "stability" if isinstance(value, StabilityCriterion) else "metric"


Criterion = Annotated[
    Annotated[MetricCriterion, Tag("metric")]
    | Annotated[StabilityCriterion, Tag("stability")]
    | Annotated[EnsembleCriterion, Tag("ensemble")],
    Discriminator(_criterion_kind),
]


class StandardDefaults(_Strict):
    """Spec sections merged into a study where the study is silent (see ``defaults.py``).

    Sections stay plain dicts: a partial section (``budget: {max_retries: 2}``) is the point, and
    the merged spec is validated as a whole by the study schema. Keys with a known, closed shape
    are checked here so that a bad standard fails when it is published, not at every submission.
    """

    sampler: dict[str, Any] | None = None
    pruner: dict[str, Any] | None = None
    early_stopping: dict[str, Any] | None = None
    callbacks: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    fixed: dict[str, Any] | None = None

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "type" in value and value["type"] not in SAMPLERS:
            raise ValueError(f"unknown sampler {value['type']!r}; one of {', '.join(SAMPLERS)}")
        return value

    @field_validator("pruner")
    @classmethod
    def _pruner(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "type" in value and value["type"] not in PRUNERS:
            raise ValueError(f"unknown pruner {value['type']!r}; one of {', '.join(PRUNERS)}")
        return value

    @field_validator("early_stopping")
    @classmethod
    def _early_stopping(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        _known_keys(value, EARLY_STOPPING_KEYS)
        if "mode" in value and value["mode"] not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {value['mode']!r}")
        if "patience" in value and not (_is_int(value["patience"]) and value["patience"] >= 0):
            raise ValueError(f"patience must be an integer >= 0, got {value['patience']!r}")
        return value

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        _known_keys(value, BUDGET_KEYS)
        for key, item in value.items():
            least = 0 if key in ("max_failed", "max_retries") else 1
            if not (is_number(item) and item >= least and (key == "timeout_s" or _is_int(item))):
                kind = "a number" if key == "timeout_s" else "an integer"
                raise ValueError(f"{key} must be {kind} >= {least}, got {item!r}")
        return value

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _known_keys(value, RESOURCES_KEYS)
        return value

    def sections(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if isinstance(v, dict)}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _known_keys(value: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )


class StandardDocument(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    rules: list[Rule] = Field(default_factory=list)
    defaults: StandardDefaults = Field(default_factory=StandardDefaults)
    acceptance: list[Criterion] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_params(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.param in seen:
                raise ValueError(
                    f"rules[{i}]: a second rule for {rule.param!r}; one rule per param"
                )
            seen.add(rule.param)
        return rules

    @model_validator(mode="after")
    def _fixed_defaults_obey_rules(self) -> StandardDocument:
        for param, value in (self.defaults.fixed or {}).items():
            rule = self.rule(param)
            if rule is None:
                continue
            if not rule.admits(value):
                raise ValueError(f"defaults.fixed.{param}: {value!r} breaks rule {param!r}")
            if rule.default is not None and not same_value(rule.default, value):
                raise ValueError(
                    f"defaults.fixed.{param} ({value!r}) disagrees with rule {param!r}'s "
                    f"default ({rule.default!r}); give one value"
                )
        return self

    @field_validator("acceptance")
    @classmethod
    def _one_ensemble(cls, criteria: list[Criterion]) -> list[Criterion]:
        if sum(isinstance(c, EnsembleCriterion) for c in criteria) > 1:
            raise ValueError("a second ensemble criterion; a study is judged by one ensemble")
        return criteria

    def rule(self, param: str) -> Rule | None:
        return next((r for r in self.rules if r.param == param), None)

    @property
    def ensemble(self) -> EnsembleSpec | None:
        """The study-level ensemble criterion, when the acceptance asks for one."""
        return next((c.ensemble for c in self.acceptance if isinstance(c, EnsembleCriterion)),
                    None)


def parse_document(data: Any) -> StandardDocument:
    """Validate a document from YAML or JSON; errors become one 422 listing each field."""
    try:
        return StandardDocument.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": _field_path(err["loc"]), "reason": err["msg"].removeprefix("Value error, ")}
            for err in exc.errors(include_url=False)
        ]
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        raise InvalidInput(f"invalid standard: {summary}", errors) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    """Dotted path of an error, without the criterion kind pydantic inserts after an index."""
    parts = [
        str(part)
        for i, part in enumerate(loc)
        if not (i >= 2 and loc[i - 2] == "acceptance" and isinstance(loc[i - 1], int))
    ]
    return ".".join(parts) or "document"


_PARSED_DOCUMENTS_KEPT = 256
_parsed_documents: dict[tuple[int, str], StandardDocument] = {}


def document_of(version: StandardVersion) -> StandardDocument:
    """The version's document as a model. A published version never changes, so each parse is
    kept (by id and content, as one process may see several databases) and shared by every
    caller: read it, never change it."""
    key = (version.id, json.dumps(version.document, sort_keys=True))
    document = _parsed_documents.get(key)
    if document is None:
        if len(_parsed_documents) >= _PARSED_DOCUMENTS_KEPT:
            _parsed_documents.clear()
        document = _parsed_documents[key] = StandardDocument.model_validate(version.document)
    return document


def version_ref(version: StandardVersion) -> str:
    return str(StandardRef(version.standard.name, version.version))


class StandardBody(StandardDocument):
    """Body of POST /standards and POST /standards/{name}/versions: the standard document, as
    written in YAML, with an optional changelog line for the version it becomes."""

    changelog: str = Field(
        default="", max_length=2000, description="One line on what this version changes."
    )

    def document(self) -> StandardDocument:
        return StandardDocument.model_validate(self.model_dump(exclude={"changelog"}))


class StandardVersionOut(View):
    """One immutable version of a standard: its document, author, changelog and status."""

    name: str
    version: int
    status: Literal["active", "deprecated"]
    author: str
    changelog: str
    created_at: UtcDatetime
    document: StandardDocument

    @classmethod
    def of(cls, version: StandardVersion) -> StandardVersionOut:
        return cls.model_validate(
            {
                "name": version.standard.name,
                "version": version.version,
                "status": version.status,
                "author": version.author,
                "changelog": version.changelog,
                "created_at": version.created_at,
                "document": version.document,
            }
        )


class VersionSummary(View):
    """A version as the list of a standard's versions shows it (without its document)."""

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


class StandardDetail(StandardVersionOut):
    """The newest version of a standard, and its versions oldest first."""

    versions: list[VersionSummary]
    versions_next_cursor: str | None = Field(
        None,
        description="More versions than fit here: pass as ?cursor= to "
        "GET /standards/{name}/versions.",
    )

    @classmethod
    def of_standard(
        cls, latest: StandardVersion, versions: list[StandardVersion], next_cursor: str | None
    ) -> StandardDetail:
        return cls(
            **StandardVersionOut.of(latest).model_dump(),
            versions=[VersionSummary.of(v) for v in versions],
            versions_next_cursor=next_cursor,
        )


class CheckRequest(_Strict):
    """Body of POST /standards/check."""

    standard: str = Field(min_length=1, max_length=250, pattern=REF_PATTERN)
    spec: dict[str, Any]


class Violation(BaseModel):
    rule: str
    field: str
    reason: str
    rationale: str
    allowed: list[Scalar] | None = None
    range: RangeSpec | None = None
    found: Any = None


class CheckReport(BaseModel):
    """``ok``: the spec keeps every rule. ``admissible``: a study may be created from it (ok, or
    it carries an override reason, which is then recorded on the study)."""

    ok: bool
    admissible: bool
    standard: str
    status: Literal["active", "deprecated"]
    violations: list[Violation] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    defaults_applied: list[str] = Field(default_factory=list)
    override: str | None = None


class CriterionResult(BaseModel):
    kind: Literal["metric", "stability"]
    metric: str
    op: str
    threshold: float
    observed: float | None
    passed: bool
    pending: bool = False
    detail: str = ""
    # A stability criterion's min_mean / max_mean: the one-sided confidence interval of the
    # metric's centre (None on its open side), over ``n`` runs, at ``confidence``, by ``test``.
    interval: tuple[float | None, float | None] | None = None
    n: int | None = None
    confidence: float | None = None
    test: StabilityTest | None = None

    @field_serializer("observed")
    def _json_safe(self, value: float | None) -> float | str | None:
        if value is None or math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


class EnsembleVerdict(BaseModel):
    """A finished study's judgement against its standard's ensemble criterion, stored on the
    ensemble it asked for. ``observed_gain``: the ensemble's improvement on its best member in
    the study's direction; ``reason`` says why it failed when it could not be judged."""

    criterion: str
    k: int
    min_gain: float
    observed_gain: float | None = None
    passed: bool = False
    pending: bool = True
    reason: str = ""
    standard: str | None = None


class Verdict(BaseModel):
    """A trial's judgement against a standard's acceptance criteria; ``model_dump()`` is JSON-safe
    (non-finite observations are written as "nan"/"inf"/"-inf", as everywhere in the store)."""

    accepted: bool
    pending: bool
    criteria: list[CriterionResult] = Field(default_factory=list)
    standard: str | None = None
    note: str = ""


class FieldChange(BaseModel):
    before: Any = None
    after: Any = None


class RuleChange(BaseModel):
    param: str
    changes: dict[str, FieldChange]


class RulesDiff(BaseModel):
    added: list[Rule] = Field(default_factory=list)
    removed: list[Rule] = Field(default_factory=list)
    changed: list[RuleChange] = Field(default_factory=list)


class PathChange(BaseModel):
    path: str
    kind: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


class AcceptanceDiff(BaseModel):
    added: list[Criterion] = Field(default_factory=list)
    removed: list[Criterion] = Field(default_factory=list)


class StandardDiff(BaseModel):
    name: str
    from_version: int | None = None
    to_version: int | None = None
    description: FieldChange | None = None
    rules: RulesDiff = Field(default_factory=RulesDiff)
    defaults: list[PathChange] = Field(default_factory=list)
    acceptance: AcceptanceDiff = Field(default_factory=AcceptanceDiff)

    @property
    def empty(self) -> bool:
        return not (
            self.description
            or self.rules.added
            or self.rules.removed
            or self.rules.changed
            or self.defaults
            or self.acceptance.added
            or self.acceptance.removed
        )

    def summary(self) -> dict[str, Any]:
        """A compact account for the audit log."""
        return {
            "description": self.description is not None,
            "rules_added": [r.param for r in self.rules.added],
            "rules_removed": [r.param for r in self.rules.removed],
            "rules_changed": [c.param for c in self.rules.changed],
            "defaults_changed": [c.path for c in self.defaults],
            "acceptance_added": len(self.acceptance.added),
            "acceptance_removed": len(self.acceptance.removed),
        }
