"""The light-weight CNN of the Svetlana paper, 2D or 3D."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """The Svetlana paper's light-weight CNN, 2D or 3D.

    ``depth`` blocks of convolution (``width`` filters, ``kernel`` wide, same padding, no bias)
    -> BatchNorm -> ReLU -> max-pool 2, then global average pooling -> dropout -> linear.

    Parameters
    ----------
    in_channels, n_classes : int
        Input channels (image channels + mask channel) and classes.
    spatial_dims : {2, 3}
        Convolution dimensionality.
    depth, width, kernel, dropout
        See :data:`ARCHITECTURES` ``["cnn"]``.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        spatial_dims: int = 2,
        depth: int = 3,
        width: int = 32,
        kernel: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        conv, norm, pool, gap = {
            2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
            3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
        }[spatial_dims]
        blocks = []
        channels = in_channels
        for _ in range(depth):
            blocks.append(
                nn.Sequential(
                    conv(channels, width, kernel, padding=kernel // 2, bias=False),
                    norm(width),
                    # not in-place, so Grad-CAM hooks on it see the activation unchanged
                    nn.ReLU(),
                    pool(2),
                )
            )
            channels = width
        self.features = nn.Sequential(*blocks)
        self.pool = gap(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of a batch ``(N, C, [planes,] rows, columns)``."""
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))
