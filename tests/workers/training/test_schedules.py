from __future__ import annotations

import pytest

from tuneboard.spec.catalog import LR_SCHEDULES
from workers.training import TrainingConfigError, build_schedule
from workers.training.optimizers import scaled_lr


def factors(name: str, epochs: int = 6, warmup: int = 0, **options: float) -> list[float]:
    schedule = build_schedule(name, options, max_epochs=epochs, warmup_epochs=warmup)
    return [schedule.factor(e) for e in range(1, epochs + 1)]


def test_constant_and_step() -> None:
    assert factors("constant") == [1.0] * 6
    assert factors("step", step_size=2, gamma=0.5) == [1, 1, 0.5, 0.5, 0.25, 0.25]


def test_cosine_and_linear_decay_from_one() -> None:
    cosine, linear = factors("cosine", 4), factors("linear", 4)
    assert cosine == pytest.approx([1.0, 0.853553, 0.5, 0.146447], abs=1e-6)
    assert linear == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_inverse_sqrt() -> None:
    assert factors("inverse_sqrt", 4) == pytest.approx([1.0, 0.707107, 0.57735, 0.5], abs=1e-6)


@pytest.mark.parametrize("name", [s for s in LR_SCHEDULES if s != "reduce_on_plateau"])
def test_warmup_rises_linearly_then_hands_over(name: str) -> None:
    with_warmup = factors(name, 6, warmup=2, step_size=1, gamma=0.5)
    assert with_warmup[:2] == pytest.approx([1 / 3, 2 / 3])
    assert with_warmup[2] == 1.0


def test_unknown_schedule_is_a_config_error() -> None:
    with pytest.raises(TrainingConfigError, match=r"callbacks\.lr_schedule\.type"):
        build_schedule("exponential", {}, max_epochs=3)


def test_lr_scaling_rules() -> None:
    assert scaled_lr(0.1, 512, "linear", 256) == pytest.approx(0.2)
    assert scaled_lr(0.1, 64, "sqrt", 256) == pytest.approx(0.05)
    assert scaled_lr(0.1, 64, None, 1) == 0.1
    with pytest.raises(TrainingConfigError, match=r"lr_scaling\.rule"):
        scaled_lr(0.1, 64, "cubic", 256)
