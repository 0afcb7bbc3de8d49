"""svetlana_core.predict.crop: the patches prediction feeds the network are those of
patches.extract, for every mode and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana_core import models, patches, predict
from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from tests.predict.scenes import make_model_folder, scene


@pytest.mark.parametrize(
    "mode, normalisation", [("masked", "percentile"), ("context", "minmax"), ("masked", "none")]
)
def test_patches_match_extract_for_every_mode(tmp_path, mode, normalisation):
    folder = make_model_folder(
        tmp_path / "m", patch_mode=mode, normalisation=normalisation, patch_size=(24, 40)
    )
    model = models.load_model(folder)
    image, mask = scene(n=25, size=100)
    expected = patches.extract(
        image, mask, size=(24, 40), mode=mode, normalisation=normalisation, dilation=2
    )
    np.testing.assert_array_equal(predict.object_patches(model, image, mask), expected)
    labels = object_table(mask)["label"].to_numpy()[[5, 0, 1]]
    np.testing.assert_array_equal(
        predict.object_patches(model, image, mask, labels=labels),
        patches.extract(image, mask, labels=labels, size=(24, 40), mode=mode,
                        normalisation=normalisation),
    )


def test_unknown_label_in_object_patches(model):
    image, mask = scene(n=4, size=32, labels=[3, 7, 42, 50])
    with pytest.raises(InputError, match=r"labels \[8\] are not in the mask"):
        predict.object_patches(model, image, mask, labels=[3, 8])
