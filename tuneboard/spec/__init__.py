"""The vocabulary of Tuneboard, a leaf package: it imports nothing else of ``tuneboard``.

Everything above it (optimization, standards, studies, api, workers) speaks these types: the
study spec split by subject (``space``, ``objective``, ``search``, ``trainer``, ``budget``,
``study``), the ``catalog`` of what the built-in trainer implements, study and trial states,
standard references and the canonical hash.
"""

from tuneboard.spec import catalog
from tuneboard.spec.budget import BudgetSpec, ResourcesSpec
from tuneboard.spec.hashing import canonical_hash, spec_hash
from tuneboard.spec.objective import Direction, LRScalingSpec, ObjectiveSpec, ValidationSpec
from tuneboard.spec.refs import StandardRef
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt
from tuneboard.spec.search import (
    CONSTRAINED_SAMPLERS,
    MULTI_OBJECTIVE_SAMPLERS,
    AcceptanceBound,
    PrunerSpec,
    SamplerSpec,
    SearchSpec,
)
from tuneboard.spec.space import (
    MAX_GRID_SIZE,
    AnyParam,
    CategoricalParam,
    ChoiceValue,
    FloatParam,
    IntParam,
    ParamSpec,
    condition_holds,
    dependency_order,
)
from tuneboard.spec.states import StudyState, TrialState
from tuneboard.spec.stopping import StoppingSpec, TerminatorSpec
from tuneboard.spec.study import EXAMPLE_SPEC, OverrideSpec, StudySpec
from tuneboard.spec.trainer import (
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MONITOR,
    DEFAULT_PATIENCE,
    DEFAULT_VALIDATION_FRACTION,
    TRAINER_PARAM_DEFAULTS,
    CallbacksSpec,
    CheckpointKind,
    CheckpointSpec,
    EarlyStoppingSpec,
    LRScheduleSpec,
    TrainerParams,
)
from tuneboard.spec.warm_start import WarmStartSpec

__all__ = [
    "CONSTRAINED_SAMPLERS",
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_MONITOR",
    "DEFAULT_PATIENCE",
    "DEFAULT_VALIDATION_FRACTION",
    "EXAMPLE_SPEC",
    "MAX_GRID_SIZE",
    "MULTI_OBJECTIVE_SAMPLERS",
    "TRAINER_PARAM_DEFAULTS",
    "AcceptanceBound",
    "AnyParam",
    "BudgetSpec",
    "CallbacksSpec",
    "CategoricalParam",
    "CheckpointKind",
    "CheckpointSpec",
    "ChoiceValue",
    "Direction",
    "EarlyStoppingSpec",
    "FloatParam",
    "IntParam",
    "JsonBool",
    "JsonFloat",
    "JsonInt",
    "LRScalingSpec",
    "LRScheduleSpec",
    "ObjectiveSpec",
    "OverrideSpec",
    "ParamSpec",
    "PrunerSpec",
    "ResourcesSpec",
    "SamplerSpec",
    "SearchSpec",
    "StandardRef",
    "StoppingSpec",
    "StudySpec",
    "StudyState",
    "TerminatorSpec",
    "TrainerParams",
    "TrialState",
    "ValidationSpec",
    "WarmStartSpec",
    "canonical_hash",
    "catalog",
    "condition_holds",
    "dependency_order",
    "spec_hash",
]
