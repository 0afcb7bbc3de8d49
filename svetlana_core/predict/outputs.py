"""The files :func:`~svetlana_core.predict.predict_many` writes: one class map, confidence map
and object table per image, then the tables that combine every image (objects, counts per
image and per well, a workbook). The layout is described in :mod:`svetlana_core.predict`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from svetlana_core import io, plate, stats
from svetlana_core.values import rgb
from svetlana_core.predict.image import Prediction, prediction_columns
from svetlana_core.predict.resume import _remove_stale_temporaries

if TYPE_CHECKING:
    from svetlana_core.predict.task import _Task

#: Above this many objects the combined workbook leaves out the per-object sheet: openpyxl
#: writes 1,600-4,500 such rows a second here (30,000 objects took 6.8 s, longer than
#: predicting them); objects.csv and objects.parquet always hold them all.
XLSX_MAX_OBJECTS = 5_000

#: The files :func:`_write_combined` writes into ``out_dir``.
COMBINED_FILES = ("objects.csv", "objects.parquet", "counts_per_image.csv",
                  "counts_per_well.csv", "results.xlsx")


def _with_image(objects: pd.DataFrame, name: str, well: str | None) -> pd.DataFrame:
    """The per-object table with ``image`` and ``well`` (missing when None) in front."""
    n = len(objects)
    front = pd.DataFrame(
        {"image": pd.Series([name] * n, dtype="str"), "well": pd.Series([well] * n, dtype="str")}
    )
    return pd.concat([front, objects.reset_index(drop=True)], axis=1)


def _write_image_outputs(
    paths: dict[str, Path], task: _Task, prediction: Prediction,
    colours: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Write the class map, the confidence map (when ``paths`` has one) and the object table
    of one image; return the table. With a ``geojson`` path, the objects' outlines for QuPath;
    when the task asks, the class labels into its OME-Zarr image (or into a copy at
    ``paths["zarr"]``), coloured with ``colours`` (class name -> ``"#rrggbb"``).

    The TIFF descriptions name the classes and what the values mean, so a map opened alone
    (Fiji, napari) says how to read it.
    """
    objects = _with_image(prediction.objects, task.name, task.well)
    description = {
        "classes": list(prediction.classes),
        "background": 0,
        "value": "class index + 1",
        "image": task.name,
        "axes": "YX" if prediction.class_map.ndim == 2 else "ZYX",
    }
    io.write_tiff(paths["class_map"], prediction.class_map, description)
    if "confidence" in paths:  # 256 MB of float32 for 8000 x 8000 pixels: only when asked
        io.write_tiff(
            paths["confidence"],
            prediction.confidence_map,
            {**description, "value": "confidence (top probability), 0 on background"},
        )
    colours = colours or {}
    if "geojson" in paths:
        from svetlana_core.io import geojson

        shown = {name: rgb(colour) for name, colour in colours.items()}
        geojson.write_geojson(paths["geojson"], geojson.mask_to_features(
            prediction.mask, objects, shown, image=task.name))
    if task.zarr_labels is not None:
        io.omezarr.write_class_labels(task.image, prediction.mask, objects, colours,
                                      copy_to=paths.get("zarr"))
    io.write_csv(paths["objects"], objects)
    return objects


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    io.atomic_write(path, lambda handle: table.to_parquet(handle, index=False))


def _write_combined(
    out_dir: Path, tasks: list[_Task], tables: dict[str, pd.DataFrame], classes: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, Path], list[str]]:
    """Write the combined tables of the images in ``tables`` (image name -> object table).

    Returns
    -------
    objects : pandas.DataFrame
        Every object, images in the order of ``tasks``.
    outputs : dict of str to Path
        The files written (see :attr:`~svetlana_core.predict.ManyResult.outputs`).
    notes : list of str
        What is worth telling the user (no wells, a sheet left out of the workbook).
    """
    _remove_stale_temporaries(out_dir / name for name in COMBINED_FILES)
    done = [task for task in tasks if task.name in tables]
    empty = pd.DataFrame(columns=["image", "well", "label", *prediction_columns(classes)])
    if not done:
        # Every image failed (each named in the run's failures): there is nothing to tabulate.
        return empty, {}, ["no image was predicted: no combined tables written"]
    frames = [tables[task.name] for task in done if len(tables[task.name])]
    objects = pd.concat(frames, ignore_index=True) if frames else empty
    images = pd.DataFrame(
        {"image": [task.name for task in done], "well": [task.well for task in done]},
        dtype=object,
    )
    outputs = {"objects_csv": io.write_csv(out_dir / "objects.csv", objects),
               "objects_parquet": out_dir / "objects.parquet"}
    _write_parquet(outputs["objects_parquet"], objects)
    per_image = stats.counts_per_image(objects, classes, images=images)
    outputs["counts_per_image"] = io.write_csv(out_dir / "counts_per_image.csv", per_image)
    sheets = {"counts_per_image": per_image}
    notes = []
    wells = images["well"].dropna()
    well_file = out_dir / "counts_per_well.csv"
    if len(wells):
        layout = plate.infer_layout(wells)
        per_well = stats.counts_per_well(objects, classes, layout=layout, images=images)
        outputs["counts_per_well"] = io.write_csv(well_file, per_well)
        sheets["counts_per_well"] = per_well
        notes.append(f"wells laid out on a {layout}-well plate")
    else:
        well_file.unlink(missing_ok=True)  # a stale one from another run would mislead
        notes.append("no image name holds a well (such as A01): no per-well counts")
    if len(objects) <= XLSX_MAX_OBJECTS:
        sheets = {"objects": objects, **sheets}
    else:
        notes.append(
            f"{len(objects)} objects: the workbook leaves out the objects sheet "
            f"(over {XLSX_MAX_OBJECTS}); objects.csv and objects.parquet hold them"
        )
    outputs["xlsx"] = stats.export_tables(out_dir / "results.xlsx", sheets)
    return objects, outputs, notes
