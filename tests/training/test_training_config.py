"""svetlana_core.training.config: TrainConfig's checks, defaults, round trips; augment specs."""

import json
import subprocess
import sys

import pytest

from svetlana_core import training as T
from svetlana_core.errors import InputError
from svetlana_core.training.config import check_augment


def test_config_defaults_and_json_round_trip():
    config = T.TrainConfig()
    assert (config.arch, config.loss, config.optimiser, config.schedule) == (
        "cnn", "cross_entropy", "adam", "cosine")
    assert config.augment == {"flips": True, "rot90": True, "transforms": []}
    assert config.class_weights == "sqrt" and config.val_fraction == 0.2
    changed = T.TrainConfig(patch_size=(8, 24, 24), arch_params={"depth": 2}, max_minutes=1.5,
                            patience=None, class_weights=None)
    text = changed.to_json()
    assert json.loads(text)["patch_size"] == [8, 24, 24]
    assert T.TrainConfig.from_json(text) == changed
    assert T.TrainConfig.from_dict(changed.to_dict()) == changed

def test_config_does_not_share_its_dicts():
    params = {"depth": 2}
    config = T.TrainConfig(arch_params=params)
    params["depth"] = 5
    assert config.arch_params == {"depth": 2}
    assert T.TrainConfig().augment is not T.TrainConfig().augment

@pytest.mark.parametrize(
    "changes, match",
    [
        ({"loss": "hinge"}, r"loss='hinge' is not valid; choose one of 'cross_entropy', 'bce'"),
        ({"optimiser": "rmsprop"}, r"optimiser='rmsprop'.*'adam', 'adamw', 'sgd'"),
        ({"schedule": "linear"}, r"schedule='linear'.*'cosine', 'step', 'onecycle', 'none'"),
        ({"lr": 0}, r"lr=0 is not valid; give a number > 0"),
        ({"lr": -1e-3}, r"lr=-0.001"),
        ({"val_fraction": 0.9}, r"val_fraction=0.9 is not valid; give a number in \[0, 0.9\)"),
        ({"val_fraction": -0.1}, r"val_fraction=-0.1"),
        ({"epochs": 0}, r"epochs=0 is not valid; give an integer >= 1"),
        ({"epochs": 2.5}, r"epochs=2.5"),
        ({"batch_size": 1}, r"batch_size=1"),
        ({"patience": 0}, r"patience=0 is not valid; give None \(off\)"),
        ({"class_weights": "inverse"}, r"class_weights='inverse'.*'balanced', 'sqrt', None"),
        ({"patch_mode": "crop"}, r"patch_mode='crop'.*'context', 'masked'"),
        ({"normalisation": "zscore"}, r"normalisation='zscore'"),
        ({"patch_size": 2}, r"patch_size=2 is not valid"),
        ({"patch_size": (16, "a")}, r"patch_size=\(16, 'a'\)"),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0"),
        ({"device": "gpu"}, r"device='gpu' is not valid; choose one of 'auto', 'cpu'"),
        ({"max_minutes": 0}, r"max_minutes=0"),
        ({"arch_params": [1]}, r"arch_params=\[1\]"),
    ],
)
def test_config_rejects_bad_values(changes, match):
    with pytest.raises(InputError, match=match):
        T.TrainConfig(**changes)

def test_config_from_dict_rejects_unknown_keys_and_bad_json():
    with pytest.raises(InputError, match=r"unknown training config key\(s\) learning_rate, foo; "
                                         r"valid: arch, arch_params"):
        T.TrainConfig.from_dict({"learning_rate": 1, "foo": 2})
    with pytest.raises(InputError, match="training config is not valid JSON"):
        T.TrainConfig.from_json("{lr: 1")

@pytest.mark.parametrize(
    "changes, match",
    [
        ({"arch": "vgg"}, r"unknown architecture 'vgg'"),
        ({"arch_params": {"depht": 2}}, r"unknown parameter 'depht' \(did you mean 'depth'\?\)"),
        ({"arch_params": {"depth": 3}, "patch_size": 4}, r"patch size 4 is too small for cnn "
                                                         r"depth 3: needs at least 8"),
        ({"augment": {"flip": True}}, r"unknown augmentation key 'flip'"),
        ({"arch": "resnet18", "patch_size": (8, 16, 16)}, r"resnet18 is 2D only"),
    ],
)
def test_config_validate_uses_registry_and_augment(changes, match):
    with pytest.raises(InputError, match=match):
        T.TrainConfig(**changes).validate()

def test_auto_depth_follows_the_patch_size():
    assert [T.auto_depth((s, s)) for s in (8, 16, 32, 63, 64, 72, 127, 128, 256)] == [
        3, 3, 3, 3, 4, 4, 4, 5, 5]
    assert T.auto_depth((8, 64, 64)) == 3  # the smallest side counts
    assert T.TrainConfig().full_arch_params((72, 72))["depth"] == 4
    assert T.TrainConfig(arch_params={"depth": 2}).full_arch_params((72, 72))["depth"] == 2
    assert "depth" not in T.TrainConfig(arch="resnet18").full_arch_params((72, 72))

def test_validate_passes_for_defaults():
    T.TrainConfig().validate(in_channels=4)
    T.TrainConfig(patch_size=(8, 16, 16)).validate(in_channels=1)


def test_check_augment_needs_albumentations_only_for_transforms():
    # a config with flips and rotations is checked, and validated, without albumentations
    code = (
        "import sys\n"
        "from svetlana_core.training.config import TrainConfig\n"
        "TrainConfig().validate(in_channels=2)\n"
        "TrainConfig(augment={'flip_planes': True}, patch_size=(8, 16, 16)).validate()\n"
        "print(sorted(m for m in ('torch', 'albumentations') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stdout.strip() == "[]"
    assert check_augment(None) == {"flips": False, "rot90": False, "flip_planes": False,
                                   "transforms": []}
    assert check_augment([{"name": "GaussNoise", "p": 0.5}], 1, (16, 16))["transforms"] == [
        {"name": "GaussNoise", "p": 0.5}]
    with pytest.raises(InputError, match=r"unknown albumentations transform 'GaussNoize'"):
        check_augment({"flips": True, "transforms": [{"name": "GaussNoize"}]})
    with pytest.raises(InputError, match=r"augmentation rot90='yes' is not valid"):
        check_augment({"rot90": "yes"})
