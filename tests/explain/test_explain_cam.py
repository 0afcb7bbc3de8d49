"""svetlana_core.explain.cam: Grad-CAM for every architecture, 2D and 3D, the layer it weighs,
and that it points at the object a trained network looks at."""

from __future__ import annotations

import os

# Idle OpenMP threads must sleep, not spin, on a shared CPU (as svetlana_core.predict sets it):
# this only works before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
import pytest
import torch

from svetlana_core import explain, models, predict, training
from svetlana_core.errors import InputError
from tests.builders import random_patch

FAST = ["cnn", "resnet18", "alexnet", "densenet121"]
HEAVY = ["resnet34", "resnet50", "resnet101", "resnet152", "densenet161", "densenet169",
         "densenet201"]


def loaded(arch="cnn", classes=("dim", "bright"), image_channels=1, patch=(32, 32), seed=0,
           **params) -> models.LoadedModel:
    """An untrained model in memory, as load_model returns it."""
    torch.manual_seed(seed)
    module = models.build_model(arch, image_channels + 1, len(classes), len(patch), **params)
    meta = {
        "arch": arch, "arch_params": params, "spatial_dims": len(patch),
        "in_channels": image_channels + 1, "image_channels": image_channels,
        "classes": list(classes), "patch_size": list(patch), "patch_mode": "context",
        "dilation": 2, "normalisation": "percentile",
    }
    return models.LoadedModel(
        module=module.eval(), meta=meta, classes=tuple(classes), patch_size=tuple(patch),
        device=torch.device("cpu"),
    )


def check_heat(explanation, spatial):
    heat = explanation.heat
    assert heat.shape == spatial and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    assert heat.max() in (0.0, 1.0)  # scaled by its maximum, or nothing to show
    assert np.isclose(explanation.probabilities.sum(), 1, atol=1e-5)


def _explain_every_arch(arch):
    model = loaded(arch)
    patch = random_patch((2, 32, 32))
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    plain = explain.gradcam(model, patch)
    check_heat(plain, (32, 32))
    assert plain.target == plain.predicted == int(plain.probabilities.argmax())
    assert plain.method == "gradcam" and plain.attribution is None and plain.layer
    other = explain.gradcam(model, patch, target=1 - plain.predicted, guided=True)
    check_heat(other, (32, 32))
    assert other.target == 1 - plain.predicted and other.target_class == model.classes[other.target]
    assert other.attribution.shape == (2, 32, 32) and np.isfinite(other.attribution).all()
    # The model is left as it was: same weights, no hook left behind.
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks or m._backward_hooks for m in model.module.modules())


@pytest.mark.parametrize("arch", FAST)
def test_gradcam_for_every_architecture(arch):
    _explain_every_arch(arch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", HEAVY)
def test_gradcam_for_the_heavy_architectures(arch):
    _explain_every_arch(arch)


def test_every_architecture_is_covered():
    assert set(FAST) | set(HEAVY) == set(models.ARCHITECTURES)


def test_gradcam_3d_has_the_patch_shape():
    model = loaded("cnn", image_channels=0, patch=(8, 16, 16), depth=2, width=8)
    patch = random_patch((1, 8, 16, 16))
    check_heat(explain.gradcam(model, patch), (8, 16, 16))
    guided = explain.gradcam(model, patch, guided=True)
    check_heat(guided, (8, 16, 16))
    assert guided.attribution.shape == (1, 8, 16, 16)


@pytest.mark.parametrize(
    "arch, patch, layer",
    [
        ("resnet18", 32, "net.layer2"),   # layer4 would be 1 x 1, layer3 2 x 2
        ("resnet18", 128, "net.layer4"),  # 4 x 4
        ("cnn", 32, "features.1.2"),      # the last block's ReLU, 16 x 16
        ("alexnet", 64, "net.features.4"),  # later ReLUs are 3 x 3
    ],
)
def test_the_layer_is_the_last_stage_with_some_extent(arch, patch, layer):
    params = {"depth": 2, "width": 8} if arch == "cnn" else {}
    model = loaded(arch, patch=(patch, patch), **params)
    explanation = explain.gradcam(model, random_patch((2, patch, patch)))
    assert explanation.layer == layer


def test_target_layer_without_a_patch_is_the_registry_feature_layer():
    for arch in ("cnn", "resnet18", "alexnet", "densenet121"):
        module = loaded(arch).module
        assert explain.target_layer(module, arch) is models.feature_layer(module)


def test_target_layer_of_another_network_is_its_last_convolution():
    module = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2),
    )
    assert explain.target_layer(module) is module[2]
    with pytest.raises(InputError, match="has no convolutional layer"):
        explain.target_layer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)), "mlp")


@pytest.mark.parametrize(
    "patch_shape, target, match",
    [
        ((3, 32, 32), None, r"patch has shape \(3, 32, 32\); the model takes one patch of "),
        ((2, 4, 32, 32), None, r"patch has shape \(2, 4, 32, 32\)"),
        ((2, 32, 32), 2, r"target must be a class index 0..1 or a class name"),
        ((2, 32, 32), -1, r"target must be a class index"),
        ((2, 32, 32), "alive", r"target class 'alive' is not one of the model's \['dim', "),
    ],
)
def test_gradcam_refuses_bad_input(patch_shape, target, match):
    with pytest.raises(InputError, match=match):
        explain.gradcam(loaded(), np.zeros(patch_shape, np.float32), target=target)


def test_a_class_name_is_a_target():
    model = loaded()
    patch = random_patch((2, 32, 32))
    by_name = explain.gradcam(model, patch, target="bright")
    by_index = explain.gradcam(model, patch, target=1)
    np.testing.assert_array_equal(by_name.heat, by_index.heat)
    assert by_name.target == 1 and by_name.target_class == "bright"


def bright_or_dim(n_images=8, size=96, seed=0):
    """Images of 3 x 3 disks; a disk is "bright" (bright pixels) or "dim" (background level)."""
    rng = np.random.default_rng(seed)
    rows, columns = np.indices((size, size))
    items, truth = [], {}
    for k in range(n_images):
        image = rng.normal(40, 8, (size, size))
        mask = np.zeros((size, size), np.uint16)
        labels = []
        for j in range(9):
            label = j + 1
            centre = (np.array(divmod(j, 3)) + 0.5) * size / 3 + rng.uniform(-3, 3, 2)
            radius = rng.uniform(5, 8)
            inside = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2
            mask[inside] = label
            name = "bright" if rng.random() < 0.5 else "dim"
            if name == "bright":
                image[inside] += 150
            labels.append((label, name))
        table = pd.DataFrame(labels, columns=["label", "class"])
        image = image.clip(0, 255).astype(np.uint8)[np.newaxis]
        items.append((f"image{k}.png", image, mask, table))
        truth[f"image{k}.png"] = dict(labels)
    return items, truth


@pytest.fixture(scope="module")
def trained():
    items, truth = bright_or_dim()
    config = training.TrainConfig(
        arch_params={"depth": 2, "width": 8}, patch_size=32, epochs=25, batch_size=16,
        lr=5e-3, val_fraction=0.0, patience=None, device="cpu", seed=0,
    )
    dataset = training.build_samples(items, config, classes=["dim", "bright"])
    run = training.train(dataset, config)
    return run.model, items, truth, run


def test_trained_network_learned_the_toy_task(trained):
    model, items, truth, run = trained
    assert run.metrics["accuracy"] >= 0.9, run.summary


def test_gradcam_is_hotter_on_the_bright_object_than_on_empty_background(trained):
    model, items, truth, _ = trained
    differences = []
    for name, image, mask, table in items[:4]:
        for label in table.loc[table["class"] == "bright", "label"]:
            explanation, patch = explain.explain_object(model, image, mask, int(label), "bright")
            own = patch[-1] > 0.5
            # Empty background: pixels of the patch where the mask holds no object at all.
            empty = _mask_window(mask, patch.shape[1:], label) == 0
            differences.append(explanation.heat[own].mean() - explanation.heat[empty].mean())
    differences = np.asarray(differences)
    assert len(differences) >= 8
    assert (differences > 0).mean() >= 0.8, differences
    assert differences.mean() > 0.2, differences


def _mask_window(mask, size, label):
    """The mask under an object's patch window (as extract places it), zero outside."""
    rows, columns = np.nonzero(mask == label)
    centre = np.floor(np.array([rows.mean(), columns.mean()]) + 0.5).astype(int)
    corner = centre - np.asarray(size) // 2
    padded = np.pad(mask, [(s, s) for s in size])
    start = corner + np.asarray(size)
    return padded[start[0] : start[0] + size[0], start[1] : start[1] + size[1]]


def test_explain_object_uses_the_patch_and_probabilities_of_prediction(trained):
    model, items, _, _ = trained
    name, image, mask, table = items[0]
    explanation, patch = explain.explain_object(model, image, mask, 5)
    np.testing.assert_array_equal(patch, predict.object_patches(model, image, mask, [5])[0])
    row = predict.predict_image(model, image, mask).objects.set_index("label").loc[5]
    np.testing.assert_allclose(
        explanation.probabilities, row[["p_dim", "p_bright"]].to_numpy(float), rtol=1e-5,
        atol=1e-6,
    )
    assert explanation.predicted == list(model.classes).index(row["class"])


def test_explain_object_refuses_unknown_labels(trained):
    model, items, _, _ = trained
    _, image, mask, _ = items[0]
    with pytest.raises(InputError, match=r"labels \[99\] are not in the mask"):
        explain.explain_object(model, image, mask, 99)
    with pytest.raises(InputError, match="label must be an integer"):
        explain.explain_object(model, image, mask, "5")
