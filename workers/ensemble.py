"""Evaluating an ensemble of a study's best trials (asked for in ``tuneboard.studies.ensemble``).

Each member is rebuilt as the trainer built it: the trial's parameters (sampled ones and the
study's ``fixed``) through :func:`workers.training.trainer.build_learner`, which also rebuilds
the study's validation split, the same for every trial since it depends only on the dataset and
``objective.validation`` (its seed included), never on the trial's seed. The member then takes
the weights of its ``best.pt`` checkpoint from the trial's checkpoint store. The ensemble
averages the members' class probabilities (classification) or predictions in the target's
units (regression) over the validation rows and is scored with the study metric, as each
member alone is.

Evaluating is deterministic and writes nothing but the ensemble's row, so a redelivered message
simply evaluates again; a finished ensemble is never evaluated twice. An ensemble a standard's
ensemble criterion asked for carries a pending verdict, settled in the same write as the result
(``tuneboard.standards.acceptance.judge_ensemble``); a failed evaluation fails the verdict with
the same reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from tuneboard.artifacts import open_store
from tuneboard.config import Settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import EnsembleState, Study
from tuneboard.objective import TrialContext
from tuneboard.optimization.params import external_params
from tuneboard.standards.acceptance import fail_ensemble, judge_ensemble
from tuneboard.standards.schemas import EnsembleVerdict
from tuneboard.studies import ensemble_repository as repo
from workers.results import describe_failure
from workers.training.callbacks import BEST_CHECKPOINT, load_checkpoint
from workers.training.config import TrainerConfig
from workers.training.datasets import Task, load_dataset
from workers.training.learner import EVAL_BATCH_SIZE, SupervisedLearner
from workers.training.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from workers.training.trainer import build_learner, resolve_device

__all__ = ["EnsembleResult", "Member", "evaluate", "run_ensemble"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One trial of the ensemble: its number, parameters, seed and best checkpoint's bytes."""

    number: int
    params: dict[str, Any]
    seed: int
    checkpoint: bytes


@dataclass(frozen=True)
class EnsembleResult:
    value: float
    best_single_value: float
    member_values: dict[int, float]

    @property
    def gain(self) -> float:
        return self.value - self.best_single_value


@dataclass(frozen=True)
class _Outputs:
    """One member's validation outputs: probabilities or predictions (target units)."""

    task: Task
    predictions: NDArray[np.float64]
    targets: NDArray[Any]
    target_std: float


def _outputs(config: Mapping[str, Any], member: Member, device: str) -> _Outputs:
    ctx = TrialContext(params=member.params, config=dict(config), seed=member.seed, device=device)
    cfg = TrainerConfig.from_context(ctx)
    torch.manual_seed(member.seed)
    dataset = load_dataset(
        cfg.dataset, options=cfg.dataset_options, target=cfg.target, task=cfg.task
    )
    learner = build_learner(cfg, dataset, cfg.hyper.lr, member.seed, resolve_device(device))
    if not isinstance(learner, SupervisedLearner):
        raise ValueError("cross-validated trials have no single validation split to ensemble on")
    learner.load_weights(load_checkpoint(member.checkpoint)["learner"]["model"])
    learner.model.eval()
    x, data = learner.data.x_val, learner.data
    with torch.no_grad():
        out = torch.cat([learner.model(x[i : i + EVAL_BATCH_SIZE])
                         for i in range(0, len(x), EVAL_BATCH_SIZE)]).double().cpu()
    y = data.y_val.detach().cpu().numpy()
    if dataset.task == "classification":
        return _Outputs("classification", torch.softmax(out, dim=-1).numpy(), y.astype(np.int64),
                        1.0)
    pred = out.squeeze(-1).numpy() * data.target_std + data.target_mean
    target = y.astype(np.float64) * data.target_std + data.target_mean
    return _Outputs("regression", pred, target, data.target_std)


def _score(metric: str, outputs: _Outputs, predictions: NDArray[np.float64]) -> float:
    """The validation metric ``metric`` (``val_loss``, ``val_<m>``) of ``predictions``; losses
    as the trainer reports them: cross-entropy, or squared error on the standardised target."""
    name = metric.removeprefix("val_")
    y = outputs.targets
    if outputs.task == "classification":
        if name == "loss":
            picked = predictions[np.arange(len(y)), y]
            return float(-np.log(np.clip(picked, 1e-12, None)).mean())
        return CLASSIFICATION_METRICS[name](y, predictions.astype(np.float32))
    if name == "loss":
        return float((((predictions - y) / outputs.target_std) ** 2).mean())
    return REGRESSION_METRICS[name](y.astype(np.float32), predictions.astype(np.float32))


def evaluate(
    config: Mapping[str, Any],
    members: Sequence[Member],
    *,
    metric: str,
    maximize: bool,
    device: str = "cpu",
) -> EnsembleResult:
    """Score the average of ``members``' validation outputs, and each member alone, by
    ``metric``. ``config`` is what the trainer reads besides the parameters (the spec's
    objective, early_stopping and callbacks)."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    outputs = [_outputs(config, member, device) for member in members]
    first = outputs[0]
    for member, out in zip(members[1:], outputs[1:], strict=True):
        if not np.array_equal(out.targets, first.targets):
            raise ValueError(
                f"trial {member.number} was validated on other rows than trial "
                f"{members[0].number}"
            )
    mean = np.mean([out.predictions for out in outputs], axis=0)
    singles = {m.number: _score(metric, out, out.predictions)
               for m, out in zip(members, outputs, strict=True)}
    finite = [v for v in singles.values() if math.isfinite(v)]
    best = (max(finite) if maximize else min(finite)) if finite else math.nan
    return EnsembleResult(_score(metric, first, mean), best, singles)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_ensemble(ensemble_id: int, settings: Settings) -> EnsembleState | None:
    """Evaluate the ensemble and record its result or why it failed; None when it is finished
    already (or gone). Never raises for a failure of the evaluation itself."""
    url = settings.database_url
    with session_scope(url) as session:
        if not repo.start_ensemble(session, ensemble_id):
            return None
        ensemble = repo.get_ensemble(session, ensemble_id)
        assert ensemble is not None
        study = session.get(Study, ensemble.study_id)
        assert study is not None
        spec = study.spec_model
        trials = repo.trials_by_number(session, study.id, list(ensemble.members))
        members = [(t.number, t.params, t.distributions, t.seed, t.checkpoint_path)
                   for t in trials]
        missing = sorted(set(ensemble.members) - {t.number for t in trials})
        metric, maximize = ensemble.metric, study.maximizes
        verdict = (EnsembleVerdict.model_validate(ensemble.verdict)
                   if ensemble.verdict is not None else None)
    try:
        if spec is None or missing:
            raise ValueError(f"the study no longer has trial(s) {missing}" if missing
                             else "the study has no spec")
        dumped = spec.model_dump(mode="json")
        config = {key: dumped[key] for key in ("objective", "early_stopping", "callbacks")}
        loaded = []
        for number, params, distributions, seed, where in members:
            if where is None:
                raise ValueError(f"trial {number} has no checkpoint location")
            store = open_store(where, s3_endpoint=settings.artifact_s3_endpoint)
            try:
                checkpoint = store.load(BEST_CHECKPOINT)
            except FileNotFoundError:
                raise ValueError(
                    f"trial {number} has no {BEST_CHECKPOINT} in {where}"
                ) from None
            loaded.append(Member(
                number, {**external_params(params, distributions), **spec.fixed},
                int(seed or 0), checkpoint,
            ))
        result = evaluate(config, loaded, metric=metric, maximize=maximize,
                          device=spec.resources.device)
        outcome: dict[str, Any] = {
            "state": EnsembleState.COMPLETE,
            "value": _finite(result.value),
            "best_single_value": _finite(result.best_single_value),
            "gain": _finite(result.gain),
            "member_values": {str(n): _finite(v) for n, v in result.member_values.items()},
        }
        if verdict is not None:
            verdict = judge_ensemble(verdict, outcome["gain"], maximize=maximize)
        log.info("ensemble %s of study %s: %s %.4g (best single %.4g)", ensemble_id,
                 study.id, metric, result.value, result.best_single_value)
    except Exception as exc:
        outcome = {"state": EnsembleState.FAILED, "error": describe_failure(exc)}
        log.info("ensemble %s failed: %s", ensemble_id, outcome["error"].splitlines()[0])
        if verdict is not None:
            verdict = fail_ensemble(verdict, outcome["error"].splitlines()[0])
    if verdict is not None:
        outcome["verdict"] = verdict.model_dump(mode="json")
    with session_scope(url) as session:
        repo.finish_ensemble(session, ensemble_id, finished_at=utcnow(), **outcome)
    return EnsembleState(outcome["state"])
