"""TrainConfig.channels (issue 13, item 7): the network sees the image channels the user
chose; the model keeps the choice and picks the same channels from images at prediction."""

import numpy as np
import pytest

from svetlana_core import predict, training
from svetlana_core.errors import InputError
from svetlana_core.models import load_model, read_model_meta
from svetlana_core.predict.backends import load_for_prediction
from tests.builders import tiny_train_config, two_class_disks


def _three_channels(items):
    """The disks' signal in channel 1 only; channels 0 and 2 are noise."""
    rng = np.random.default_rng(1)
    out = []
    for name, image, mask, labels in items:
        noise = rng.normal(0.5, 0.2, (2, *image.shape[1:])).astype(np.float32)
        out.append((name, np.concatenate([noise[:1], image, noise[1:]]), mask, labels))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    items = _three_channels(two_class_disks())
    config = tiny_train_config(channels=[1], epochs=4)
    dataset = training.build_samples(items, config)
    assert dataset.image_channels == 1 and dataset.source_channels == 3
    folder = tmp_path_factory.mktemp("model") / "m"
    training.train(dataset, config, out_dir=folder)
    return folder, items


def test_the_model_keeps_the_choice(trained):
    folder, _ = trained
    meta = read_model_meta(folder)
    assert meta["channels"] == [1] and meta["source_channels"] == 3
    assert meta["image_channels"] == 1 and meta["in_channels"] == 2


def test_prediction_picks_the_same_channel_from_three_channel_images(trained):
    folder, items = trained
    name, image, mask, labels = items[0]
    model = load_model(folder)
    patches = predict.object_patches(model, image, mask)
    assert patches.shape[1] == 2  # channel 1 + the mask
    # channel 1 alone, cut as the model was trained: what the same crop of a one-channel
    # image holding only that channel gives
    from svetlana_core import patches as cut

    meta = model.meta
    alone = cut.extract(image[[1]], mask, size=tuple(meta["patch_size"]),
                        mode=meta["patch_mode"], normalisation=meta["normalisation"],
                        dilation=meta["dilation"])
    np.testing.assert_array_equal(patches, alone)
    for loaded in (model, load_for_prediction(folder)):  # torch, then ONNX Runtime
        objects = predict.predict_image(loaded, image, mask).objects
        # the noise channels are left out: the disks' brightness in channel 1 is learnt
        truth = labels.set_index("label")["class"]
        agree = (objects.set_index("label")["class"] == truth).mean()
        assert len(objects) == len(labels) and agree > 0.8, agree


def test_an_image_with_another_channel_count_is_refused_naming_the_choice(trained):
    folder, items = trained
    _, image, mask, _ = items[0]
    with pytest.raises(InputError, match=r"trained on 3 channels \(of which it sees \[1\]\)"):
        predict.predict_image(load_for_prediction(folder), image[:2], mask)


def test_a_channel_the_images_do_not_have_is_one_line():
    items = two_class_disks()  # one channel
    with pytest.raises(InputError, match=r"channels=\[2\]: image img0.tif has 1 channel"):
        training.build_samples(items, tiny_train_config(channels=[2]))


def test_mask_only_data_cannot_pick_channels():
    items = [(name, None, mask, labels) for name, _, mask, labels in two_class_disks()]
    with pytest.raises(InputError, match="mask-only data"):
        training.build_samples(items, tiny_train_config(channels=[0]))
