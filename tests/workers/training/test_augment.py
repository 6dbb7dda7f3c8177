"""Image augmentation: shapes kept, p=0 changes nothing, seeded, and a CNN trains with it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.workers.training.conftest import ContextFactory, Recorder
from workers.training import TrainingConfigError, load_checkpoint, train
from workers.training.augment import ImageAugment, ImageAugmentSpec

ONE_EACH = {
    "crop": ImageAugmentSpec(crop_pad=2),
    "shift": ImageAugmentSpec(shift=2),
    "rotate": ImageAugmentSpec(rotate_deg=30.0),
    "flip": ImageAugmentSpec(flip_p=1.0),
}


def batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spec", ONE_EACH.values(), ids=ONE_EACH.keys())
def test_shape_dtype_kept_and_input_untouched(spec: ImageAugmentSpec) -> None:
    x = batch()
    before = x.clone()
    out = ImageAugment(spec, seed=1)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, before)
    assert not torch.equal(out, x)


def test_probability_zero_is_the_identity() -> None:
    spec = ImageAugmentSpec(crop_pad=3, crop_p=0.0, shift=3, shift_p=0.0, rotate_deg=45.0,
                            rotate_p=0.0, flip_p=0.0)
    assert not spec.active
    x = batch()
    assert torch.equal(ImageAugment(spec, seed=1)(x), x)


def test_probability_one_changes_every_sample() -> None:
    x = batch(32)
    out = ImageAugment(ImageAugmentSpec(flip_p=1.0), seed=1)(x)
    assert torch.equal(out, x.flip(-1))
    rotated = ImageAugment(ImageAugmentSpec(rotate_deg=90.0), seed=1)(x)
    changed = (rotated - x).flatten(1).abs().amax(dim=1) > 1e-4
    assert changed.float().mean() > 0.9  # an angle near 0 may leave one almost as it was


def test_a_probability_between_applies_to_about_that_share() -> None:
    x = batch(400)
    out = ImageAugment(ImageAugmentSpec(flip_p=0.25), seed=3)(x)
    flipped = torch.isclose(out, x.flip(-1)).flatten(1).all(dim=1)
    kept = torch.equal(out[~flipped], x[~flipped])
    assert kept and 0.15 < flipped.float().mean() < 0.35


def test_shift_moves_whole_pixels_and_repeats_the_border() -> None:
    x = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).repeat(50, 1, 1, 1)
    out = ImageAugment(ImageAugmentSpec(shift=2), seed=0)(x)
    for image in out[:, 0]:
        # Every value is one of the original pixels, rows and columns stay monotone.
        assert set(image.flatten().tolist()) <= set(range(64))
        assert (image.diff(dim=0) >= 0).all() and (image.diff(dim=1) >= 0).all()


def test_crop_pads_with_zeros() -> None:
    x = torch.ones(64, 1, 8, 8)
    out = ImageAugment(ImageAugmentSpec(crop_pad=2), seed=0)(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    kept = out.sum(dim=(1, 2, 3))  # a (8 - |dy|) x (8 - |dx|) block of ones is left
    assert (kept >= 6 * 6).all() and (kept < 64).any()


def test_the_same_seed_augments_the_same_way() -> None:
    spec = ImageAugmentSpec(crop_pad=1, shift=2, rotate_deg=20.0, flip_p=0.5)
    x = batch(32)
    first, second = ImageAugment(spec, seed=5), ImageAugment(spec, seed=5)
    assert torch.equal(first(x), second(x))
    assert torch.equal(first(x), second(x))  # and the next batch too
    assert not torch.equal(ImageAugment(spec, seed=6)(x), ImageAugment(spec, seed=5)(x))


def test_state_round_trips() -> None:
    spec = ImageAugmentSpec(shift=2, flip_p=0.5)
    a = ImageAugment(spec, seed=1)
    a(batch())
    b = ImageAugment(spec, seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(batch()), b(batch()))


def test_flat_batches_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(n, c, h, w\)"):
        ImageAugment(ImageAugmentSpec(flip_p=1.0), seed=0)(torch.zeros(4, 64))


AUGMENTED = {"aug_crop_pad": 1, "aug_shift": 1, "aug_shift_p": 0.5, "aug_rotate_deg": 10.0,
             "aug_flip_p": 0.2}
DIGITS_CNN = {"dataset": "digits", "model": "cnn", "max_epochs": 3, "metric": "val_accuracy"}
SMALL_CNN = {"channels": 4, "hidden": 16, "batch_size": 64, "lr": 0.01}


def test_a_digits_cnn_trains_with_augmentation(make_ctx: ContextFactory) -> None:
    ctx = make_ctx(DIGITS_CNN, {**SMALL_CNN, **AUGMENTED})
    result = train(ctx)
    assert result["val_accuracy"] > 0.5
    plain = train(make_ctx(DIGITS_CNN, SMALL_CNN, checkpoint_dir=ctx.checkpoint_dir / "plain"))
    # Augmentation changes what the model trains on; evaluation is of the plain images.
    assert result["train_loss"] != plain["train_loss"]
    state = load_checkpoint(ctx.checkpoint_dir / "latest.pt")
    assert "augment" in state["learner"]


def test_an_augmented_trial_resumes_exactly(make_ctx: ContextFactory, tmp_path: Path) -> None:
    whole = train(make_ctx(DIGITS_CNN, {**SMALL_CNN, **AUGMENTED}, checkpoint_dir=tmp_path / "a"))
    crashed = make_ctx({**DIGITS_CNN}, {**SMALL_CNN, **AUGMENTED}, checkpoint_dir=tmp_path / "b")
    crashed.reporter = Recorder(raise_at=2, exc=RuntimeError("worker lost"))
    with pytest.raises(RuntimeError):
        train(crashed)
    retry = make_ctx(DIGITS_CNN, {**SMALL_CNN, **AUGMENTED}, checkpoint_dir=tmp_path / "b")
    retry.resume_from = tmp_path / "b" / "latest.pt"
    resumed = train(retry)
    assert math.isclose(resumed["val_loss"], whole["val_loss"], rel_tol=1e-6)


@pytest.mark.parametrize("param", ["aug_shift", "aug_rotate_deg", "aug_crop_pad", "aug_flip_p"])
def test_the_trainer_refuses_augmentation_of_flat_data(
    make_ctx: ContextFactory, param: str
) -> None:
    with pytest.raises(TrainingConfigError, match=rf"params\.{param}: image augmentation"):
        train(make_ctx({}, {param: 1}))
