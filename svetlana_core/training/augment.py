"""Whole-batch augmentation on the device during training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
import numpy as np
import torch  # noqa: E402
from svetlana_core.patches import augment as augment_module

# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


class BatchAugment:
    """Augment a whole batch ``(N, C, [planes,] rows, columns)`` at once.

    Flips, rot90 and flip_planes of an :mod:`svetlana_core.augment` spec are done as batched
    torch operations (a random choice per patch); extra albumentations transforms, when the
    spec has any, run patch by patch through :func:`svetlana_core.augment.augment_batch` first.

    Parameters
    ----------
    spec : dict or None
        Augmentation spec (validated here).
    image_channels : int
        Image channels of the patches (for the albumentations checks).
    patch_shape : tuple of int
        Spatial shape of the patches.
    seed : int
        Seeds this augmenter's own generators.
    """

    def __init__(self, spec: Mapping[str, Any] | None, image_channels: int,
                 patch_shape: tuple[int, ...], seed: int = 0) -> None:
        self.spec = augment_module.validate_augment_spec(spec, image_channels, patch_shape)
        self._extra = None
        if self.spec["transforms"]:
            self._extra = augment_module.build_augment(
                {"transforms": self.spec["transforms"]}, image_channels, patch_shape, seed=seed
            )
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def active(self) -> bool:
        """Whether the spec does anything."""
        s = self.spec
        return bool(s["flips"] or s["rot90"] or s["flip_planes"] or s["transforms"])

    def _draw(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self._generator) < 0.5

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """A new augmented batch (CPU tensor in, CPU tensor out); ``batch`` is not modified."""
        x = batch
        if self._extra is not None:
            x = torch.from_numpy(augment_module.augment_batch(self._extra, x.numpy(), self._rng))
        n = x.shape[0]
        per_sample = (n,) + (1,) * (x.ndim - 1)
        axes = []
        if self.spec["flip_planes"] and x.ndim == 5:
            axes.append(2)
        if self.spec["flips"]:
            axes += [x.ndim - 2, x.ndim - 1]
        for axis in axes:
            x = torch.where(self._draw(n).view(per_sample), x.flip(axis), x)
        if self.spec["rot90"]:
            square = x.shape[-1] == x.shape[-2]
            if square and self.spec["flips"]:
                # With random flips of rows and columns, a random transpose completes the 8
                # symmetries of the square uniformly: one batched op instead of three rot90s.
                x = torch.where(self._draw(n).view(per_sample), x.transpose(-1, -2), x)
            else:
                turns = torch.randint(4, (n,), generator=self._generator)
                if not square:
                    turns = 2 * (turns % 2)
                out = x.clone()
                for k in (1, 2, 3):
                    chosen = torch.nonzero(turns == k).squeeze(1)
                    if chosen.numel():
                        out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
                x = out
        return x.contiguous()
