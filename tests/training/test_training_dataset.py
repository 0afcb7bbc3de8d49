"""svetlana_core.training.dataset: labelled objects cropped into one ObjectSet, from arrays,
files or folders."""

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import training as T
from svetlana_core.errors import InputError
from tests.builders import project_dataset
from tests.builders import tiny_train_config as cfg


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
    ds = project_dataset(project, cfg())
    assert ds.classes == ("dark", "bright")  # project order, unused class left out
    assert len(ds) == 32 and set(ds.images) == {"img0.tif", "img1.tif"}


def test_dataset_from_files_reads_only_labelled_images_with_their_axes(tmp_path, items):
    files, rows = {}, []
    for name, image, mask, labels in items[:2]:
        # stored as (rows, columns, channels): only the axes given per image read it right
        tifffile.imwrite(tmp_path / name, np.moveaxis(image, 0, -1)[..., [0, 0]])
        tifffile.imwrite(tmp_path / f"mask_{name}", mask.astype(np.uint16))
        files[name] = (str(tmp_path / name), str(tmp_path / f"mask_{name}"))
        rows.append(labels.assign(image=name))
    files["unlabelled.tif"] = (None, str(tmp_path / "not-there.tif"))  # never read
    labels = pd.concat(rows)
    ds = T.dataset_from_files(files, labels, cfg(), axes={"img0.tif": "YXC", "img1.tif": "YXC"})
    assert ds.image_channels == 2 and len(ds) == 32
    assert ds.classes == ("bright", "dark") and list(np.unique(ds.images)) == ["img0.tif",
                                                                              "img1.tif"]
    by_stem = labels.assign(image=labels["image"].str.replace(".tif", "", regex=False))
    again = T.dataset_from_files(files, by_stem, cfg(), classes=["dark", "bright"], axes="YXC")
    assert again.classes == ("dark", "bright")
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.y, 1 - ds.y)


def test_dataset_from_files_rejects_unknown_images_and_bad_tables(tmp_path, items):
    name, _, mask, labels = items[0]
    tifffile.imwrite(tmp_path / "m.tif", mask.astype(np.uint16))
    files = {name: (None, tmp_path / "m.tif")}
    extra = pd.DataFrame({"image": [f"gone{i}.tif" for i in range(7)], "label": 3,
                          "class": "dark"})
    with pytest.raises(InputError, match=r"the labels table names image\(s\) gone0.tif, "
                                         r"gone1.tif, .* and 2 more that are not in the files"):
        T.dataset_from_files(files, pd.concat([labels.assign(image=name), extra]), cfg())
    with pytest.raises(InputError, match=r"labels table has no column\(s\) image"):
        T.dataset_from_files(files, labels, cfg())
    ds = T.dataset_from_files(files, labels.assign(image=name), cfg())
    assert ds.image_channels == 0 and ds.X.shape == (16, 1, 16, 16)


def test_dataset_from_folders_mask_only(tmp_path, items):
    (tmp_path / "masks").mkdir()
    rows = []
    for name, _, mask, labels in items[:2]:
        tifffile.imwrite(tmp_path / "masks" / name, mask.astype(np.uint16))
        rows.append(labels.assign(image=name.replace(".tif", "")))  # stems are accepted
    (tmp_path / "masks" / ".hidden.tif").write_bytes(b"not an image")
    pd.concat(rows).to_csv(tmp_path / "labels.csv", index=False)
    ds = T.dataset_from_folders(None, tmp_path / "masks", tmp_path / "labels.csv", cfg())
    assert ds.X.shape == (32, 1, 16, 16) and set(ds.images) == {"img0.tif", "img1.tif"}
    with pytest.raises(InputError, match=r"mask folder \S*nothing does not exist"):
        T.dataset_from_folders(None, tmp_path / "nothing", tmp_path / "labels.csv", cfg())
