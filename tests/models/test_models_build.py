"""svetlana_core.models.build: every architecture builds, runs and trains all its weights."""

import doctest

import pytest
import torch
from torch import nn

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.models import (
    ARCHITECTURES,
    ORIGINAL_CNN,
    SmallCNN,
    TorchvisionClassifier,
    architecture_params,
    build_model,
    count_parameters,
    feature_layer,
    min_patch_size,
)

# The big torchvision models take a few seconds each on two CPU cores.
_SLOW = {"resnet101", "resnet152", "densenet161", "densenet201"}


def _arch_params():
    return [
        pytest.param(name, marks=pytest.mark.slow) if name in _SLOW else name
        for name in ARCHITECTURES
    ]

@pytest.mark.parametrize("name", _arch_params())
@pytest.mark.parametrize("in_channels", [2, 4])
def test_every_architecture_runs_on_smallest_and_64_pixel_patches(name, in_channels):
    model = build_model(name, in_channels=in_channels, n_classes=3).eval()
    assert all(p.requires_grad for p in model.parameters())
    smallest = min_patch_size(name)
    with torch.no_grad():
        for size in (smallest, 64):
            logits = model(torch.randn(2, in_channels, size, size))
            assert logits.shape == (2, 3)
            assert torch.isfinite(logits).all()

@pytest.mark.parametrize("name", ["cnn", "resnet18", "densenet121", "alexnet"])
def test_training_step_reaches_every_parameter_at_the_smallest_patch(name):
    model = build_model(name, in_channels=2, n_classes=3).train()
    size = min_patch_size(name)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 2, size, size)), torch.tensor([0, 2]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())

def test_count_parameters_trainable_only():
    model = build_model("cnn", 2, 3, **ORIGINAL_CNN)
    model.classifier.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - 48

@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("cnn", {"depth": 7}, r"cnn depth=7 is out of range: choose an integer from 1 to 5"),
        ("cnn", {"depth": 0}, r"depth=0 is out of range"),
        ("cnn", {"depth": 2.5}, r"depth=2\.5 is out of range"),
        ("cnn", {"width": 129}, r"width=129 is out of range: choose an integer from 2 to 128"),
        ("cnn", {"kernel": 4}, r"kernel=4 is not valid: choose one of 3, 5, 7"),
        ("cnn", {"dropout": 0.95}, r"dropout=0\.95 is out of range: choose a number from 0\.0"),
        ("cnn", {"dropout": True}, r"dropout=True is out of range"),
        ("cnn", {"widht": 8}, r"parameter 'widht' \(did you mean 'width'\?\); valid: depth"),
        ("cnn", {"pretrained": "x.pth"}, r"cnn got unknown parameter 'pretrained'"),
        ("alexnet", {"small_input": True}, r"alexnet got unknown parameter 'small_input'"),
        ("resnet18", {"small_input": "yes"}, r"small_input='yes' is not valid: choose true"),
        ("resnet18", {"pretrained": 3}, r"pretrained=3 is not valid: give the path"),
        ("resnt18", {}, r"architecture 'resnt18' \(did you mean 'resnet18'\?\); valid: cnn"),
    ],
)
def test_invalid_parameters_raise(name, params, match):
    with pytest.raises(InputError, match=match):
        build_model(name, 2, 3, **params)

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, r"in_channels=0 is not valid: give an integer >= 1"),
        ({"n_classes": 1}, r"n_classes=1 is not valid: give an integer >= 2"),
        ({"n_classes": 2.0}, r"n_classes=2\.0 is not valid"),
        ({"spatial_dims": 4}, r"spatial_dims=4 is not valid: choose 2 or 3"),
    ],
)
def test_invalid_model_shape_arguments_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        build_model("cnn", **{"in_channels": 2, "n_classes": 3, **kwargs})

@pytest.mark.parametrize("name", ["resnet18", "densenet121", "alexnet"])
def test_torchvision_models_refuse_3d(name):
    with pytest.raises(InputError, match=f"{name} is 2D only .* use 'cnn' for 3D"):
        build_model(name, 2, 3, spatial_dims=3)

@pytest.mark.parametrize("name", ["cnn", "resnet18", "alexnet"])
def test_build_config_rebuilds_the_same_model(name):
    model = build_model(name, 2, 3)
    config = model.build_config
    again = build_model(
        config["name"], config["in_channels"], config["n_classes"], config["spatial_dims"],
        **config["params"],
    )  # fmt: skip
    again.load_state_dict(model.state_dict())  # same keys and shapes
    assert config["params"] == architecture_params(name)

@pytest.mark.parametrize(
    ("name", "channels"),
    [("cnn", 32), ("resnet18", 512), ("densenet121", 1024), ("alexnet", 256)],
)
def test_feature_layer_is_the_last_convolutional_stage(name, channels):
    model = build_model(name, 2, 3).eval()
    seen = []
    feature_layer(model).register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model(torch.randn(2, 2, 64, 64))
    assert len(seen) == 1 and seen[0][:2] == (2, channels) and len(seen[0]) == 4

def test_feature_layer_of_a_foreign_model():
    with pytest.raises(InputError, match="feature_layer does not know models of type Linear"):
        feature_layer(nn.Linear(2, 3))

def test_model_classes():
    assert isinstance(build_model("cnn", 2, 3), SmallCNN)
    assert isinstance(build_model("resnet18", 2, 3), TorchvisionClassifier)

def test_docstring_examples():
    assert doctest.testmod(models, extraglobs={"torch": torch}).failed == 0
