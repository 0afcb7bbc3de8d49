"""svetlana_core.training: config, data, split, losses, loop, stop, save/load, continue."""

import itertools
import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from svetlana_core import training as T
from svetlana_core.errors import InputError
from svetlana_core import models
from svetlana_core import predict
from svetlana_core.training.loop import _batches
from svetlana_core.training.split import _split_with_note
from svetlana_core.training.loop import _steps_per_epoch

TINY = {"depth": 1, "width": 4}  # a 1-block CNN: every test model trains in milliseconds


def disks(n_images=4, size=64, step=16, radius=5, seed=0, labels_start=3):
    """Images of bright and dark disks (class by brightness), labels with gaps (3, 6, 9, ...).

    Returns a list of (name, image (1, rows, columns) float32, mask, labels DataFrame).
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.ogrid[:size, :size]
    items = []
    for k in range(n_images):
        image = rng.normal(0.3, 0.05, (1, size, size)).astype(np.float32)
        mask = np.zeros((size, size), np.int32)
        table = []
        label = labels_start
        for i, (r, c) in enumerate(itertools.product(range(step // 2, size, step), repeat=2)):
            disk = (rows - r) ** 2 + (columns - c) ** 2 <= radius**2
            mask[disk] = label
            cls = "bright" if (i + k) % 2 else "dark"
            image[0][disk] += 0.9 if cls == "bright" else -0.25
            table.append((label, cls))
            label += 3
        items.append((f"img{k}.tif", image, mask, pd.DataFrame(table, columns=["label", "class"])))
    return items


def cfg(**changes):
    base = dict(arch_params=TINY, patch_size=16, epochs=3, batch_size=16, device="cpu",
                patience=None)
    return T.TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def items():
    return disks()


@pytest.fixture(scope="module")
def dataset(items):
    return T.build_samples(items, cfg())


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "m"
    return T.train(dataset, cfg(epochs=6, lr=1e-2, batch_size=8), out_dir=folder)


# ---------------------------------------------------------------------------- config


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


def test_resolve_device():
    assert models.resolve_device("cpu") == torch.device("cpu")
    assert models.resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="device='tpu' is not valid"):
        models.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device='cuda' was asked but no CUDA GPU"):
            models.resolve_device("cuda")


# ---------------------------------------------------------------------------- data


def test_build_samples_shapes_order_and_groups(items, dataset):
    assert dataset.X.shape == (64, 2, 16, 16) and dataset.X.dtype == np.float32
    assert dataset.classes == ("bright", "dark")
    assert dataset.counts() == {"bright": 32, "dark": 32}
    np.testing.assert_array_equal(dataset.labels[:4], [3, 6, 9, 12])
    assert dataset.images[0] == "img0.tif" and dataset.images[-1] == "img3.tif"
    np.testing.assert_array_equal(dataset.groups, dataset.images)
    # first object of img0 is "dark": label 3 at (8, 8); its mask channel is that disk
    assert dataset.y[0] == 1
    assert dataset.X[0, 1].sum() == (items[0][2] == 3).sum()
    assert dataset.X[0, 1, 8, 8] == 1.0


def test_build_samples_auto_patch_size_and_group_by(items):
    ds = T.build_samples(items[:2], cfg(patch_size=None), group_by=lambda n: n[:3])
    assert ds.patch_size == (24, 24)  # disks 11 pixels wide: 11 * 1.5 = 16.5, up to a multiple of 8
    assert set(ds.groups) == {"img"}


def test_build_samples_rejects_labels_not_in_mask(items):
    name, image, mask, labels = items[0]
    bad = pd.concat([labels, pd.DataFrame({"label": [4, 5, 1000], "class": "dark"})])
    with pytest.raises(InputError, match=r"image img0.tif: label\(s\) 4, 5, 1000 are not objects "
                                         r"of its mask \(16 objects\)"):
        T.build_samples([(name, image, mask, bad)], cfg())


def test_build_samples_needs_two_classes(items):
    name, image, mask, labels = items[0]
    one = labels[labels["class"] == "dark"]
    with pytest.raises(InputError, match=r"at least two classes; the labels have 1 \(dark\)"):
        T.build_samples([(name, image, mask, one)], cfg())


def test_build_samples_mask_only_3d():
    mask = np.zeros((16, 32, 32), np.uint16)
    mask[4:12, 4:12, 4:12] = 1
    mask[6:10, 18:30, 14:18] = 2
    labels = pd.DataFrame({"label": [1, 2], "class": ["cube", "rod"]})
    ds = T.build_samples([("vol.tif", None, mask, labels)], cfg(patch_size=(8, 16, 16)))
    assert ds.X.shape == (2, 1, 8, 16, 16) and ds.image_channels == 0
    assert ds.spatial_dims == 3


def test_dataset_from_folders(tmp_path, items):
    import tifffile

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rows = []
    for name, image, mask, labels in items[:2]:
        tifffile.imwrite(tmp_path / "images" / name, (image[0] * 1000).astype(np.uint16))
        tifffile.imwrite(tmp_path / "masks" / name, mask.astype(np.uint16))
        rows.append(labels.assign(image=name))
    pd.concat(rows).to_csv(tmp_path / "labels.csv", index=False)
    ds = T.dataset_from_folders(tmp_path / "images", tmp_path / "masks", tmp_path / "labels.csv",
                                cfg())
    assert ds.X.shape == (32, 2, 16, 16) and ds.counts() == {"bright": 16, "dark": 16}
    pd.concat(rows + [pd.DataFrame({"image": ["gone.tif"], "label": [1], "class": ["dark"]})]) \
        .to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match=r"names image\(s\) gone.tif that are not in"):
        T.dataset_from_folders(tmp_path / "images", tmp_path / "masks", tmp_path / "bad.csv", cfg())
    with pytest.raises(InputError, match=r"labels file .*nothing.csv does not exist"):
        T.dataset_from_folders(tmp_path / "images", tmp_path / "masks", tmp_path / "nothing.csv",
                               cfg())


def test_dataset_from_project(tmp_path, items):
    import tifffile

    from svetlana_core.store import Project

    project = Project.create(tmp_path / "p")
    for name, image, mask, labels in items[:2]:
        tifffile.imwrite(tmp_path / name, (image[0] * 1000).astype(np.uint16))
        tifffile.imwrite(tmp_path / f"mask_{name}", mask.astype(np.uint16))
        project.add_image(tmp_path / name, tmp_path / f"mask_{name}")
    project.add_class("dark")
    project.add_class("bright")
    project.add_class("unused")
    for name, _, _, labels in items[:2]:
        for label, cls in labels.itertuples(index=False):
            project.annotate(name, int(label), cls)
    ds = T.dataset_from_project(tmp_path / "p", cfg())
    assert ds.classes == ("dark", "bright")  # project order, unused class left out
    assert len(ds) == 32 and set(ds.images) == {"img0.tif", "img1.tif"}


# ---------------------------------------------------------------------------- split


def test_split_is_grouped_and_stratified():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"g{i}" for i in range(10)], 20)
    y = rng.integers(0, 3, groups.size)
    train_idx, val_idx = T.split_train_val(y, groups, 0.2, seed=0)
    assert len(train_idx) + len(val_idx) == y.size
    assert not set(groups[train_idx]) & set(groups[val_idx])
    assert set(y[train_idx]) == {0, 1, 2} and set(y[val_idx]) == {0, 1, 2}
    assert 0.1 < len(val_idx) / y.size < 0.3
    again = T.split_train_val(y, groups, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], val_idx)


def test_split_keeps_every_class_in_training():
    # class 2 lives in one group only: that group must not be the validation fold
    groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    y = np.array([0, 1] * 8 + [2, 2, 0, 1])
    for seed in range(5):
        train_idx, _ = T.split_train_val(y, groups, 0.2, seed)
        assert 2 in y[train_idx]


def test_split_single_group_falls_back_and_says_so():
    y = np.array([0] * 10 + [1] * 10 + [2])
    train_idx, val_idx, note = _split_with_note(y, np.zeros(21), 0.2, 0)
    assert "NOT grouped" in note and "only one group" in note
    assert sorted(np.bincount(y[val_idx], minlength=3)) == [0, 2, 2]
    assert set(y[train_idx]) == {0, 1, 2}


def test_split_zero_fraction():
    train_idx, val_idx = T.split_train_val(np.array([0, 1, 0, 1]), None, 0.0)
    assert len(val_idx) == 0 and list(train_idx) == [0, 1, 2, 3]


def test_class_weights():
    np.testing.assert_allclose(T.class_weights(np.array([0, 0, 0, 1]), 3), [2 / 3, 2, 0])
    np.testing.assert_allclose(T.class_weights(np.array([0, 0, 0, 1]), 3, "sqrt"),
                               [(2 / 3) ** 0.5, 2**0.5, 0], rtol=1e-6)
    assert T.class_weights(np.array([0, 1]), 2, None) is None


# ---------------------------------------------------------------------------- losses & loop


def test_losses_take_logits_and_weights():
    logits = torch.tensor([[4.0, -4.0], [-4.0, 4.0]])
    target = torch.tensor([0, 1])
    for name in T.LOSSES:
        loss = T.build_loss(name, 2)(logits, target)
        wrong = T.build_loss(name, 2)(-logits, target)
        assert 0 <= float(loss) < float(wrong), name
    # weights: the weighted mean puts the second object 3 times as high as the first
    per = T.build_loss("mse", 2)(logits[1:], target[1:])
    weighted = T.build_loss("mse", 2, np.array([1.0, 3.0]))(
        torch.tensor([[4.0, -4.0], [4.0, -4.0]]), target)
    first = T.build_loss("mse", 2)(torch.tensor([[4.0, -4.0]]), target[:1])
    second = T.build_loss("mse", 2)(torch.tensor([[4.0, -4.0]]), target[1:])
    assert float(weighted) == pytest.approx((float(first) + 3 * float(second)) / 4)
    assert float(per) < 1e-3


@pytest.mark.parametrize("loss, optimiser, schedule", itertools.product(
    T.LOSSES, T.OPTIMISERS, T.SCHEDULES))
def test_every_loss_optimiser_schedule_takes_a_step(loss, optimiser, schedule):
    torch.manual_seed(0)
    model = models.build_model("cnn", 2, 3, depth=1, width=4)
    X = torch.rand(12, 2, 8, 8)
    y = torch.tensor([0, 1, 2] * 4)
    loss_fn = T.build_loss(loss, 3, T.class_weights(y.numpy(), 3), label_smoothing=0.1)
    opt = T.build_optimiser(optimiser, model.parameters(), 1e-2, 1e-4)
    sched = T.build_scheduler(schedule, opt, epochs=2, steps_per_epoch=_steps_per_epoch(12, 6),
                              step_size=1)
    before = [p.detach().clone() for p in model.parameters()]
    value = T.train_one_epoch(model, (X, y), loss_fn, opt, sched, torch.device("cpu"),
                              batch_size=6)
    assert np.isfinite(value)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_one_epoch_timings_and_stop():
    model = models.build_model("cnn", 2, 2, depth=1, width=4)
    opt = T.build_optimiser("adam", model.parameters(), 1e-3, 0)
    timings = {}
    data = (torch.rand(20, 2, 8, 8), torch.tensor([0, 1] * 10))
    T.train_one_epoch(model, data, T.build_loss("cross_entropy", 2), opt, None,
                      torch.device("cpu"), batch_size=5, timings=timings)
    assert 0 < timings["compute"] <= timings["total"]
    stop = threading.Event()
    stop.set()
    assert np.isnan(T.train_one_epoch(model, data, T.build_loss("cross_entropy", 2), opt, None,
                                      torch.device("cpu"), stop=stop))


def test_evaluate_returns_probabilities():
    model = models.build_model("cnn", 2, 3, depth=1, width=4)
    loss, probs, preds = T.evaluate(model, np.random.rand(7, 2, 8, 8).astype(np.float32),
                                    np.array([0, 1, 2, 0, 1, 2, 0]), torch.device("cpu"), 3)
    assert probs.shape == (7, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(preds, probs.argmax(1))
    assert loss > 0


# ---------------------------------------------------------------------------- augmentation


def _symmetries(patch):
    out = []
    for k in range(4):
        rotated = np.rot90(patch, k, axes=(-2, -1))
        out += [rotated, np.flip(rotated, -1)]
    return out


def test_batch_augment_draws_the_symmetries_of_the_square():
    x = torch.arange(64 * 2 * 5 * 5, dtype=torch.float32).reshape(64, 2, 5, 5)
    augment = T.BatchAugment({"flips": True, "rot90": True}, 1, (5, 5), seed=0)
    out = augment(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    seen = set()
    for a, b in zip(x.numpy(), out.numpy()):
        matches = [i for i, s in enumerate(_symmetries(a)) if np.array_equal(s, b)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 8  # all 8 symmetries drawn over 64 patches
    assert torch.equal(x, torch.arange(x.numel(), dtype=torch.float32).reshape(x.shape))
    again = T.BatchAugment({"flips": True, "rot90": True}, 1, (5, 5), seed=0)(x)
    assert torch.equal(again, out)


def test_batch_augment_rot90_only_non_square_and_3d():
    x = torch.rand(16, 2, 4, 6)
    out = T.BatchAugment({"rot90": True}, 1, (4, 6), seed=1)(x)
    for a, b in zip(x.numpy(), out.numpy()):  # only 0 or 180 degrees keep the shape
        assert np.array_equal(a, b) or np.array_equal(np.rot90(a, 2, axes=(-2, -1)), b)
    vol = torch.rand(8, 1, 3, 4, 4)
    out3 = T.BatchAugment({"flip_planes": True}, 0, (3, 4, 4), seed=0)(vol)
    for a, b in zip(vol.numpy(), out3.numpy()):
        assert np.array_equal(a, b) or np.array_equal(np.flip(a, 1), b)


def test_batch_augment_extra_albumentations_transforms():
    spec = {"flips": True, "transforms": [{"name": "GaussNoise", "std_range": [0.1, 0.2],
                                           "p": 1.0}]}
    x = torch.zeros(4, 2, 8, 8)
    x[:, 1, 2:6, 2:6] = 1
    out = T.BatchAugment(spec, 1, (8, 8), seed=0)(x)
    assert out.shape == x.shape
    assert out[:, 0].abs().sum() > 0  # noise on the image channel
    assert torch.equal(out[:, 1].sum(dim=(1, 2)), x[:, 1].sum(dim=(1, 2)))  # mask only moved


# ---------------------------------------------------------------------------- train


@pytest.mark.slow
def test_train_learns_bright_vs_dark(trained, dataset):
    history = trained.history
    assert len(history) == 6 and trained.stop_reason == "completed" and not trained.stopped
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert trained.metrics["accuracy"] > 0.75 and trained.metrics["macro_f1"] > 0.75
    assert set(history[0]) == {
        "epoch", "train_loss", "val_loss", "accuracy", "balanced_accuracy", "macro_f1",
        "recall_bright", "recall_dark", "lr", "seconds", "best"}
    assert trained.best_epoch == max(history, key=lambda r: (r["macro_f1"], -r["val_loss"]))[
        "epoch"]
    assert trained.split["n_train"] + trained.split["n_val"] == 64
    assert "grouped split" in trained.summary and "Best epoch" in trained.summary


def test_model_folder_contract(trained):
    meta = json.loads((trained.model_dir / "model.json").read_text())
    for key in ("format_version", "arch", "arch_params", "spatial_dims", "in_channels",
                "image_channels", "classes", "patch_size", "patch_mode", "dilation",
                "normalisation", "config", "history", "best_epoch", "metrics", "data",
                "versions", "parent", "created_at"):
        assert key in meta, key
    assert meta["arch_params"] == {"depth": 1, "width": 4, "kernel": 3, "dropout": 0.2}
    assert meta["classes"] == ["bright", "dark"] and meta["patch_size"] == [16, 16]
    assert meta["in_channels"] == 2 and meta["image_channels"] == 1 and meta["parent"] is None
    assert T.TrainConfig.from_dict(meta["config"]).patch_size == 16
    assert sorted(p.name for p in trained.model_dir.iterdir()) == [
        "model.json", "weights.safetensors"]
    assert not [p for p in trained.model_dir.parent.iterdir() if p.name.startswith(".")]


def test_save_load_gives_identical_predictions(trained, dataset):
    loaded = models.load_model(trained.model_dir)
    assert loaded.classes == ("bright", "dark") and loaded.patch_size == (16, 16)
    assert not loaded.module.training
    np.testing.assert_array_equal(predict.predict_patches(loaded, dataset.X),
                                  predict.predict_patches(trained.model, dataset.X))
    with pytest.raises(InputError, match=r"patches have shape \(2, 8, 8\) but the model needs "
                                         r"\(2, 16, 16\)"):
        predict.predict_patches(loaded, np.zeros((1, 2, 8, 8), np.float32))


def test_save_refuses_a_non_empty_folder(trained):
    with pytest.raises(InputError, match="already exists and is not empty"):
        models.save_model(trained.model_dir, trained.model.module, trained.model.meta)
    with pytest.raises(InputError, match=r"model.json has no key 'classes'"):
        meta = {k: v for k, v in trained.model.meta.items() if k != "classes"}
        models.save_model(trained.model_dir.parent / "other", trained.model.module, meta)


def test_the_model_folder_is_a_checkpoint_of_the_best_epoch_while_training(dataset, tmp_path):
    folder = tmp_path / "m"
    seen = []

    def on_epoch(record):
        # what a reader (or a worker killed now) finds on disk at the end of each epoch
        meta = models.load_model(folder).meta
        seen.append((record["epoch"], record["best"], meta["best_epoch"], meta["stop_reason"],
                     len(meta["history"])))

    run = T.train(dataset, cfg(epochs=4, lr=1e-2, batch_size=8), out_dir=folder,
                  on_epoch=on_epoch)
    best_so_far = 0
    for epoch, best, saved_best, reason, n_history in seen:
        best_so_far = epoch if best else best_so_far
        assert (saved_best, reason) == (best_so_far, "in progress")
        assert n_history == best_so_far  # the history up to the checkpoint
    final = models.load_model(folder).meta
    assert final["stop_reason"] == "completed" and len(final["history"]) == 4
    assert final["best_epoch"] == run.best_epoch
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary file left beside it


def test_a_non_empty_out_folder_is_refused_before_training(dataset, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"model folder .*m already exists and is not empty"):
        T.train(dataset, cfg(epochs=1000), out_dir=folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def _tamper(src, dst, edit=None, drop_weights=False):
    import shutil

    shutil.copytree(src, dst)
    if edit is not None:
        meta = json.loads((dst / "model.json").read_text())
        edit(meta)
        (dst / "model.json").write_text(json.dumps(meta))
    if drop_weights:
        (dst / "weights.safetensors").unlink()
    return dst


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.pop("patch_size"), r"model.json has no key 'patch_size'"),
        (lambda m: m.update(classes="bright,dark"), r"key 'classes' must be a list of at least "
                                                    r"two distinct class names, got 'bright,dark'"),
        (lambda m: m.update(classes=["bright", 3]), r"key 'classes' must be a list"),
        (lambda m: m.update(in_channels="2"), r"key 'in_channels' must be an integer >= 1"),
        (lambda m: m.update(best_epoch=True), r"key 'best_epoch' must be an integer or null"),
        (lambda m: m.update(arch="cnn9"), r"keys 'arch'/'arch_params': unknown architecture"),
        (lambda m: m.update(arch_params={**m["arch_params"], "width": 8}),
         r"weights.safetensors key 'features.0.0.weight' has shape \(4, 2, 3, 3\) but the "
         r"architecture in model.json needs \(8, 2, 3, 3\)"),
        (lambda m: m.update(arch_params={**m["arch_params"], "depth": 2}),
         r"weights.safetensors does not fit .* key 'features.1.0.weight' is missing"),
        (lambda m: m.update(format_version=99), r"key 'format_version' is 99"),
        (lambda m: m.update(patch_size=[16]), r"key 'patch_size' must be 2 positive integers"),
    ],
)
def test_load_model_rejects_tampered_folders(trained, tmp_path, edit, match):
    folder = _tamper(trained.model_dir, tmp_path / "bad", edit)
    with pytest.raises(InputError, match=match):
        models.load_model(folder)


def test_load_model_missing_pieces(trained, tmp_path):
    with pytest.raises(InputError, match=r"model folder .*nowhere not found"):
        models.load_model(tmp_path / "nowhere")
    folder = _tamper(trained.model_dir, tmp_path / "noweights", drop_weights=True)
    with pytest.raises(InputError, match=r"weights.safetensors not found"):
        models.load_model(folder)
    folder = _tamper(trained.model_dir, tmp_path / "badjson")
    (folder / "model.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model.json is not valid JSON"):
        models.load_model(folder)
    (folder / "model.json").unlink()
    with pytest.raises(InputError, match=r"model.json not found: not a model folder"):
        models.load_model(folder)
    folder = _tamper(trained.model_dir, tmp_path / "badweights")
    (folder / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"cannot be read as safetensors"):
        models.load_model(folder)


class _StopAfter:
    """A stop event that turns on after ``n`` looks (each batch looks once)."""

    def __init__(self, n):
        self.n = n

    def is_set(self):
        self.n -= 1
        return self.n < 0


def test_stop_ends_within_an_epoch_and_saves(dataset, tmp_path):
    # 48 training objects / batch 16 = 3 batches an epoch; stop during the second epoch
    run = T.train(dataset, cfg(epochs=50), stop=_StopAfter(5), out_dir=tmp_path / "m")
    assert run.stopped and run.stop_reason == "stopped"
    assert len(run.history) == 1 and run.best_epoch == 1
    assert "stopped on request" in run.summary.lower()
    assert models.load_model(run.model_dir).classes == ("bright", "dark")


def test_stop_before_the_first_epoch_still_leaves_a_model(dataset, tmp_path):
    stop = threading.Event()
    stop.set()
    seen = []
    run = T.train(dataset, cfg(epochs=50), stop=stop, out_dir=tmp_path / "m", on_epoch=seen.append)
    assert run.stopped and len(run.history) == 1 and run.history[0]["partial"]
    assert run.history[0]["train_loss"] is None and seen == run.history
    models.load_model(run.model_dir)


def test_max_minutes(dataset, tmp_path):
    run = T.train(dataset, cfg(epochs=1000, max_minutes=0.02), out_dir=tmp_path / "m")
    assert run.stop_reason == "time limit" and not run.stopped
    assert 1 <= len(run.history) < 1000 and run.seconds < 10
    assert "time limit of 0.02 min" in run.summary
    models.load_model(run.model_dir)


@pytest.mark.slow
def test_early_stopping_on_macro_f1(dataset):
    run = T.train(dataset, cfg(epochs=60, patience=2, lr=1e-2))
    assert run.stop_reason == "early stopping" and len(run.history) < 60
    f1 = [r["macro_f1"] for r in run.history]
    assert max(f1[-2:]) <= max(f1[:-2])


def test_no_validation_set_scores_training_objects(dataset):
    run = T.train(dataset, cfg(epochs=1, val_fraction=0.0))
    assert run.split["n_val"] == 0 and run.metrics["n"] == 64
    assert "no validation set" in run.summary


def test_train_checks_data_against_config(dataset):
    with pytest.raises(InputError, match=r"config patch_size is 24 but the dataset patches are "
                                         r"\(16, 16\)"):
        T.train(dataset, cfg(patch_size=24))


def test_train_with_groups_callable_and_explicit_split(dataset):
    run = T.train(dataset, cfg(epochs=1), groups=lambda name: name[:4] in ("img0", "img1"))
    assert run.split["val_groups"] in (["True"], ["False"])
    run = T.train(dataset, cfg(epochs=1), split=(np.arange(40), np.arange(40, 64)))
    assert run.split["n_val"] == 24 and run.metrics["n"] == 24


@pytest.mark.slow
def test_continue_from_parent(trained, dataset, items, tmp_path):
    child = T.train(dataset, cfg(epochs=1, lr=1e-5, patch_size=None), parent=trained.model_dir,
                    out_dir=tmp_path / "child")
    meta = models.load_model(child.model_dir).meta
    assert meta["parent"] == str(trained.model_dir.resolve())
    assert meta["config"]["continue_from"] == str(trained.model_dir)
    # weights start from the parent: one epoch at a tiny rate keeps its accuracy
    assert child.history[0]["accuracy"] >= 0.75
    relabelled = [(n, i, m, l.assign(**{"class": l["class"].map({"bright": "b", "dark": "d"})}))
                  for n, i, m, l in items]
    other = T.build_samples(relabelled, cfg())
    with pytest.raises(InputError, match=r"has classes \['bright', 'dark'\] but the labels have "
                                         r"\['b', 'd'\]; the same classes are required"):
        T.train(other, cfg(), parent=trained.model_dir)
    small = T.build_samples(items, cfg(patch_size=8))
    with pytest.raises(InputError,
                       match=r"its patch_size is \[16, 16\] but the data have \[8, 8\]"):
        T.train(small, cfg(patch_size=None), parent=trained.model_dir)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_train_with_other_losses_and_3d(loss, tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((16, 48, 48), np.uint16)
    rows = []
    for i, (r, c) in enumerate(itertools.product(range(8, 48, 16), repeat=2)):
        if i % 2:
            mask[4:12, r - 4 : r + 4, c - 4 : c + 4] = i + 1
            rows.append((i + 1, "cube"))
        else:
            mask[7:9, r - 6 : r + 6, c - 1 : c + 1] = i + 1
            rows.append((i + 1, "rod"))
    items = [(f"v{k}", None, mask, pd.DataFrame(rows, columns=["label", "class"]))
             for k in range(3)]
    del rng
    ds = T.build_samples(items, cfg(patch_size=(8, 16, 16)))
    run = T.train(ds, cfg(patch_size=(8, 16, 16), loss=loss, epochs=2), out_dir=tmp_path / "m")
    loaded = models.load_model(run.model_dir)
    assert loaded.meta["spatial_dims"] == 3 and loaded.patch_size == (8, 16, 16)
    assert predict.predict_patches(loaded, ds.X).shape == (27, 2)


def test_small_sets_get_a_minimum_number_of_steps_per_epoch():
    generator = torch.Generator().manual_seed(0)
    batches = _batches(27, 64, generator)
    assert len(batches) == _steps_per_epoch(27, 64) >= T.MIN_STEPS_PER_EPOCH
    counts = torch.bincount(torch.cat(batches), minlength=27)
    assert counts.min() >= counts.max() - 1          # every object seen equally often
    # A large set is one plain pass.
    assert _steps_per_epoch(5000, 64) == 79 and len(_batches(5000, 64, generator)) == 79
