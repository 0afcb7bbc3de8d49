"""Tests of svetlana_core.predict: one image (class map, table, chunking) and many (outputs,
per-well counts, resuming, failures, Dask)."""

from __future__ import annotations

import os

# Idle OpenMP threads must sleep, not spin, on a shared CPU (as svetlana_core.predict sets it):
# this only works before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from svetlana_core import io
from svetlana_core import models
from svetlana_core import patches
from svetlana_core import predict
from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from svetlana_core.predict.network import _inference_module

CLASSES = ("alive", "dead", "dividing")


# --------------------------------------------------------------------------- helpers


def make_model_folder(
    folder: Path,
    *,
    arch: str = "cnn",
    classes=CLASSES,
    image_channels: int = 1,
    patch_size=(32, 32),
    normalisation: str = "percentile",
    patch_mode: str = "context",
    seed: int = 0,
    head_scale: float = 20.0,
    **arch_params,
) -> Path:
    """A model folder with random weights; a large head spreads the predicted classes."""
    torch.manual_seed(seed)
    spatial_dims = len(patch_size)
    params = {"depth": 2, "width": 8} if arch == "cnn" and not arch_params else arch_params
    module = models.build_model(arch, image_channels + 1, len(classes), spatial_dims, **params)
    if arch == "cnn" and image_channels == 1 and spatial_dims == 2:
        # Random features barely differ between objects: centre and stretch the logits on a
        # sample scene so that the objects spread over the classes.
        image, mask = scene(n=30, size=128, seed=99)
        cut = patches.extract(image, mask, size=tuple(patch_size), mode=patch_mode,
                              normalisation=normalisation)
        module.eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(cut))
            spread = logits.std(dim=0).clamp_min(1e-6)
            module.classifier.weight.mul_(head_scale / spread[:, None] / 10)
            module.classifier.bias.mul_(head_scale / spread / 10)
            module.classifier.bias.sub_(module(torch.from_numpy(cut)).mean(dim=0))
    meta = {
        "format_version": models.FORMAT_VERSION,
        "arch": arch,
        "arch_params": params,
        "spatial_dims": spatial_dims,
        "in_channels": image_channels + 1,
        "image_channels": image_channels,
        "classes": list(classes),
        "patch_size": list(patch_size),
        "patch_mode": patch_mode,
        "dilation": 2,
        "normalisation": normalisation,
        "config": {},
        "history": [],
        "best_epoch": None,
        "metrics": None,
        "data": {},
        "versions": {},
        "parent": None,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    return models.save_model(folder, module, meta)


def disks(shape, centres, radii, labels, seed=0, mask_dtype=np.uint16):
    """Grey image (1, rows, columns) uint16 and a mask of labelled disks of varied brightness."""
    rng = np.random.default_rng(seed)
    rows, columns = np.indices(shape)
    mask = np.zeros(shape, dtype=mask_dtype)
    image = rng.normal(100, 10, shape)
    for (r, c), radius, label in zip(centres, radii, labels):  # test data only
        inside = (rows - r) ** 2 + (columns - c) ** 2 <= radius**2
        mask[inside] = label
        image[inside] += rng.uniform(50, 800) + 30 * np.sin(columns[inside] / rng.uniform(1, 4))
    return image.clip(0, 65535).astype(np.uint16)[np.newaxis], mask


def scene(n=30, size=128, seed=1, labels=None):
    """Disks on a jittered grid, some cut by the border; labels with gaps by default."""
    rng = np.random.default_rng(seed)
    grid = int(np.ceil(np.sqrt(n)))
    cell = size / grid
    k = np.arange(n)
    centres = np.stack([(k // grid + 0.5) * cell, (k % grid + 0.5) * cell], axis=1)
    centres += rng.uniform(-cell / 4, cell / 4, centres.shape)
    centres[0] = (1, 2)  # cut by two borders
    centres[1] = (size - 2, size / 2)
    radii = rng.integers(3, max(4, int(cell / 2) - 2), n)
    if labels is None:
        labels = np.sort(rng.choice(np.arange(1, 60_000), n, replace=False))
    return disks((size, size), centres, radii, labels, seed=seed)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("models") / "cnn")


@pytest.fixture(scope="module")
def model(model_dir):
    return models.load_model(model_dir)


# --------------------------------------------------------------------------- predict_image


def test_class_map_and_table_agree_object_by_object(model):
    image, mask = scene()
    result = predict.predict_image(model, image, mask)
    table = result.objects
    assert table["label"].tolist() == sorted(np.unique(mask[mask > 0]).tolist())
    assert result.class_map.dtype == np.uint8 and result.class_map.shape == mask.shape
    assert table["class"].nunique() >= 2, "the test needs objects of several classes"
    index = {name: k for k, name in enumerate(CLASSES)}
    for label, name in zip(table["label"], table["class"]):
        assert np.all(result.class_map[mask == label] == index[name] + 1), label
    assert np.all(result.class_map[mask == 0] == 0)
    geometry = object_table(mask)
    pd.testing.assert_frame_equal(table[geometry.columns], geometry)
    expected = ["label", *predict.prediction_columns(CLASSES)]
    assert table.columns[: len(expected)].tolist() == expected
    assert table.columns[-1] == "area"


def test_chunked_and_unchunked_are_identical(model):
    image, mask = scene(n=40)
    whole = predict.predict_image(model, image, mask, batch_size=16, chunk_objects=4096)
    for chunk in (7, 16, None):
        chunked = predict.predict_image(model, image, mask, batch_size=16, chunk_objects=chunk)
        pd.testing.assert_frame_equal(whole.objects, chunked.objects, check_exact=True)
        np.testing.assert_array_equal(whole.class_map, chunked.class_map)


def test_probabilities_are_the_networks_on_the_trained_patches(model):
    image, mask = scene()
    result = predict.predict_image(model, image, mask)
    cut = patches.extract(image, mask, size=32, mode="context", normalisation="percentile")
    np.testing.assert_array_equal(predict.object_patches(model, image, mask), cut)
    with torch.inference_mode():
        expected = torch.softmax(model.module(torch.from_numpy(cut)), dim=1).numpy()
    probabilities = result.objects[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)


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


def test_uncertainty_columns_follow_from_the_probabilities(model):
    image, mask = scene()
    table = predict.predict_image(model, image, mask).objects
    p = table[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    ordered = np.sort(p, axis=1)
    np.testing.assert_array_equal(table["confidence"], ordered[:, -1])
    np.testing.assert_array_equal(table["margin"], ordered[:, -1] - ordered[:, -2])
    np.testing.assert_allclose(table["entropy"], -(p * np.log(p)).sum(axis=1), rtol=1e-12)
    assert (table["class"] == np.asarray(CLASSES)[p.argmax(axis=1)]).all()


def test_confidence_map_holds_each_objects_confidence(model):
    image, mask = scene()
    result = predict.predict_image(model, image, mask)
    confidence = result.confidence_map
    assert confidence.dtype == np.float32 and confidence.shape == mask.shape
    assert np.all(confidence[mask == 0] == 0)
    for label, value in zip(result.objects["label"], result.objects["confidence"]):
        assert np.all(confidence[mask == label] == np.float32(value))


def test_huge_sparse_labels_use_the_sorted_lookup(model):
    image, small = scene(n=6, size=64, labels=[1, 2, 3, 4, 5, 6])
    huge = np.asarray([0, 3, 7, 42, 10**9, 10**12, 2**40 + 5], dtype=np.int64)
    mask = huge[small]  # same objects, labels far beyond what a look-up table could hold
    result = predict.predict_image(model, image, mask)
    reference = predict.predict_image(model, image, small)
    np.testing.assert_array_equal(result.class_map, reference.class_map)
    np.testing.assert_array_equal(result.confidence_map, reference.confidence_map)
    assert result.objects["label"].tolist() == huge[1:].tolist()


def test_empty_mask_gives_an_empty_table(model):
    image = np.zeros((1, 20, 20), np.uint8)
    result = predict.predict_image(model, image, np.zeros((20, 20), np.uint16))
    assert len(result.objects) == 0
    assert list(result.objects.columns[:3]) == ["label", "class", "confidence"]
    assert not result.class_map.any() and not result.confidence_map.any()


def test_many_classes_give_a_uint16_class_map(tmp_path):
    classes = [f"c{k}" for k in range(300)]
    model = models.load_model(make_model_folder(tmp_path / "m", classes=classes))
    image, mask = scene(n=9, size=64)
    result = predict.predict_image(model, image, mask)
    assert result.class_map.dtype == np.uint16
    index = {name: k for k, name in enumerate(classes)}
    for label, name in zip(result.objects["label"], result.objects["class"]):
        assert np.all(result.class_map[mask == label] == index[name] + 1)


def test_3d_mask_only_model(tmp_path):
    model = models.load_model(
        make_model_folder(tmp_path / "m3", image_channels=0, patch_size=(8, 16, 16))
    )
    planes, rows, columns = np.indices((12, 40, 40))
    mask = np.zeros((12, 40, 40), np.uint16)
    balls = ((6, 10, 10, 4), (3, 30, 25, 5), (10, 5, 33, 3))
    for label, (p, r, c, radius) in zip((5, 9, 11), balls):
        mask[(planes - p) ** 2 + (rows - r) ** 2 + (columns - c) ** 2 <= radius**2] = label
    result = predict.predict_image(model, None, mask, chunk_objects=2)
    assert result.objects["label"].tolist() == [5, 9, 11]
    assert "centroid_plane" in result.objects.columns
    np.testing.assert_array_equal(
        predict.object_patches(model, None, mask), patches.extract(None, mask, size=(8, 16, 16))
    )
    for label, name in zip(result.objects["label"], result.objects["class"]):
        assert np.all(result.class_map[mask == label] == CLASSES.index(name) + 1)


def test_table_given_by_the_caller_is_used(model):
    image, mask = scene(n=12, size=64)
    table = object_table(mask)
    shuffled = table.sample(frac=1, random_state=0)
    a = predict.predict_image(model, image, mask, table=shuffled)
    b = predict.predict_image(model, image, mask)
    pd.testing.assert_frame_equal(a.objects, b.objects)


@pytest.mark.parametrize(
    "image_shape, mask_shape, match",
    [
        ((3, 32, 32), (32, 32), r"image has 3 channel\(s\).*trained on 1"),
        ((1, 32, 30), (32, 32), r"image has spatial shape \(32, 30\) but mask has shape"),
        ((1, 4, 32, 32), (4, 32, 32), r"mask has shape \(4, 32, 32\) \(3D\) but the model"),
        (None, (32, 32), r"no image was given but the model expects 1 image channel"),
    ],
)
def test_inputs_that_do_not_fit_the_model(model, image_shape, mask_shape, match):
    image = None if image_shape is None else np.zeros(image_shape, np.uint8)
    mask = np.zeros(mask_shape, np.uint8)
    with pytest.raises(InputError, match=match):
        predict.predict_image(model, image, mask)


@pytest.mark.parametrize("argument", ["batch_size", "chunk_objects"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_batch_arguments(model, argument, value):
    image, mask = scene(n=4, size=32)
    with pytest.raises(InputError, match=f"{argument} must be a positive integer"):
        predict.predict_image(model, image, mask, **{argument: value})


def test_mask_only_model_refuses_an_image(tmp_path):
    model = models.load_model(make_model_folder(tmp_path / "m", image_channels=0))
    image, mask = scene(n=4, size=32)
    with pytest.raises(InputError, match="reads the mask only; pass image=None"):
        predict.predict_image(model, image, mask)


def test_unknown_label_in_object_patches(model):
    image, mask = scene(n=4, size=32, labels=[3, 7, 42, 50])
    with pytest.raises(InputError, match=r"labels \[8\] are not in the mask"):
        predict.object_patches(model, image, mask, labels=[3, 8])


# --------------------------------------------------------------------------- predict_many


PLATE = ("A01", "A02", "B05", "C11")  # wells of a 96-well plate, most of it missing


@pytest.fixture
def plate(tmp_path) -> list[io.Pair]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k, well in enumerate(PLATE):
        image, mask = scene(n=6 + 3 * k, size=64, seed=k)
        tifffile.imwrite(images / f"plate1_{well}_s1.tif", image[0])
        tifffile.imwrite(masks / f"plate1_{well}_s1.tif", mask)
    return io.pair_files(images, masks)


def test_predict_many_writes_every_output_and_counts_per_well(model_dir, model, plate, tmp_path):
    calls = []
    out = tmp_path / "out"
    result = predict.predict_many(
        model_dir, plate, out, progress=lambda *args: calls.append(args)
    )
    names = [pair.image.name for pair in plate]
    assert result.done == names and result.skipped == [] and result.failed == {}
    assert calls == [(k + 1, len(names), name) for k, name in enumerate(names)]

    tables = []
    for pair in plate:
        image, mask = io.load_pair(pair.image, pair.mask)
        expected = predict.predict_image(model, image, mask)
        with tifffile.TiffFile(out / "class_maps" / f"{pair.stem}.tif") as tif:
            np.testing.assert_array_equal(tif.asarray(), expected.class_map)
            description = tif.shaped_metadata[0]
        assert description["classes"] == list(CLASSES) and description["background"] == 0
        np.testing.assert_array_equal(
            tifffile.imread(out / "confidence" / f"{pair.stem}.tif"), expected.confidence_map
        )
        table = pd.read_csv(out / "objects" / f"{pair.stem}.csv")
        assert table["label"].tolist() == expected.objects["label"].tolist()
        assert table["class"].tolist() == expected.objects["class"].tolist()
        assert (out / "done" / f"{pair.stem}.json").is_file()
        tables.append(expected.objects.assign(image=pair.image.name))

    combined = pd.read_csv(out / "objects.csv")
    assert combined.columns[:4].tolist() == ["image", "well", "label", "class"]
    assert len(combined) == sum(len(t) for t in tables) == len(result.objects)
    parquet = pd.read_parquet(out / "objects.parquet")
    pd.testing.assert_frame_equal(parquet, result.objects, check_dtype=False)
    assert sorted(combined["well"].unique()) == list(PLATE)

    per_image = pd.read_csv(out / "counts_per_image.csv")
    assert per_image["n_objects"].tolist() == [len(t) for t in tables]
    per_well = pd.read_csv(out / "counts_per_well.csv")
    assert len(per_well) == 96
    measured = per_well.set_index("well")
    for well, table in zip(PLATE, tables):
        for name in CLASSES:
            assert measured.loc[well, f"n_{name}"] == (table["class"] == name).sum()
    missing = measured.drop(list(PLATE))
    assert missing["n_objects"].isna().all() and missing["n_images"].isna().all()
    sheets = pd.read_excel(out / "results.xlsx", sheet_name=None)
    assert list(sheets) == ["objects", "counts_per_image", "counts_per_well"]
    assert len(sheets["objects"]) == len(combined)


def test_predict_many_resumes_and_force_redoes(model_dir, plate, tmp_path):
    out = tmp_path / "out"
    first = predict.predict_many(model_dir, plate, out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "class_maps").iterdir()}
    again = predict.predict_many(model_dir, plate, out)
    assert again.done == [] and again.skipped == first.done
    pd.testing.assert_frame_equal(again.objects, first.objects)
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "class_maps").iterdir()}

    forced = predict.predict_many(model_dir, plate, out, force=True)
    assert forced.done == first.done and forced.skipped == []
    pd.testing.assert_frame_equal(forced.objects, first.objects)

    # Another model: the markers no longer match, everything is predicted again.
    other = make_model_folder(tmp_path / "other", seed=5)
    changed = predict.predict_many(other, plate, out)
    assert changed.done == first.done

    # A missing output makes that image be predicted again, and only that one.
    (out / "confidence" / f"{plate[1].stem}.tif").unlink()
    partial = predict.predict_many(other, plate, out)
    assert partial.done == [plate[1].image.name] and len(partial.skipped) == len(plate) - 1


def test_a_corrupt_image_fails_alone(model_dir, plate, tmp_path):
    plate[2].image.write_bytes(b"this is not a TIFF")
    result = predict.predict_many(model_dir, plate, tmp_path / "out")
    bad = plate[2].image.name
    assert list(result.failed) == [bad]
    assert str(plate[2].image) in result.failed[bad] or bad in result.failed[bad]
    assert result.done == [p.image.name for p in plate if p.image.name != bad]
    assert bad not in set(result.objects["image"])
    assert not (tmp_path / "out" / "done" / f"{plate[2].stem}.json").exists()
    per_image = pd.read_csv(tmp_path / "out" / "counts_per_image.csv")
    assert bad not in set(per_image["image"])


def test_a_mask_of_another_shape_fails_alone(model_dir, plate, tmp_path):
    tifffile.imwrite(plate[0].mask, np.ones((10, 10), np.uint16))
    result = predict.predict_many(model_dir, plate, tmp_path / "out")
    assert list(result.failed) == [plate[0].image.name]
    assert "has shape (10, 10) but image" in result.failed[plate[0].image.name]
    assert len(result.done) == len(plate) - 1


def test_predict_many_takes_a_loaded_model_and_tuples(model, plate, tmp_path):
    pairs = [(p.image, p.mask) for p in plate]
    result = predict.predict_many(model, pairs, tmp_path / "out")
    reference = predict.predict_many(model.folder, plate, tmp_path / "ref")
    pd.testing.assert_frame_equal(result.objects, reference.objects)


def test_names_without_wells_give_no_per_well_table(model_dir, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("first", "second"):
        image, mask = scene(n=5, size=48)
        tifffile.imwrite(folder / f"{name}.tif", image[0])
        tifffile.imwrite(folder / f"{name}_mask.tif", mask)
    result = predict.predict_many(model_dir, folder, tmp_path / "out")
    assert result.done == ["first.tif", "second.tif"]
    assert "counts_per_well" not in result.outputs
    assert not (tmp_path / "out" / "counts_per_well.csv").exists()
    assert result.objects["well"].isna().all()


def test_predict_many_bad_arguments(model_dir, plate, tmp_path):
    with pytest.raises(InputError, match="either client or scheduler"):
        predict.predict_many(model_dir, plate, tmp_path, client=object(), scheduler="tcp://x:1")
    with pytest.raises(InputError, match="pairs is empty"):
        predict.predict_many(model_dir, [], tmp_path / "out")
    with pytest.raises(InputError, match=r"occur more than once.*\['A01'\]"):
        twice = [(plate[0].image, plate[0].mask), (plate[0].image, plate[1].mask)]
        predict.predict_many(model_dir, [io.Pair(p[0], p[1], "A01") for p in twice], tmp_path)
    with pytest.raises(InputError, match="not found"):
        predict.predict_many(tmp_path / "no-model", plate, tmp_path / "out")
    with pytest.raises(InputError, match="pairs must hold"):
        predict.predict_many(model_dir, ["a.tif"], tmp_path / "out")


def test_fingerprint_is_the_same_for_a_folder_and_its_load(model_dir, model, tmp_path):
    assert predict.model_fingerprint(model_dir) == predict.model_fingerprint(model)
    other = make_model_folder(tmp_path / "other", seed=1)
    assert predict.model_fingerprint(other) != predict.model_fingerprint(model_dir)


def test_marker_records_the_model_and_inputs(model_dir, plate, tmp_path):
    predict.predict_many(model_dir, plate[:1], tmp_path / "out")
    record = json.loads((tmp_path / "out" / "done" / f"{plate[0].stem}.json").read_text())
    assert record["model"] == predict.model_fingerprint(model_dir)
    assert record["n_objects"] > 0
    # Touching the input (new content, new time) makes the image be predicted again.
    image = tifffile.imread(plate[0].image)
    tifffile.imwrite(plate[0].image, image[::-1].copy())
    again = predict.predict_many(model_dir, plate[:1], tmp_path / "out")
    assert again.done == [plate[0].image.name]


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True])
def test_dask_cluster_gives_the_local_table(model_dir, plate, tmp_path, processes):
    distributed = pytest.importorskip("distributed")
    local = predict.predict_many(model_dir, plate, tmp_path / "local")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
    ) as cluster:
        if processes:
            with distributed.Client(cluster) as client:
                remote = predict.predict_many(model_dir, plate, tmp_path / "dask", client=client)
        else:
            remote = predict.predict_many(
                model_dir, plate, tmp_path / "dask", scheduler=cluster.scheduler_address
            )
    assert remote.done == local.done and remote.failed == {}
    pd.testing.assert_frame_equal(remote.objects, local.objects)
    for name in ("counts_per_image.csv", "counts_per_well.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "dask" / name), pd.read_csv(tmp_path / "local" / name)
        )
    for pair in plate:
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / "dask" / "class_maps" / f"{pair.stem}.tif"),
            tifffile.imread(tmp_path / "local" / "class_maps" / f"{pair.stem}.tif"),
        )


# --------------------------------------------------------------------------- internals that matter


def test_the_network_runs_as_a_folded_copy_and_the_model_is_untouched(model):
    image, mask = scene(n=8, size=64)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    predict.predict_image(model, image, mask)
    copy = _inference_module(model.module, torch.device("cpu"), torch.channels_last)
    assert copy is not model.module
    assert copy is _inference_module(model.module, torch.device("cpu"), torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.module.modules())
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():  # an in-place change of the weights makes a new copy
        model.module.classifier.bias.add_(0.0)
    assert _inference_module(model.module, torch.device("cpu"), torch.channels_last) \
        is not copy


def test_torchvision_networks_predict_like_their_module(tmp_path):
    model = models.load_model(make_model_folder(tmp_path / "r", arch="resnet18"))
    image, mask = scene(n=6, size=64)
    result = predict.predict_image(model, image, mask)
    with torch.inference_mode():
        logits = model.module(torch.from_numpy(predict.object_patches(model, image, mask)))
    probabilities = result.objects[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1).numpy(), atol=1e-5)


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, option, value):
        self.calls.append(("mallopt", option, value.value))

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad.value))


def test_dask_malloc_settings_are_relaxed_during_prediction_and_put_back(model, monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr("svetlana_core.predict.network._glibc", lambda: libc)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    image, mask = scene(n=4, size=48)
    predict.predict_image(model, image, mask)
    assert libc.calls == [
        ("mallopt", -1, 256 << 20), ("mallopt", -3, 32 << 20),   # while predicting
        ("mallopt", -3, 128 << 10), ("mallopt", -1, 65536), ("malloc_trim", 0),  # put back
    ]
    libc.calls.clear()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    predict.predict_image(model, image, mask)
    assert libc.calls == []  # nothing to undo where the variable is not set


def test_a_big_table_is_left_out_of_the_workbook(model_dir, plate, tmp_path, monkeypatch):
    monkeypatch.setattr("svetlana_core.predict.many.XLSX_MAX_OBJECTS", 10)
    result = predict.predict_many(model_dir, plate, tmp_path / "out")
    sheets = pd.read_excel(tmp_path / "out" / "results.xlsx", sheet_name=None)
    assert list(sheets) == ["counts_per_image", "counts_per_well"]
    assert any("leaves out the objects sheet" in note for note in result.notes)
