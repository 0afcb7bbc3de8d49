"""svetlana_core.models.registry: architectures, parameters and patch sizes, without torch."""

import subprocess
import sys

import pytest

from svetlana_core.errors import InputError
from svetlana_core.models import (
    ARCHITECTURES,
    MIN_TORCHVISION_PATCH,
    architecture_params,
    check_patch_size,
    min_patch_size,
    validate_params,
)


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


def test_the_registry_needs_no_torch():
    code = ("import sys; from svetlana_core import models; "
            "print(models.architecture_params('resnet18'), 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "{'pretrained': None, 'small_input': False} False"
