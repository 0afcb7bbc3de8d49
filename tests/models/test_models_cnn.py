"""svetlana_core.models.cnn: the paper's light-weight CNN, 2D and 3D."""

import pytest
import torch
from torch import nn

from svetlana_core.models import ORIGINAL_CNN, build_model, count_parameters


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cnn_3d(depth):
    model = build_model("cnn", 2, 3, spatial_dims=3, depth=depth, width=8).eval()
    assert isinstance(model.features[0][0], nn.Conv3d)
    assert model(torch.randn(2, 2, 8, 16, 16)).shape == (2, 3)
    assert all(p.requires_grad for p in model.parameters())

def test_original_config_is_two_conv_layers_of_16_filters():
    model = build_model("cnn", 2, 3, **ORIGINAL_CNN)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (2, 16, (3, 3)),
        (16, 16, (3, 3)),
    ]
    # conv 2*16*9 + BN 32 + conv 16*16*9 + BN 32 + linear 16*3 + 3
    assert count_parameters(model) == 288 + 32 + 2304 + 32 + 51

def test_cnn_width_stays_constant_and_kernel_is_used():
    model = build_model("cnn", 3, 4, depth=4, width=8, kernel=5, dropout=0.5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 8, 8]
    assert {c.kernel_size for c in convs} == {(5, 5)}
    assert model.dropout.p == 0.5
    assert model.classifier.out_features == 4

def test_a_patch_below_the_cnn_minimum_really_fails():
    model = build_model("cnn", 2, 3, depth=4).eval()
    model(torch.randn(2, 2, 16, 16))
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 2, 8, 8))
