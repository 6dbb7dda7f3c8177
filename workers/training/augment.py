"""Image augmentation of training batches: random crop, shift, rotation and horizontal flip.

Plain torch ops (no torchvision), on a batch of standardised images ``(n, c, h, w)`` on any
device. Each sample is augmented independently: every transform applies to a sample with its
own probability and draws its own magnitude, uniformly up to the maximum. The draws come from a
seeded CPU generator whose state is checkpointed, so a resumed trial augments the same way.

Filling what a transform uncovers: the crop pads with zeros, as ``RandomCrop(padding=...)``
does, which on standardised features is the training mean; the shift and the rotation repeat
the border pixels, which on digit-like images is the background.

Only training batches are augmented; evaluation always sees the images as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ImageAugment", "ImageAugmentSpec"]


@dataclass(frozen=True)
class ImageAugmentSpec:
    """Maxima and probabilities: ``crop_pad`` and ``shift`` in pixels, ``rotate_deg`` in
    degrees either way; a transform is on when its maximum and its probability are above 0."""

    crop_pad: int = 0
    crop_p: float = 1.0
    shift: int = 0
    shift_p: float = 1.0
    rotate_deg: float = 0.0
    rotate_p: float = 1.0
    flip_p: float = 0.0

    @property
    def active(self) -> bool:
        return (
            (self.crop_pad > 0 and self.crop_p > 0)
            or (self.shift > 0 and self.shift_p > 0)
            or (self.rotate_deg > 0 and self.rotate_p > 0)
            or self.flip_p > 0
        )


class ImageAugment:
    """Applies an :class:`ImageAugmentSpec` to a batch: ``augment(x)`` returns a new batch of
    the same shape, dtype and device (``x`` itself is never changed)."""

    def __init__(self, spec: ImageAugmentSpec, seed: int) -> None:
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"image augmentation needs (n, c, h, w) batches, got {tuple(x.shape)}")
        s = self.spec
        if s.crop_pad > 0 and s.crop_p > 0:
            x = self._translate(x, s.crop_pad, s.crop_p, fill_border=False)
        if s.shift > 0 and s.shift_p > 0:
            x = self._translate(x, s.shift, s.shift_p, fill_border=True)
        if s.rotate_deg > 0 and s.rotate_p > 0:
            x = self._rotate(x, s.rotate_deg, s.rotate_p)
        if s.flip_p > 0:
            flip = self._chosen(len(x), s.flip_p).to(x.device).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        return x

    def _chosen(self, n: int, p: float) -> torch.Tensor:
        """Which of ``n`` samples a transform of probability ``p`` applies to."""
        return torch.rand(n, generator=self.generator) < p

    def _offsets(self, n: int, most: int, p: float) -> torch.Tensor:
        """Whole-pixel offsets in ``[-most, most]``, 0 for the samples not chosen."""
        offsets = torch.randint(-most, most + 1, (n,), generator=self.generator)
        return torch.where(self._chosen(n, p), offsets, 0)

    def _translate(
        self, x: torch.Tensor, most: int, p: float, *, fill_border: bool
    ) -> torch.Tensor:
        """Move each chosen image by whole pixels: ``out[i, j] = x[i - dy, j - dx]``.

        Equivalent to padding by ``most`` and cropping ``h x w`` at a random place; uncovered
        pixels repeat the border (``fill_border``) or are 0.
        """
        n, _, h, w = x.shape
        dy = self._offsets(n, most, p).to(x.device)
        dx = self._offsets(n, most, p).to(x.device)
        rows = torch.arange(h, device=x.device).view(1, h) - dy.view(n, 1)
        cols = torch.arange(w, device=x.device).view(1, w) - dx.view(n, 1)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        r, c = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
        # Advanced indexing around the channel slice puts the indexed dims first: (n, h, w, c).
        out = x[batch, :, r.view(n, h, 1), c.view(n, 1, w)].permute(0, 3, 1, 2)
        if not fill_border:
            inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & (
                (cols >= 0) & (cols < w)
            ).view(n, 1, 1, w)
            out = out * inside.to(out.dtype)
        return out.contiguous()

    def _rotate(self, x: torch.Tensor, most_deg: float, p: float) -> torch.Tensor:
        """Rotate each chosen image about its centre by up to ``most_deg`` degrees (bilinear)."""
        n = len(x)
        angle = (torch.rand(n, generator=self.generator) * 2 - 1) * math.radians(most_deg)
        angle = torch.where(self._chosen(n, p), angle, 0.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(angle)
        theta = torch.stack(
            [torch.stack([cos, -sin, zero], dim=1), torch.stack([sin, cos, zero], dim=1)], dim=1
        ).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        rotated = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                align_corners=False)
        # Samples left unrotated stay exactly as they were (bilinear at angle 0 is exact only
        # up to rounding).
        keep = (angle == 0).to(x.device).view(-1, 1, 1, 1)
        return torch.where(keep, x, rotated)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
