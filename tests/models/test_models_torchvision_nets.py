"""svetlana_core.models.torchvision_nets: torchvision backbones adapted to patches, local
pretrained weights."""

import pytest
import torch
import torchvision
from torch import nn

from svetlana_core.errors import InputError
from svetlana_core.models import adapt_conv_weight, build_model


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

def test_torchvision_models_are_adapted_to_channels_and_classes():
    model = build_model("densenet121", 5, 7)
    assert model.net.features.conv0.in_channels == 5
    assert model.net.classifier.out_features == 7
    model = build_model("alexnet", 1, 2)
    assert model.net.features[0].in_channels == 1
    assert model.net.classifier[6].out_features == 2

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
