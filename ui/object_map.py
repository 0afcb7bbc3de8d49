"""The object map: every object of an image or of the project as a point, placed by its
features, coloured by label, prediction, confidence or image; box and lasso selections label
many objects at once, and objects picked on the image light up on the map.

The map's coordinates are computed once per model (or for the hand-crafted features) and per
set of masks, and kept in the project (``object_maps/<key>.parquet``): reopening the page reads
them back. No torch here: model features come from the model's ONNX graph.
"""

from __future__ import annotations

import hashlib
import io as bytes_io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from ui import overlay, runs

MODEL, HANDCRAFTED, TWO_FEATURES = ("model features (PCA)", "hand-crafted features (PCA)",
                                    "two hand-crafted features")
COLOUR_BY = ("label", "predicted class", "confidence", "image", "well")
#: Colour of selected objects on the image, apart from every class palette colour.
SELECTED = "#00e5ff"
UNLABELLED = "#9e9e9e"


def _files(project: Project) -> dict[str, tuple[str | None, str]]:
    files, _ = project.training_files()
    return files


def _cache_key(project: Project, source: str, model_dir: str | None) -> str:
    """Same model folder, same masks (names, paths, sizes, times): same map."""
    digest = hashlib.sha256(f"{source}\0{model_dir}".encode())
    if model_dir:
        meta = Path(model_dir) / "model.json"
        digest.update(str(meta.stat().st_mtime_ns if meta.exists() else 0).encode())
    for name, (_, mask) in sorted(_files(project).items()):
        stat = os.stat(mask) if os.path.exists(mask) else None
        digest.update(f"{name}\0{mask}\0{stat and (stat.st_size, stat.st_mtime_ns)}".encode())
    return digest.hexdigest()[:24]


def features(project: Project, source: str, model_dir: str | None) -> pd.DataFrame:
    """``image, label`` and the feature columns of every object of the project, computed once
    and kept in ``<project>/object_maps/``.

    Raises
    ------
    InputError
        A model that has no layers to read (a random forest), unreadable files.
    """
    from svetlana_core.predict.embed import embed_files, handcrafted_files

    folder = project.folder / "object_maps"
    path = folder / f"{_cache_key(project, source, model_dir)}.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    files = _files(project)
    table = embed_files(model_dir, files) if source == MODEL else handcrafted_files(files)
    folder.mkdir(exist_ok=True)
    io.atomic_write(path, lambda handle: table.to_parquet(handle, index=False))
    return table


def coordinates(table: pd.DataFrame, source: str, axes: tuple[str, str] | None = None
                ) -> pd.DataFrame:
    """``image, label, x, y``: the first two principal components of the features, or the two
    hand-crafted features named in ``axes``."""
    from svetlana_core.objects.embedding import feature_matrix, pca_2d

    keep = table[["image", "label"]].reset_index(drop=True)
    if source == TWO_FEATURES and axes:
        return keep.assign(x=table[axes[0]].to_numpy(float), y=table[axes[1]].to_numpy(float))
    matrix, _ = feature_matrix(table.drop(columns=["image", "label"]))
    xy = pca_2d(matrix)
    return keep.assign(x=xy[:, 0], y=xy[:, 1])


def with_colours(points: pd.DataFrame, project: Project, model_dir: str | None
                 ) -> pd.DataFrame:
    """The points with the user's ``labelled`` class, the ``predicted`` class, ``confidence``
    and ``well``, for colouring."""
    labels = project.labels()[["image", "label", "class"]].rename(columns={"class": "labelled"})
    points = points.merge(labels, on=["image", "label"], how="left")
    if model_dir:
        predicted = project.predictions(model_dir)
        if len(predicted):
            predicted = predicted[["image", "label", "class", "confidence"]].rename(
                columns={"class": "predicted"})
            points = points.merge(predicted, on=["image", "label"], how="left")
    for column in ("predicted", "confidence"):
        if column not in points:
            points[column] = np.nan
    wells = project.images().set_index("name")["well"]
    return points.assign(well=points["image"].map(wells))


def figure(points: pd.DataFrame, colour_by: str, palette: dict[str, str],
           picked: pd.DataFrame | None = None, titles: tuple[str, str] = ("", "")) -> go.Figure:
    """The map: WebGL points, one trace per colour group (customdata = row number), the
    objects picked on the image drawn larger on top."""
    fig = go.Figure()
    if colour_by == "confidence":
        fig.add_trace(go.Scattergl(
            x=points["x"], y=points["y"], mode="markers", customdata=points.index,
            marker={"size": 5, "color": points["confidence"].fillna(0), "colorscale": "Viridis",
                    "cmin": 0, "cmax": 1, "colorbar": {"title": "confidence"}},
            name="objects", hovertemplate="%{text}<extra></extra>", text=_hover(points)))
    else:
        column = {"label": "labelled", "predicted class": "predicted"}.get(colour_by, colour_by)
        groups = points[column].fillna("—").astype(str)
        for name in sorted(groups.unique(), key=lambda n: (n == "—", n)):
            part = points[groups == name]
            colour = palette.get(name, UNLABELLED if name == "—" else None)
            fig.add_trace(go.Scattergl(
                x=part["x"], y=part["y"], mode="markers", customdata=part.index,
                marker={"size": 5, "color": colour}, name=f"{name} ({len(part)})",
                hovertemplate="%{text}<extra></extra>", text=_hover(part)))
    if picked is not None and len(picked):
        fig.add_trace(go.Scattergl(
            x=picked["x"], y=picked["y"], mode="markers", customdata=picked.index,
            marker={"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": SELECTED,
                                                                   "width": 2}},
            name=f"picked on the image ({len(picked)})", hoverinfo="skip"))
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      dragmode="lasso", legend={"orientation": "h", "y": -0.08},
                      xaxis_title=titles[0], yaxis_title=titles[1])
    return fig


def _hover(points: pd.DataFrame) -> list[str]:
    return [f"{image} #{label}" for image, label in zip(points["image"], points["label"])]


def selected(event, points: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``points`` a plotly selection event chose (box or lasso), by customdata."""
    chosen = _points_of(event)
    rows = sorted({int(p["customdata"] if not isinstance(p["customdata"], list)
                       else p["customdata"][0]) for p in chosen if "customdata" in p})
    return points.loc[[r for r in rows if r in points.index]]


def _points_of(event) -> list[dict]:
    """The selected points of a plotly chart's event (a dict when restored from a session)."""
    selection = (event or {}).get("selection") or {}
    return list(selection.get("points") or [])


def selection_colours(rows: pd.DataFrame, image: str) -> dict[int, str]:
    """Label -> highlight colour of the selected objects of ``image``, for the image viewer."""
    return {int(label): SELECTED for label in rows.loc[rows["image"] == image, "label"]}


def label_selection(project: Project, rows: pd.DataFrame, class_name: str, author: str) -> str:
    """Store ``class_name`` on every selected object: one transaction, one undo step (source
    ``bulk``); returns what was done, per image when the selection spans several.

    Raises
    ------
    InputError
        An empty selection, or an unknown class.
    """
    if rows.empty:
        raise InputError("the selection is empty: draw a box or a lasso around points first")
    project.annotate_many([(image, int(label), class_name) for image, label
                           in rows[["image", "label"]].itertuples(index=False)],
                          author=author, source="bulk", one_action=True)
    counts = rows.groupby("image").size()
    where = ", ".join(f"{n} on {image}" for image, n in counts.items())
    return (f"{len(rows)} object(s) labelled {class_name!r}"
            + (f" ({where})" if len(counts) > 1 else f" on {counts.index[0]}"))


def image_figure(jpeg: bytes, objects: pd.DataFrame, viewport: overlay.Viewport) -> go.Figure:
    """The image preview with one invisible point per object at its centroid, so a click, box
    or lasso on the image picks objects (customdata = label)."""
    import base64

    from PIL import Image

    # The JPEG itself goes to the browser (a data URI): its pixels as JSON numbers would be
    # 3 million values for a 1024² view.
    width, height = Image.open(bytes_io.BytesIO(jpeg)).size  # reads the header only
    x = (objects["centroid_column"] - viewport.column) / viewport.step
    y = (objects["centroid_row"] - viewport.row) / viewport.step
    inside = (x >= 0) & (y >= 0) & (x < width) & (y < height)
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    fig = go.Figure(go.Image(source=source, hoverinfo="skip"))
    fig.add_trace(go.Scattergl(x=x[inside], y=y[inside], mode="markers",  # SVG: 2 s for 10,000
                             customdata=objects.loc[inside, "label"],
                             marker={"size": 8, "color": "rgba(255,255,255,0.01)"},
                             hovertemplate="#%{customdata}<extra></extra>", showlegend=False))
    fig.update_layout(height=min(720, 40 + height), margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      dragmode="lasso", xaxis={"visible": False},
                      yaxis={"visible": False, "scaleanchor": "x"})
    return fig


def picked_labels(event) -> list[int]:
    """Labels picked on the image figure (click, box or lasso)."""
    chosen = _points_of(event)
    return sorted({int(p["customdata"]) for p in chosen if "customdata" in p})


def model_choices(project: Project) -> dict[str, str]:
    """Model folder -> label of the project's trained CNNs (random forests have no layers)."""
    trained = runs.model_runs(project, kind=runs.TRAINING_KINDS)
    out = {}
    for record in trained.to_dict("records"):
        meta = Path(record["model_dir"]) / "model.json"
        try:
            if json.loads(meta.read_text()).get("arch") != "rf":
                out[record["model_dir"]] = runs.model_label(record)
        except (OSError, ValueError):
            continue
    return out


def gallery_table(rows: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """What :func:`ui.predictions.gallery` needs of the selected objects of one image: label,
    class (the prediction, else the user's label), confidence and centroid."""
    table = rows.merge(objects[["label", "centroid_row", "centroid_column"]], on="label")
    shown = table["predicted"].where(table["predicted"].notna(), table["labelled"])
    return table.assign(**{"class": shown.fillna("—"),
                           "confidence": table["confidence"].astype(float)})
