"""The bad-input catalogue (issue 6): every bad file or value gets one clear line, never a
traceback, and leaves what is stored as it was.

Each case of :data:`CASES` builds one bad input in a fresh folder and says where it goes in:

* through the CLI, in-process (``svetlana_core.cli.main``): exit code 2, one line on stderr
  that matches the case's pattern (which names the file or the value), no traceback;
* through the app's and the core's loaders (``svetlana_core.io``, ``ui.loaders``,
  ``ui.importer.validate_pairs``, ``Project.import_labels_csv``, ``models.load_model``,
  ``TrainConfig``): :class:`InputError` matching the same pattern;
* when the case touches a project (label import, adding images, training from it): the
  project's labels, images, classes and runs are the same afterwards.

Inputs that look bad but are valid (a PNG named ``.tif``, a constant image, a 1 x 1 image,
100,000 objects, labels above 2**31, a class name with commas and quotes) are at the end: they
must work, and the tests say what they give.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import io, models
from svetlana_core import training
from svetlana_core.cli import main
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from tests.builders import project_dataset

ROOT = Path(__file__).resolve().parents[1]
DROP = object()  # a model.json value to leave out


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(world)`` makes it and returns where to try it."""

    id: str
    match: str  # regex: the stderr line and every InputError must match it
    build: Callable[[World], Attempt]


# The catalogue. Builders (``World`` methods) are defined below; lambdas defer the look-up.
CASES: list[Case] = [
    # ---- image and mask files: CLI `objects`, io.load_pair, ui.loaders, validate_pairs
    Case("truncated-tiff", r"image \S*A01\.tif: the TIFF file is truncated",
         lambda w: w.pair(image=w.truncated())),
    Case("text-file-named-tif", r"could not read image \S*notes\.tif",
         lambda w: w.pair(image=w.text_file("notes.tif"))),
    Case("image-missing", r"image \S*gone\.tif does not exist",
         lambda w: w.pair(image=w.tmp / "gone.tif")),
    Case("mask-of-floats", r"mask \S*float\.tif is float with non-integer values",
         lambda w: w.pair(mask=w.tiff("float.tif", w.mask.astype(np.float32) + 0.5))),
    Case("negative-labels", r"mask \S*neg\.tif has negative labels \(minimum -42\)",
         lambda w: w.pair(mask=w.tiff("neg.tif", -w.mask.astype(np.int16)))),
    Case("shape-mismatch", r"mask \S*A01\.tif has shape \(64, 64\) but image \S*half\.tif has "
         r"\(32, 64\)", lambda w: w.pair(image=w.tiff("half.tif", w.image[:32]))),
    Case("2d-mask-for-3d-image", r"mask \S*A01\.tif is 2D .* image \S*stack\.tif is 3D",
         lambda w: w.pair(image=w.tiff("stack.tif", np.stack([w.image] * 5), axes="ZYX"))),
    Case("empty-mask", r"mask \S*zeros\.tif has no objects",
         lambda w: w.pair(mask=w.tiff("zeros.tif", np.zeros_like(w.mask)))),
    Case("header-30000x30000-no-data", r"mask \S*huge\.tif: the TIFF file is truncated: its "
         r"header declares \(30000, 30000\) uint16 pixels \(1\.8 GB\) but the file ends after "
         r"122 bytes", lambda w: w.pair(mask=w.huge_header("huge.tif"))),
    Case("zlib-tiles-declaring-40960x40960", r"mask \S*bomb\.tif: it declares \(40960, 40960\) "
         r"uint16 values \(3\.36 GB\), more than the 1,000,000,000 this server reads",
         lambda w: w.pair(mask=w.bomb("bomb.tif"))),
    Case("zlib-tiles-declaring-40960x40960-image", r"image \S*bomb\.tif: it declares \(40960, "
         r"40960\) uint16 values", lambda w: w.pair(image=w.bomb("bomb.tif"))),
    Case("jpeg-compressed-tiff-mask", r"mask \S*jpeg\.tif is JPEG-compressed TIFF: lossy "
         r"compression changes label values",
         lambda w: w.pair(mask=w.tiff("jpeg.tif", w.mask.astype(np.uint8), compression="jpeg"))),
    Case("nan-pixels", r"image \S*nan\.tif contains NaN values",
         lambda w: w.pair(image=w.tiff("nan.tif", w.with_nan()))),
    Case("uint64-label-beyond-int64", r"mask \S*u64\.tif has label 9223372036854775813",
         lambda w: w.pair(mask=w.tiff("u64.tif", w.mask_with(42, 2**63 + 5, np.uint64)))),
    Case("image-with-7-dims", r"image \S*seven\.tif: cannot guess the axes .* \(1, 2, 2, 2, 2, "
         r"64, 64\)", lambda w: w.pair(image=w.tiff("seven.tif", w.seven_dims()))),
    Case("mask-with-7-dims", r"mask \S*seven\.tif has shape \(1, 2, 2, 2, 2, 64, 64\)",
         lambda w: w.pair(mask=w.tiff("seven.tif", w.seven_dims().astype(np.uint16)))),
    Case("jpeg-mask", r"mask \S*A01\.jpg is a JPEG file",
         lambda w: w.pair(mask=w.jpeg("A01.jpg"))),
    Case("colour-coded-mask", r"mask \S*rgb\.png has 3 channels",
         lambda w: w.pair(mask=w.rgb_mask("rgb.png"))),
    Case("npy-mask-with-python-objects", r"mask \S*obj\.npy holds Python objects",
         lambda w: w.pair(mask=w.object_npy("obj.npy"))),
    Case("cellpose-seg-that-runs-code", r"Cellpose file \S*A01_seg\.npy refers to builtins\.exec",
         lambda w: w.pair(mask=w.evil_seg("A01_seg.npy"))),
    # ---- adding a folder of images to a project: CLI `import-labels`, validate_pairs
    Case("import-folder-with-truncated-tiff", r"image \S*A03\.tif: the TIFF file is truncated",
         lambda w: w.import_folder_with(w.truncated())),
    Case("import-folder-with-text-as-tif", r"could not read image \S*A03\.tif",
         lambda w: w.import_folder_with(w.text_file("t.tif"))),
    Case("images-folder-missing", r"image folder \S*nowhere does not exist",
         lambda w: w.import_labels(images=w.tmp / "nowhere")),
    Case("file-given-as-folder", r"image folder \S*labels\.csv does not exist or is not a folder",
         lambda w: w.import_labels(images=w.labels_csv)),
    Case("masks-folder-without-matches", r"2 image\(s\) in \S*images have no mask in \S*other",
         lambda w: w.import_labels(masks=w.folder("other", {"Z09.tif": w.mask}))),
    # ---- labels CSV: CLI `import-labels`, Project.import_labels_csv, io.read_labels_csv
    Case("csv-unknown-image", r"labels file \S*bad\.csv names 1 images that are not in the "
         r"project: B09\.tif", lambda w: w.csv("image,label,class\nB09.tif,3,live\n",
                                                 store_only=True)),
    Case("csv-unknown-label", r"labels file \S*bad\.csv names object\(s\) 99 of image A01\.tif, "
         r"which are not in its mask \S*A01\.tif \(3 objects, labels 3 to 42\)",
         lambda w: w.csv("image,label,class\nA01.tif,3,live\nA01.tif,99,live\n", cli_only=True)),
    Case("csv-conflicting-duplicates", r"labels file \S*bad\.csv gives (object 3 of A01\.tif "
         r"two different classes|1 objects two different classes: A01\.tif label 3)",
         lambda w: w.csv("image,label,class\nA01.tif,3,live\nA01.tif,3,dead\n")),
    Case("csv-missing-column", r"labels file \S*bad\.csv lacks column\(s\) label",
         lambda w: w.csv("image,class\nA01.tif,live\n")),
    Case("csv-empty-file", r"labels file \S*bad\.csv is empty", lambda w: w.csv("")),
    Case("csv-not-utf8", r"labels file \S*bad\.csv is not UTF-8 text",
         lambda w: w.csv("image,label,class\nA01.tif,3,caf\xe9\n".encode("latin-1"))),
    Case("csv-label-not-integer", r"labels file \S*bad\.csv.*3\.5",
         lambda w: w.csv("image,label,class\nA01.tif,3.5,live\n")),
    Case("csv-label-negative", r"labels file \S*bad\.csv.*-3",
         lambda w: w.csv("image,label,class\nA01.tif,-3,live\n")),
    Case("csv-label-beyond-int64", r"labels file \S*bad\.csv.*99999999999999999999999",
         lambda w: w.csv("image,label,class\nA01.tif,99999999999999999999999,live\n")),
    Case("csv-empty-class", r"labels file \S*bad\.csv has an empty class on line\(s\) 2",
         lambda w: w.csv("image,label,class\nA01.tif,3,\n", store_only=True)),
    Case("csv-too-many-classes", r"labels file \S*bad\.csv would make 22 classes",
         lambda w: w.csv("image,label,class\n" + "".join(
             f"A0{k // 3 + 1}.tif,{(3, 7, 42)[k % 3]},new{k}\n" for k in range(6)),
             store_only=True, extra_classes=14)),
    # ---- training: CLI `train`, TrainConfig.from_dict / validate, a project's dataset
    Case("train-label-less-project", r"project \S*empty has no labelled objects",
         lambda w: w.train_project(w.empty_project())),
    Case("train-folder-not-a-project", r"folder \S*plain is not a Svetlana project",
         lambda w: w.train_project(w.folder("plain", {}))),
    Case("train-project-image-deleted", r"image \S*A02\.tif does not exist",
         lambda w: w.train_project(w.project_with_deleted_image())),
    Case("config-unknown-key", r"unknown training config key\(s\) epochz",
         lambda w: w.config({"epochz": 3})),
    Case("config-negative-epochs", r"epochs=-1 is not valid", lambda w: w.config({"epochs": -1})),
    Case("config-wrong-type", r"epochs='ten' is not valid", lambda w: w.config({"epochs": "ten"})),
    Case("config-unknown-loss", r"loss='hinge' is not valid",
         lambda w: w.config({"loss": "hinge"})),
    Case("config-code-as-augmentation", r"unknown augmentation key \"__import__\('os'\)\"",
         lambda w: w.config({"augment": {"__import__('os')": {}}})),
    Case("config-not-json", r"config file \S*config\.json is not valid JSON",
         lambda w: w.config("{epochs: 3")),
    Case("config-json-list", r"config file \S*config\.json must hold a JSON object",
         lambda w: w.config([1, 2])),
    # ---- model folders: CLI `predict`, models.load_model
    Case("model-json-missing", r"model\.json not found: not a model folder",
         lambda w: w.model(lambda d: (d / "model.json").unlink())),
    Case("model-json-bad-json", r"model\.json is not valid JSON",
         lambda w: w.model(lambda d: (d / "model.json").write_text("{not json"))),
    Case("model-json-wrong-type", r"model\.json key 'in_channels' must be an integer >= 1, "
         r"got '2'", lambda w: w.model(meta={"in_channels": "2"})),
    Case("model-json-missing-key", r"model\.json has no key 'classes'",
         lambda w: w.model(meta={"classes": DROP})),
    Case("model-json-unknown-arch", r"model\.json keys 'arch'/'arch_params': unknown "
         r"architecture 'transformer9000'", lambda w: w.model(meta={"arch": "transformer9000"})),
    # predict (ONNX Runtime) finds it in the graph, load_model (torch) in the weights
    Case("model-json-classes-vs-weights", r"weights\.safetensors key 'classifier\.weight' has "
         r"shape \(3, 8\) but the architecture in model\.json needs \(5, 8\)|model\.onnx gives "
         r"outputs of shape \['n', 3\] but model\.json names 5 classes",
         lambda w: w.model(meta={"classes": list("abcde")})),
    Case("model-json-huge-patch", r"model\.json key 'patch_size' must be 2 positive integers "
         r"\(at most 4096\), got \[100000, 100000\]",
         lambda w: w.model(meta={"patch_size": [100000] * 2})),
    Case("model-json-a-billion-channels", r"model\.json key 'in_channels' is 1000000000; at "
         r"most 1025", lambda w: w.model(meta={"in_channels": 10**9,
                                              "image_channels": 10**9 - 1})),
    Case("model-json-dilation-1e30", r"model\.json key 'dilation' must be from 0 to 4096, got "
         r"1000000000000000000000000000000", lambda w: w.model(meta={"dilation": 10**30})),
    Case("model-weights-changed-after-export", r"weights\.safetensors is not the one \S+model"
         r"\.onnx was exported from", lambda w: w.predict_only(w.model_with_other_weights())),
    Case("model-with-nan-weights", r"failed: A01\.tif: the model gives non-finite probabilities "
         r"for \d+ of the objects: its weights hold NaN", lambda w: w.predict_nan_model()),
    Case("float-mask-label-1e20", r"mask \S*big\.tif has label 1e\+20, above the largest label",
         lambda w: w.pair(mask=w.tiff("big.tif", w.mask_with(42, 1e20, np.float64)))),
    Case("model-weights-missing", r"weights\.safetensors not found: the model folder has no "
         r"weights", lambda w: w.model(lambda d: (d / "weights.safetensors").unlink())),
    Case("model-weights-not-safetensors", r"weights\.safetensors cannot be read as safetensors",
         lambda w: w.model(lambda d: (d / "weights.safetensors").write_text("hello"))),
    Case("model-pickle-pt-posing-as-weights", r"weights\.pt in \S+ is not loaded: pickled",
         lambda w: w.model(w.pickled_weights("weights.pt"))),
    Case("model-pickle-named-safetensors", r"weights\.safetensors cannot be read as safetensors",
         lambda w: w.model(w.pickled_weights("weights.safetensors"))),
    Case("model-path-is-a-file", r"model folder \S*A01\.tif not found",
         lambda w: w.predict(w.images_dir / "A01.tif")),
    Case("predict-image-channels-vs-model", r"failed: A01\.tif: image has 2 channel\(s\) .* the "
         r"model was trained on 1", lambda w: w.predict_two_channels()),
    Case("gradcam-label-not-in-mask", r"label 99 is not an object of mask \S*A01\.tif",
         lambda w: w.gradcam(99)),
]


# ------------------------------------------------------------------------------ the world


@dataclass
class Attempt:
    """Where a bad input goes in."""

    argv: list[str] | None = None  # the CLI
    loaders: list[Callable[[], Any]] = field(default_factory=list)  # each raises InputError
    project: Project | None = None  # stored data that must not change
    after: Callable[[], None] | None = None  # further checks (e.g. no code ran)


def _disks() -> tuple[np.ndarray, np.ndarray]:
    """A 64 x 64 uint8 image and a uint16 mask of three disks labelled 3, 7 and 42."""
    rows, columns = np.mgrid[:64, :64]
    mask = np.zeros((64, 64), np.uint16)
    for label, (r, c) in zip((3, 7, 42), ((16, 16), (16, 48), (48, 32))):
        mask[(rows - r) ** 2 + (columns - c) ** 2 <= 36] = label
    image = (mask > 0).astype(np.uint8) * 150 + 20
    return image, mask


def _model_folder(folder: Path) -> Path:
    """A tiny 2D cnn (random weights) for 1-channel images, classes live/dead/dividing."""
    import torch

    from svetlana_core import models

    torch.manual_seed(0)
    params = {"depth": 2, "width": 8}
    module = models.build_model("cnn", 2, 3, 2, **params)
    meta = {
        "format_version": models.FORMAT_VERSION, "arch": "cnn", "arch_params": params,
        "spatial_dims": 2, "in_channels": 2, "image_channels": 1,
        "classes": ["live", "dead", "dividing"], "patch_size": [16, 16],
        "patch_mode": "context", "dilation": 2, "normalisation": "percentile", "config": {},
        "history": [], "best_epoch": None, "metrics": None, "data": {}, "versions": {},
        "parent": None, "created_at": "2026-01-01T00:00:00+00:00",
    }
    return models.save_model(folder, module, meta)


class _Exec:
    """Pickles as a call of ``exec`` that creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


class World:
    """A fresh folder with good data beside it; builders put one bad thing in."""

    def __init__(self, tmp: Path, base: dict) -> None:
        self.tmp = tmp
        self.image, self.mask = _disks()
        self.images_dir, self.masks_dir = base["images"], base["masks"]
        self.labels_csv, self.model_dir = base["labels"], base["model"]
        self.marker = tmp / "code-ran"
        self._project: Project | None = None

    # -- files ------------------------------------------------------------------------------

    def tiff(self, name: str, array: np.ndarray, axes: str | None = None,
             compression: str | None = None) -> Path:
        path = self.tmp / name
        tifffile.imwrite(path, array, metadata={"axes": axes} if axes else {},
                         compression=compression)
        return path

    def text_file(self, name: str) -> Path:
        path = self.tmp / name
        path.write_text("this is a lab notebook entry, not an image\n")
        return path

    def truncated(self) -> Path:
        path = self.tmp / "A01.tif"
        good = (self.images_dir / "A01.tif").read_bytes()
        path.write_bytes(good[: len(good) // 2])
        return path

    def bomb(self, name: str) -> Path:
        """3.4 MB of zlib tiles that declare 40960 x 40960 uint16 pixels (3.4 GB)."""
        tile = np.zeros((1024, 1024), np.uint16)
        path = self.tmp / name
        tifffile.imwrite(path, (tile for _ in range(40 * 40)), shape=(40960, 40960),
                         dtype=np.uint16, tile=(1024, 1024), compression="zlib")
        return path

    def huge_header(self, name: str) -> Path:
        """A TIFF header for 30000 x 30000 uint16 pixels (1.8 GB) and no pixel data."""
        side, n_tags = 30000, 9
        data_offset = 8 + 2 + 12 * n_tags + 4  # where the one strip would start
        tags = [  # (code, type: 3 short / 4 long, value), sorted by code as TIFF wants
            (256, 4, side), (257, 4, side), (258, 3, 16), (259, 3, 1), (262, 3, 1),
            (273, 4, data_offset), (277, 3, 1), (278, 4, side), (279, 4, side * side * 2),
        ]
        header = b"II*\x00" + struct.pack("<IH", 8, n_tags)
        for code, kind, value in tags:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            header += struct.pack("<HHI", code, kind, 1) + packed
        path = self.tmp / name
        path.write_bytes(header + struct.pack("<I", 0))
        return path

    def with_nan(self) -> np.ndarray:
        image = self.image.astype(np.float32)
        image[5, 5] = np.nan
        return image

    def mask_with(self, old: int, new: int, dtype) -> np.ndarray:
        mask = self.mask.astype(dtype)
        mask[mask == old] = new
        return mask

    def seven_dims(self) -> np.ndarray:
        return np.broadcast_to(self.image, (1, 2, 2, 2, 2, 64, 64)).copy()

    def jpeg(self, name: str) -> Path:
        import imageio.v3 as iio

        path = self.tmp / name
        iio.imwrite(path, (self.mask > 0).astype(np.uint8) * 255, extension=".jpg")
        return path

    def rgb_mask(self, name: str) -> Path:
        import imageio.v3 as iio

        path = self.tmp / name
        rgb = np.stack([self.mask % 256, self.mask * 3 % 256, self.mask * 7 % 256], axis=-1)
        iio.imwrite(path, rgb.astype(np.uint8))
        return path

    def object_npy(self, name: str) -> Path:
        path = self.tmp / name
        np.save(path, np.array([self.mask, "text"], dtype=object), allow_pickle=True)
        return path

    def evil_seg(self, name: str) -> Path:
        path = self.tmp / name
        content = {"masks": self.mask, "outlines": _Exec(self.marker)}
        np.save(path, np.array(content, dtype=object), allow_pickle=True)
        return path

    def folder(self, name: str, files: dict[str, np.ndarray]) -> Path:
        path = self.tmp / name
        path.mkdir()
        for file, array in files.items():
            tifffile.imwrite(path / file, array)
        return path

    # -- attempts ---------------------------------------------------------------------------

    def pair(self, image: Path | None = None, mask: Path | None = None) -> Attempt:
        """An image/mask pair: the CLI `objects`, io.load_pair, ui.loaders, validate_pairs."""
        image = image or self.images_dir / "A01.tif"
        mask = mask or self.masks_dir / "A01.tif"
        return Attempt(
            argv=["objects", str(image), str(mask)],
            loaders=[
                lambda: io.load_pair(image, mask),
                lambda: _ui_load_pair(image, mask),
                lambda: _validate_pair(image, mask),
            ],
            after=self._no_code_ran,
        )

    def import_labels(self, images: Path | None = None, masks: Path | None = None,
                      labels: Path | None = None) -> Attempt:
        images = images or self.images_dir
        masks = masks or self.masks_dir
        return Attempt(
            argv=["import-labels", str(self.project.folder), "--images", str(images),
                  "--masks", str(masks), "--labels", str(labels or self.labels_csv),
                  "--add-classes"],  # new classes are a refusal of their own (test_cli)
            project=self.project,
        )

    def import_folder_with(self, bad: Path) -> Attempt:
        """A copy of the good folders plus a bad image A03.tif (with a good mask)."""
        images = self.folder("imgs", {n: self.image for n in ("A01.tif", "A02.tif")})
        (images / "A03.tif").write_bytes(bad.read_bytes())
        masks = self.folder("msks", {n: self.mask for n in ("A01.tif", "A02.tif", "A03.tif")})
        attempt = self.import_labels(images, masks)
        pairs = io.pair_files(images, masks)
        attempt.loaders.append(lambda: _raise_report(_validate(pairs)))
        return attempt

    def csv(self, text: str | bytes, store_only: bool = False, cli_only: bool = False,
            extra_classes: int = 0) -> Attempt:
        """A labels CSV: CLI import-labels, Project.import_labels_csv, io.read_labels_csv."""
        for k in range(extra_classes):
            self.project.add_class(f"old{k}")
        path = self.tmp / "bad.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        attempt = self.import_labels(labels=path)
        if not cli_only:
            attempt.loaders.append(lambda: self.project.import_labels_csv(path))
        if not (store_only or cli_only):
            attempt.loaders.append(lambda: io.read_labels_csv(path))
        return attempt

    def empty_project(self) -> Project:
        return Project.create(self.tmp / "empty")

    def project_with_deleted_image(self) -> Project:
        images = self.folder("own_images", {n: self.image for n in ("A01.tif", "A02.tif")})
        project = Project.create(self.tmp / "own_project")
        project.import_labels_csv(self.labels_csv, images=io.pair_files(images, self.masks_dir))
        (images / "A02.tif").unlink()
        return project

    def train_project(self, project: Project | Path) -> Attempt:
        folder = project.folder if isinstance(project, Project) else project
        config = training.TrainConfig(epochs=1, device="cpu")
        loaders = []
        if isinstance(project, Project):
            loaders.append(lambda: project_dataset(project, config))
        return Attempt(
            argv=["train", str(folder), "--out", str(self.tmp / "model"), "--epochs", "1",
                  "--device", "cpu"],
            loaders=loaders,
            project=project if isinstance(project, Project) else None,
        )

    def config(self, values: Any) -> Attempt:
        path = self.tmp / "config.json"
        path.write_text(values if isinstance(values, str) else json.dumps(values))
        loaders = []
        if isinstance(values, dict):
            loaders.append(lambda: training.TrainConfig.from_dict(values).validate())
        return Attempt(
            argv=["train", str(self.project.folder), "--out", str(self.tmp / "model"),
                  "--config", str(path)],
            loaders=loaders,
            project=self.project,
        )

    def model(self, change: Callable[[Path], None] | None = None,
              meta: dict | None = None) -> Attempt:
        import shutil

        folder = self.tmp / "model"
        shutil.copytree(self.model_dir, folder)
        if change is not None:
            change(folder)
        if meta is not None:
            values = json.loads((folder / "model.json").read_text())
            values.update(meta)
            values = {key: value for key, value in values.items() if value is not DROP}
            (folder / "model.json").write_text(json.dumps(values))
        attempt = self.predict(folder)
        attempt.loaders.append(lambda: models.load_model(folder))
        return attempt

    def pickled_weights(self, name: str) -> Callable[[Path], None]:
        def change(folder: Path) -> None:
            import torch

            (folder / "weights.safetensors").unlink()
            torch.save({"classifier.weight": _Exec(self.marker)}, folder / name)

        return change

    def predict(self, model: Path, images: Path | None = None) -> Attempt:
        return Attempt(
            argv=["predict", "--model", str(model), "--images", str(images or self.images_dir),
                  "--masks", str(self.masks_dir), "--out", str(self.tmp / "out"), "--quiet",
                  "--device", "cpu"],
            after=self._no_code_ran,
        )

    def predict_only(self, model: Path) -> Attempt:
        """Prediction of a model that torch still loads: only the CPU path refuses it."""
        return self.predict(model)

    def model_with_other_weights(self) -> Path:
        import shutil

        from tests.builders import cnn_model_folder

        folder = shutil.copytree(self.model_dir, self.tmp / "model")
        other = cnn_model_folder(self.tmp / "other", seed=3, **_same_network(self.model_dir))
        shutil.copy(other / "weights.safetensors", folder / "weights.safetensors")
        return folder

    def predict_nan_model(self) -> Attempt:
        """A model whose weights are all NaN (saved as it is), on one image."""
        import torch

        loaded = models.load_model(self.model_dir)
        with torch.no_grad():
            for parameter in loaded.module.parameters():
                parameter.fill_(float("nan"))
        folder = models.save_model(self.tmp / "nan", loaded.module, loaded.meta)
        images = self.tmp / "one"
        images.mkdir()
        tifffile.imwrite(images / "A01.tif", self.image)
        return self.predict(folder, images)

    def predict_two_channels(self) -> Attempt:
        """One 2-channel image (one failed image is one stderr line) for a 1-channel model."""
        images = self.tmp / "two"
        images.mkdir()
        tifffile.imwrite(images / "A01.tif", np.stack([self.image] * 2), metadata={"axes": "CYX"})
        return self.predict(self.model_dir, images)

    def gradcam(self, label: int) -> Attempt:
        return Attempt(argv=[
            "gradcam", "--model", str(self.model_dir), "--image", str(self.images_dir / "A01.tif"),
            "--mask", str(self.masks_dir / "A01.tif"), "--label", str(label),
            "--out", str(self.tmp / "cam.png")])

    # -- the project ------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """A project with both images and four labels (two classes), made on first use."""
        if self._project is None:
            project = Project.create(self.tmp / "project")
            project.import_labels_csv(self.labels_csv, images=io.pair_files(self.images_dir,
                                                                             self.masks_dir))
            self._project = project
        return self._project

    def _no_code_ran(self) -> None:
        assert not self.marker.exists(), "a pickled file ran code"


def _ui_load_pair(image: Path, mask: Path):
    from ui import loaders

    return loaders.load_pair({"path": str(image), "mask_path": str(mask), "axes": None})


def _validate(pairs):
    from ui import importer

    return importer.validate_pairs(pairs)


def _validate_pair(image: Path, mask: Path) -> None:
    _raise_report(_validate([io.Pair(image=image, mask=mask, stem=image.stem)]))


def _raise_report(report: pd.DataFrame) -> None:
    """The app's validation report as an exception, so it is tested like the loaders."""
    errors = report.loc[report["status"] == "error", "message"]
    if len(errors):
        raise InputError(errors.iloc[0])


def snapshot(project: Project) -> tuple:
    return (
        project.labels().to_dict("records"),
        project.images().to_dict("records"),
        project.classes().to_dict("records"),
        project.runs().to_dict("records"),
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("good")
    image, mask = _disks()
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("A01.tif", "A02.tif"):
        tifffile.imwrite(images / name, image)
        tifffile.imwrite(masks / name, mask)
    labels = folder / "labels.csv"
    labels.write_text("image,label,class\nA01.tif,3,live\nA01.tif,7,dead\n"
                      "A02.tif,42,live\nA02.tif,3,dead\n")
    return {"images": images, "masks": masks, "labels": labels,
            "model": _model_folder(folder / "model")}


@pytest.fixture
def world(base, tmp_path):
    return World(tmp_path, base)


# ------------------------------------------------------------------------------ the tests


def test_catalogue_is_large_and_distinct():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, world, capsys):
    attempt = case.build(world)
    before = snapshot(attempt.project) if attempt.project is not None else None
    capsys.readouterr()
    if attempt.argv is not None:
        code = main(attempt.argv)
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2, (out, err)
        assert len(lines) == 1, err
        assert re.search(case.match, lines[0]), lines[0]
        assert "Traceback" not in out + err
    for loader in attempt.loaders:
        with pytest.raises(InputError, match=case.match):
            loader()
    if attempt.project is not None:
        assert snapshot(attempt.project) == before
        assert not (attempt.project.folder.parent / "model").exists()
    if attempt.after is not None:
        attempt.after()


def test_a_file_name_that_is_not_utf8_is_one_line_and_creates_no_project(world, tmp_path):
    """Issue 10 item 10: a non-UTF-8 byte in a file name was a traceback, and the refused
    import left an empty project behind."""
    import os
    import shutil

    images = tmp_path / "odd"
    shutil.copytree(world.images_dir, images)
    name = os.fsdecode(b"A0\xff.tif")
    shutil.copy(world.images_dir / "A01.tif", images / name)
    target = tmp_path / "new-project"
    code = main(["import-labels", str(target), "--images", str(images), "--masks",
                 str(world.masks_dir), "--labels", str(world.labels_csv)])
    assert code == 2
    assert not target.exists()


def test_a_bad_import_creates_no_project(world, tmp_path):
    target = tmp_path / "new-project"
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label,class\nA01.tif,99,live\n")
    assert main(["import-labels", str(target), "--images", str(world.images_dir),
                 "--masks", str(world.masks_dir), "--labels", str(bad)]) == 2
    assert not target.exists()


def test_header_of_30000_squared_allocates_nothing(world):
    path = world.huge_header("huge.tif")
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="TIFF file is truncated"):
            io.read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # 1.8 GB declared


def test_terminal_sees_one_line_and_no_traceback(world):
    """A real `python -m svetlana_core` from the repository root, on a truncated TIFF."""
    bad = world.truncated()
    result = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "objects", str(bad),
         str(world.masks_dir / "A01.tif")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert re.fullmatch(rf"error: could not read image {re.escape(str(bad))}: the TIFF file is "
                        r"truncated: .*\n", result.stderr)


# ------------------------------------------------------------------ valid, though they look bad


def test_png_named_tif_is_read_by_its_content(world):
    import imageio.v3 as iio

    path = world.tmp / "A01.tif"
    iio.imwrite(path, world.image, extension=".png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    image, mask = io.load_pair(path, world.masks_dir / "A01.tif")
    np.testing.assert_array_equal(image, world.image[np.newaxis])


def test_constant_image_gives_finite_patches(world):
    from svetlana_core import patches

    image = np.full((1, 64, 64), 7, np.uint8)
    for normalisation in ("percentile", "minmax"):
        cut = patches.extract(image, world.mask, [3, 7, 42], size=(16, 16),
                              normalisation=normalisation)
        assert cut.shape == (3, 2, 16, 16)
        assert np.isfinite(cut).all()
        np.testing.assert_array_equal(cut[:, 0], 0)  # no contrast: zero, not NaN


def test_one_by_one_image_is_one_object(world, capsys):
    image = world.tiff("one.tif", np.full((1, 1), 9, np.uint8))
    mask = world.tiff("one_mask.tif", np.ones((1, 1), np.uint16))
    assert main(["objects", str(image), str(mask)]) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert table[["label", "area", "bbox_row_stop", "bbox_column_stop"]].values.tolist() == \
        [[1, 1, 1, 1]]


def test_labels_above_two_to_the_31_round_trip(world, tmp_path):
    mask = world.mask_with(42, 2**40, np.uint64)
    mask[mask == 7] = 2**31 + 1
    images = world.folder("big_images", {"A01.tif": world.image})
    masks = world.folder("big_masks", {"A01.tif": mask})
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,label,class\nA01.tif,{2**40},live\nA01.tif,{2**31 + 1},dead\n")
    assert main(["import-labels", str(tmp_path / "p"), "--images", str(images),
                 "--masks", str(masks), "--labels", str(labels)]) == 0
    stored = Project.open(tmp_path / "p").labels()
    assert sorted(stored["label"].tolist()) == [2**31 + 1, 2**40]


def test_class_name_with_commas_and_quotes_round_trips(world, tmp_path):
    labels = tmp_path / "labels.csv"
    name = 'dead, "really"'
    labels.write_text('image,label,class\nA01.tif,7,"dead, ""really"""\nA01.tif,3,live\n')
    assert main(["import-labels", str(tmp_path / "p"), "--images", str(world.images_dir),
                 "--masks", str(world.masks_dir), "--labels", str(labels)]) == 0
    out = tmp_path / "out.csv"
    assert main(["export-labels", str(tmp_path / "p"), "--out", str(out)]) == 0
    back = pd.read_csv(out, keep_default_na=False)
    assert back.values.tolist() == [["A01.tif", 3, "live"], ["A01.tif", 7, name]]
    assert main(["import-labels", str(tmp_path / "q"), "--images", str(world.images_dir),
                 "--masks", str(world.masks_dir), "--labels", str(out)]) == 0
    assert Project.open(tmp_path / "q").labels()["class"].tolist() == ["live", name]


def test_mask_with_100000_objects_is_handled_in_bounded_memory(world):
    from svetlana_core import objects

    rows, columns = np.mgrid[:1002, :1002]
    keep = (rows % 3 < 2) & (columns % 3 < 2)  # 2 x 2 squares, one pixel apart
    mask = np.where(keep, (rows // 3) * 334 + columns // 3 + 1, 0).astype(np.uint32)
    image = world.tiff("many_image.tif", (mask % 200).astype(np.uint8))
    path = world.tiff("many.tif", mask)
    tracemalloc.start()
    try:
        _, loaded = io.load_pair(image, path)
        table = objects.object_table(loaded)
        report = _validate([io.Pair(image=image, mask=path, stem="many")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(table) == 334 * 334 == 111_556
    assert (table["area"] == 4).all()
    assert report[["status", "objects"]].values.tolist() == [["ok", 111_556]]
    assert peak < 200 * 2**20  # the mask is 4 MB


def _same_network(model_dir: Path) -> dict:
    """The meta keys that fix a model folder's network, for a second one of the same shape."""
    meta = json.loads((model_dir / "model.json").read_text())
    return {key: meta[key] for key in ("arch", "arch_params", "classes", "in_channels",
                                       "image_channels", "patch_size", "spatial_dims")}
