"""Whole-batch augmentation during training: the batch's symmetries in three batched selections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from svetlana_core.patches.symmetry import apply_symmetries, compose_turns
from svetlana_core.training.config import check_augment


class BatchAugment:
    """Augment a whole batch ``(N, C, [planes,] rows, columns)`` at once.

    Flips, rot90 and flip_planes of a :mod:`svetlana_core.patches.augment` spec are drawn per
    patch and applied to the whole batch by :func:`svetlana_core.patches.symmetry.apply_symmetries`;
    extra albumentations transforms, when the spec has any, run patch by patch through
    :func:`svetlana_core.patches.augment.augment_batch` first (albumentations is imported only
    then).

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
        self.spec = check_augment(spec, image_channels, patch_shape)
        self._extra = None
        if self.spec["transforms"]:
            from svetlana_core.patches import augment

            self._extra = augment.build_augment(
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
            from svetlana_core.patches import augment

            x = torch.from_numpy(augment.augment_batch(self._extra, x.numpy(), self._rng))
        n = x.shape[0]
        planes = self._draw(n) if self.spec["flip_planes"] and x.ndim == 5 else None
        rows = columns = transpose = None
        if self.spec["flips"]:
            rows, columns = self._draw(n), self._draw(n)
        if self.spec["rot90"]:
            square = x.shape[-1] == x.shape[-2]
            if square and self.spec["flips"]:
                # With random flips of rows and columns, a random transpose completes the 8
                # symmetries of the square uniformly: one draw instead of a quarter turn.
                transpose = self._draw(n)
            else:
                turns = torch.randint(4, (n,), generator=self._generator)
                if not square:
                    turns = 2 * (turns % 2)  # 0 or 180 degrees keep the shape
                rows, columns, transpose = compose_turns(rows, columns, turns)
        return apply_symmetries(x, planes, rows, columns, transpose).contiguous()
