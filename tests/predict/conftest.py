"""Fixtures of the predict tests: one model folder and its load per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from svetlana_core import models
from tests.predict.scenes import make_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("models") / "cnn")


@pytest.fixture(scope="module")
def model(model_dir):
    """The model as prediction loads it on a CPU: ONNX Runtime, no torch."""
    return models.load_predictor(model_dir, device="cpu")


@pytest.fixture(scope="module")
def torch_model(model_dir):
    """The same model in torch (the GPU path, Grad-CAM)."""
    return models.load_model(model_dir)
