"""Tests of svetlana_core.models: every architecture builds, runs and trains all its weights."""

import doctest

import pytest
import torch
import torchvision
from torch import nn

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.models import ARCHITECTURES, MIN_TORCHVISION_PATCH, ORIGINAL_CNN, SmallCNN, TorchvisionClassifier, adapt_conv_weight, architecture_params, build_model, check_patch_size, count_parameters, feature_layer, min_patch_size, validate_params

# The big torchvision models take a few seconds each on two CPU cores.
_SLOW = {"resnet101", "resnet152", "densenet161", "densenet201"}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


def test_small_input_stem_keeps_resolution():
    model = build_model("resnet18", 2, 3, small_input=True)
    conv = model.net.conv1
    assert (conv.kernel_size, conv.stride, conv.in_channels) == ((3, 3), (1, 1), 2)
    assert isinstance(model.net.maxpool, nn.Identity)
    seen = []
    model.net.layer1.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model.eval()(torch.randn(2, 2, 16, 16))
    assert seen[0][-2:] == (16, 16)  # the ImageNet stem would leave 4 x 4


def test_densenet_small_input_needs_no_upsampling():
    model = build_model("densenet121", 2, 3, small_input=True)
    assert model.min_input == 8
    assert model.eval()(torch.randn(2, 2, 8, 8)).shape == (2, 3)


def test_alexnet_upsamples_small_patches_only():
    model = build_model("alexnet", 2, 3).eval()
    seen = []
    model.net.features.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    model(torch.randn(2, 2, 32, 40))
    model(torch.randn(2, 2, 80, 80))
    assert seen == [(2, 2, 64, 64), (2, 2, 80, 80)]


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


def test_torchvision_models_are_adapted_to_channels_and_classes():
    model = build_model("densenet121", 5, 7)
    assert model.net.features.conv0.in_channels == 5
    assert model.net.classifier.out_features == 7
    model = build_model("alexnet", 1, 2)
    assert model.net.features[0].in_channels == 1
    assert model.net.classifier[6].out_features == 2


def test_count_parameters_trainable_only():
    model = build_model("cnn", 2, 3, **ORIGINAL_CNN)
    model.classifier.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - 48


def test_architecture_params_and_registry():
    assert architecture_params("cnn") == {"depth": 3, "width": 32, "kernel": 3, "dropout": 0.2}
    assert architecture_params("resnet18") == {"pretrained": None, "small_input": False}
    assert architecture_params("alexnet") == {"pretrained": None}
    assert set(ARCHITECTURES) == {
        "cnn", "alexnet",
        *(f"resnet{n}" for n in (18, 34, 50, 101, 152)),
        *(f"densenet{n}" for n in (121, 161, 169, 201)),
    }  # fmt: skip
    assert ARCHITECTURES["cnn"].spatial_dims == (2, 3)
    assert all(a.description for a in ARCHITECTURES.values())


def test_validate_params_fills_defaults_and_converts():
    assert validate_params("cnn", {"depth": 2, "kernel": 5.0}) == {
        "depth": 2, "width": 32, "kernel": 5, "dropout": 0.2,
    }  # fmt: skip
    assert isinstance(validate_params("cnn", {"kernel": 5.0})["kernel"], int)
    assert validate_params("cnn", {"dropout": 0})["dropout"] == 0.0


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


def test_min_patch_size():
    assert [min_patch_size("cnn", {"depth": d}) for d in range(1, 6)] == [2, 4, 8, 16, 32]
    assert min_patch_size("cnn") == 8  # default depth 3
    assert min_patch_size("cnn", 4) == 16  # a bare int is the depth
    assert min_patch_size("alexnet") == MIN_TORCHVISION_PATCH == 8
    with pytest.raises(InputError, match="unknown architecture 'cnn3d'"):
        min_patch_size("cnn3d")


def test_check_patch_size():
    check_patch_size("cnn", {"depth": 4}, 16)
    check_patch_size("cnn", {"depth": 3}, (8, 16, 16))
    check_patch_size("resnet18", None, 8)
    message = r"^patch size 8 is too small for cnn depth 4: needs at least 16$"
    with pytest.raises(InputError, match=message):
        check_patch_size("cnn", {"depth": 4}, 8)
    with pytest.raises(
        InputError, match=r"size \(4, 16, 16\) is too small for cnn depth 3: needs at least 8 along"
    ):
        check_patch_size("cnn", {"depth": 3}, (4, 16, 16))
    with pytest.raises(InputError, match=r"size 4 is too small for alexnet: needs at least 8"):
        check_patch_size("alexnet", {}, 4)
    with pytest.raises(InputError, match=r"patch size \(0, 16\) is not valid"):
        check_patch_size("cnn", {}, (0, 16))


def test_a_patch_below_the_cnn_minimum_really_fails():
    model = build_model("cnn", 2, 3, depth=4).eval()
    model(torch.randn(2, 2, 16, 16))
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 2, 8, 8))


# --- local pretrained weights ------------------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_resnet18(tmp_path_factory):
    """A randomly initialised torchvision ResNet-18 saved as a 3-channel, 1000-class state dict."""
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    folder = tmp_path_factory.mktemp("weights")
    torch.save(state, folder / "resnet18.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "resnet18.safetensors"))
    return state, folder


@pytest.mark.parametrize("file_name", ["resnet18.pth", "resnet18.safetensors"])
def test_pretrained_local_weights_are_loaded(imagenet_resnet18, file_name):
    state, folder = imagenet_resnet18
    model = build_model("resnet18", 4, 3, pretrained=str(folder / file_name))
    net = model.net
    assert torch.equal(net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert torch.equal(net.layer4[1].bn2.running_mean, state["layer4.1.bn2.running_mean"])
    rgb = state["conv1.weight"]
    # RGB filters copied, the extra channel takes their mean; all scaled by 3/4
    assert torch.allclose(net.conv1.weight[:, :3], rgb * 0.75)
    assert torch.allclose(net.conv1.weight[:, 3], rgb.mean(dim=1) * 0.75)
    assert net.fc.weight.shape == (3, 512)  # the ImageNet head was dropped
    assert all(p.requires_grad for p in model.parameters())
    assert model.build_config["params"]["pretrained"] is None
    assert model.build_config["pretrained_from"] == str(folder / file_name)


def test_pretrained_with_one_channel_sums_rgb(imagenet_resnet18):
    state, folder = imagenet_resnet18
    model = build_model("resnet18", 1, 2, pretrained=folder / "resnet18.pth")
    assert torch.allclose(model.net.conv1.weight[:, 0], state["conv1.weight"].sum(dim=1))


def test_pretrained_with_small_input_keeps_the_new_stem(imagenet_resnet18):
    state, folder = imagenet_resnet18
    model = build_model("resnet18", 2, 3, pretrained=str(folder / "resnet18.pth"), small_input=True)
    assert model.net.conv1.weight.shape == (64, 2, 3, 3)
    assert torch.equal(model.net.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


def test_pretrained_nested_state_dict_with_module_prefix(imagenet_resnet18, tmp_path):
    state, _ = imagenet_resnet18
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = build_model("resnet18", 3, 3, pretrained=str(path))
    assert torch.equal(model.net.conv1.weight, state["conv1.weight"])  # 3 channels: unchanged


def test_adapt_conv_weight():
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)
    assert adapt_conv_weight(weight, 3).equal(weight)
    assert adapt_conv_weight(weight, 1)[:, 0, 0, 0].tolist() == [3.0, 12.0]
    assert adapt_conv_weight(weight, 2)[:, :, 0, 0].tolist() == [[0.0, 1.5], [4.5, 6.0]]
    assert adapt_conv_weight(weight, 6)[:, :, 0, 0].tolist() == [
        [0.0, 0.5, 1.0, 0.5, 0.5, 0.5],
        [1.5, 2.0, 2.5, 2.0, 2.0, 2.0],
    ]


def test_pretrained_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"pretrained weights file .*nothere\.pth not found"):
        build_model("resnet18", 2, 3, pretrained=str(tmp_path / "nothere.pth"))


def test_pretrained_unreadable_file(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"cannot read pretrained weights .*junk\.pth"):
        build_model("resnet18", 2, 3, pretrained=str(path))


def test_pretrained_of_another_architecture(tmp_path):
    path = tmp_path / "densenet.pth"
    torch.save(torchvision.models.densenet121(weights=None).state_dict(), path)
    with pytest.raises(InputError, match=r"densenet\.pth are not a resnet18 state dict"):
        build_model("resnet18", 2, 3, pretrained=str(path))
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(InputError, match=r"not a resnet18 state dict: missing \[\], unexpected"):
        build_model("resnet18", 2, 3, pretrained=str(path))


def test_pretrained_with_wrong_shapes(tmp_path):
    path = tmp_path / "wide.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    torch.save(state, path)
    with pytest.raises(InputError, match=r"wide\.pth do not fit resnet18: .*layer1\.0\.conv1"):
        build_model("resnet18", 2, 3, pretrained=str(path))


def test_pretrained_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(InputError, match=r"list\.pt do not hold a state dict of tensors"):
        build_model("resnet18", 2, 3, pretrained=str(path))


# --- rebuilding and Grad-CAM layer -------------------------------------------------------


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
