"""Image augmentation parameters in a study spec: checked values, image-shaped data only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tuneboard.spec import StudySpec, TrainerParams, catalog


def builtin_spec(dataset: str, **sections: Any) -> dict[str, Any]:
    return {
        "name": "aug",
        "objective": {"builtin": "classifier", "dataset": dataset, "metric": "val_accuracy",
                      "direction": "maximize"},
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
        "budget": {"n_trials": 2},
        **sections,
    }


def problems(raw: dict[str, Any]) -> dict[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        StudySpec.model_validate(raw)
    return {tuple(e["loc"]): e["msg"] for e in caught.value.errors()}


def test_every_augmentation_parameter_is_a_trainer_parameter_and_off_by_default() -> None:
    defaults = TrainerParams()
    for name in catalog.IMAGE_AUGMENTATION_PARAMS:
        assert name in catalog.PARAM_BOUNDS
    assert (defaults.aug_crop_pad, defaults.aug_shift, defaults.aug_rotate_deg,
            defaults.aug_flip_p) == (0, 0, 0.0, 0.0)


def test_digits_takes_augmentation_tuned_and_fixed() -> None:
    spec = StudySpec.model_validate(builtin_spec(
        "digits",
        search_space={"aug_rotate_deg": {"type": "float", "low": 0, "high": 20},
                      "aug_shift": {"type": "int", "low": 0, "high": 2},
                      "aug_flip_p": {"type": "float", "low": 0, "high": 0.5}},
        fixed={"aug_crop_pad": 1, "aug_crop_p": 0.5},
    ))
    assert set(spec.search_space) == {"aug_rotate_deg", "aug_shift", "aug_flip_p"}


@pytest.mark.parametrize(
    ("sections", "loc"),
    [
        ({"fixed": {"aug_shift": 2}}, ("fixed", "aug_shift")),
        ({"fixed": {"aug_rotate_deg": 10.0, "aug_rotate_p": 0.5}}, ("fixed", "aug_rotate_deg")),
        ({"search_space": {"aug_flip_p": {"type": "float", "low": 0, "high": 1}}},
         ("search_space", "aug_flip_p")),
    ],
)
def test_tabular_data_refuses_augmentation(sections: dict[str, Any], loc: tuple[str, ...]) -> None:
    found = problems(builtin_spec("iris", **sections))
    assert "image augmentation needs image-shaped data (digits)" in found[loc]


def test_tabular_data_takes_augmentation_left_off() -> None:
    StudySpec.model_validate(builtin_spec("iris", fixed={"aug_shift": 0, "aug_flip_p": 0}))


@pytest.mark.parametrize(
    ("fixed", "loc", "reason"),
    [
        ({"aug_shift": 1.5}, ("fixed", "aug_shift"), "whole number"),
        ({"aug_rotate_p": 1.5}, ("fixed", "aug_rotate_p"), "at most 1"),
        ({"aug_rotate_deg": 270}, ("fixed", "aug_rotate_deg"), "at most 180"),
        ({"aug_crop_pad": -1}, ("fixed", "aug_crop_pad"), "at least 0"),
    ],
)
def test_augmentation_values_are_checked(
    fixed: dict[str, Any], loc: tuple[str, ...], reason: str
) -> None:
    assert reason in problems(builtin_spec("digits", fixed=fixed))[loc]


def test_a_search_range_outside_the_bounds_is_refused() -> None:
    found = problems(builtin_spec(
        "digits", search_space={"aug_flip_p": {"type": "float", "low": 0.5, "high": 2}}
    ))
    assert "at most 1" in found[("search_space", "aug_flip_p", "high")]
