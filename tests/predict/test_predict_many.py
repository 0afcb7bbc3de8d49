"""svetlana_core.predict.many and the modules it runs (task, resume, outputs, cluster): the
outputs of many images, per-well counts, resuming, failures, Dask."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import io, predict
from svetlana_core.errors import InputError
from tests.predict.scenes import CLASSES, make_model_folder, scene

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
        model_dir, plate, out, progress=lambda *args: calls.append(args), confidence_map=True
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
    (out / "class_maps" / f"{plate[1].stem}.tif").unlink()
    partial = predict.predict_many(other, plate, out)
    assert partial.done == [plate[1].image.name] and len(partial.skipped) == len(plate) - 1

    # Asking for the confidence maps redoes the images that have none; not asking removes them.
    assert not (out / "confidence").exists() or not any((out / "confidence").iterdir())
    maps = predict.predict_many(other, plate, out, confidence_map=True)
    assert maps.done == first.done
    assert len(list((out / "confidence").iterdir())) == len(plate)
    assert predict.predict_many(other, plate, out, confidence_map=True).done == []
    predict.predict_many(other, plate, out, force=True)
    assert list((out / "confidence").iterdir()) == []


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



def test_a_big_table_is_left_out_of_the_workbook(model_dir, plate, tmp_path, monkeypatch):
    monkeypatch.setattr("svetlana_core.predict.outputs.XLSX_MAX_OBJECTS", 10)
    result = predict.predict_many(model_dir, plate, tmp_path / "out")
    sheets = pd.read_excel(tmp_path / "out" / "results.xlsx", sheet_name=None)
    assert list(sheets) == ["counts_per_image", "counts_per_well"]
    assert any("leaves out the objects sheet" in note for note in result.notes)


def test_predicting_one_image_again_keeps_the_others_in_the_combined_tables(model_dir, plate,
                                                                              tmp_path):
    """The Predict page's "this image" after "all images" cut objects.csv from every image to
    one (browser audit; issue 12 item 7): images already up to date join the tables."""
    out = tmp_path / "out"
    everything = predict.predict_many(model_dir, plate, out)
    again = predict.predict_many(model_dir, plate[1:2], out, force=True, tabulate_also=plate)
    assert again.done == [plate[1].image.name] and again.skipped == []
    pd.testing.assert_frame_equal(again.objects, everything.objects)
    assert len(pd.read_csv(out / "objects.csv")) == len(everything.objects)
    per_image = pd.read_csv(out / "counts_per_image.csv")
    assert per_image["image"].tolist() == [pair.image.name for pair in plate]
    # An image whose outputs are stale (another model) is not tabulated, nor predicted.
    other = make_model_folder(tmp_path / "other", seed=5)
    alone = predict.predict_many(other, plate[:1], out, tabulate_also=plate)
    assert alone.objects["image"].unique().tolist() == [plate[0].image.name]
