"""Shared data of the training tests: two-class disk images, their patches, one trained model."""

import pytest

from svetlana_core import training as T
from tests.builders import tiny_train_config, two_class_disks


@pytest.fixture(scope="session")
def items():
    return two_class_disks()


@pytest.fixture(scope="session")
def dataset(items):
    return T.build_samples(items, tiny_train_config())


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "m"
    return T.train(dataset, tiny_train_config(epochs=6, lr=1e-2, batch_size=8), out_dir=folder)
