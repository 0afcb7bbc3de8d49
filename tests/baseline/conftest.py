"""Fixtures of the random-forest tests: a forest trained on disks and ellipses."""

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, ellipse

from svetlana_core.baseline import train_baseline
from svetlana_core.objects import object_features


def shapes_dataset(rng, n_images):
    """Images of disks ("round") and elongated ellipses ("long") of random size and angle."""
    tables, classes = [], []
    for _ in range(n_images):
        mask = np.zeros((220, 220), dtype=np.int32)
        names = {}
        label = 0
        for row in range(4):
            for column in range(3):
                label += 1
                centre = (30 + 50 * row, 35 + 65 * column)
                if (row * 3 + column) % 2 == 0:
                    rr, cc = disk(centre, rng.uniform(5, 14), shape=mask.shape)
                    names[label] = "round"
                else:
                    rr, cc = ellipse(*centre, rng.uniform(2.5, 5), rng.uniform(14, 28),
                                     shape=mask.shape, rotation=rng.uniform(0, np.pi))
                    names[label] = "long"
                mask[rr, cc] = label
        image = rng.normal(100, 5, size=(1, *mask.shape))
        table = object_features(image, mask)
        tables.append(table)
        classes += [names[int(k)] for k in table.index]
    return pd.concat(tables, ignore_index=True), classes


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    features, y = shapes_dataset(rng, 3)
    test_features, test_y = shapes_dataset(rng, 2)
    model = train_baseline(features, y, ["round", "long", "absent"], n_estimators=25, seed=0)
    return model, features, y, test_features, test_y
