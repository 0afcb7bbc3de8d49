"""Predictions as the Predict and Dashboard pages show them: output tables, colours by class
or confidence, the review gallery and the Grad-CAM view of one object."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from svetlana_core.errors import InputError
from svetlana_core.store import Project
from ui import overlay


def outputs_dir(project: Project, model_dir: str) -> Path:
    """Where a model's batch outputs for this project go: ``outputs/<model folder name>``."""
    return project.outputs_dir / Path(model_dir).name


@st.cache_data(max_entries=16, show_spinner=False)
def _read_csv(path: str, _mtime: float) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def output_table(out_dir: Path, name: str = "objects.csv") -> pd.DataFrame | None:
    """A table written by ``predict_many`` (``objects.csv``, ``counts_per_well.csv``…)."""
    path = Path(out_dir) / name
    if not path.exists():
        return None
    return _read_csv(str(path), path.stat().st_mtime)


def class_colours(table: pd.DataFrame, classes: pd.DataFrame) -> dict[int, str]:
    """label → colour of its predicted class."""
    colour_of = dict(zip(classes["name"], classes["colour"]))
    return {int(label): colour_of.get(name, "#888888")
            for label, name in zip(table["label"], table["class"])}


def confidence_colours(table: pd.DataFrame) -> dict[int, str]:
    """label → colour from red (confidence 1/K or less) through yellow to green (1)."""
    confidence = table["confidence"].to_numpy(dtype=float)
    t = np.clip(confidence, 0, 1)
    red = np.where(t < 0.75, 230, np.round(230 * (1 - t) / 0.25)).astype(int)
    green = np.where(t < 0.75, np.round(60 + 170 * t / 0.75), 200).astype(int)
    return {int(label): f"#{r:02x}{g:02x}40" for label, r, g in
            zip(table["label"], np.clip(red, 0, 255), np.clip(green, 0, 255))}


def gallery(image: np.ndarray | None, mask: np.ndarray, table: pd.DataFrame,
            limits: np.ndarray | None, size: int = 64, n: int = 12) -> list[tuple[bytes, str]]:
    """Small crops of the ``n`` least confident objects of ``table``, doubtful first.

    Returns a list of (JPEG bytes, caption). 2D images (the shown plane of 3D ones is chosen
    by the caller).
    """
    chosen = table.sort_values(["confidence", "label"]).head(n)
    half = size // 2
    out = []
    for row in chosen.to_dict("records"):
        # At most n crops per call: a loop over a dozen objects.
        r, c = int(round(row["centroid_row"])), int(round(row["centroid_column"]))
        port = overlay.Viewport(max(0, r - half), max(0, c - half), size, size)
        port = overlay.Viewport(port.row, port.column, min(size, mask.shape[-2] - port.row),
                                min(size, mask.shape[-1] - port.column))
        view_mask = overlay.crop(mask, port)
        if image is None:
            rgb = np.repeat(((view_mask > 0) * 90).astype(np.uint8)[..., None], 3, axis=-1)
        else:
            rgb = overlay.composite(overlay.crop(image, port), limits)
        rgb = overlay.overlay(rgb, view_mask, highlight=int(row["label"]))
        out.append((overlay.encode_jpeg(rgb),
                    f"#{row['label']} {row['class']} {row['confidence']:.2f}"))
    return out


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _model(model_dir: str, _mtime: float):
    from svetlana_core.models import load_model

    return load_model(model_dir, device="cpu")


def explain(model_dir: str, image: np.ndarray | None, mask: np.ndarray, label: int,
            guided: bool = False):
    """Grad-CAM of one object with the model (loaded once per server, on the CPU)."""
    from svetlana_core import explain as explain_module

    weights = Path(model_dir) / "model.json"
    model = _model(model_dir, weights.stat().st_mtime)
    return explain_module.explain_object(model, image, mask, int(label), guided=guided)


def gradcam_panel(model_dir: str, image: np.ndarray | None, mask: np.ndarray, label: int,
                  image_name: str) -> None:
    """Why the model gave one object its class: the patch, its Grad-CAM and the probabilities.

    A model and image that no longer fit (the mask changed since the prediction, another
    number of channels) give one error line naming them, not a traceback.
    """
    st.subheader(f"Why object {label}? (Grad-CAM)")
    guided = st.toggle("Guided Grad-CAM", key="predict_guided", disabled=mask.ndim == 3)
    try:
        explanation, patch = explain(model_dir, image, mask, label, guided=guided)
    except InputError as error:
        st.error(f"No Grad-CAM for object {label} of {image_name} with model "
                 f"{Path(model_dir).name}: {error}")
        return
    classes = json.loads((Path(model_dir) / "model.json").read_text())["classes"]
    a, b, c = st.columns(3)
    plane = patch.shape[1] // 2 if patch.ndim == 4 else None
    first = patch[0] if plane is None else patch[0, plane]
    heat = explanation.heat if plane is None else explanation.heat[plane]
    a.image(heat_overlay(first, heat * 0), caption="patch (first channel)", width=220)
    b.image(heat_overlay(first, heat), width=220,
            caption=f"evidence for {explanation.target_class}")
    c.bar_chart(pd.DataFrame({"probability": explanation.probabilities}, index=classes),
                horizontal=True, height=220)


def heat_overlay(patch_channel: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """An RGB image of a patch channel (grey) with the heat map in red/yellow on top."""
    grey = patch_channel.astype(np.float32)
    span = float(grey.max() - grey.min()) or 1.0
    grey = (grey - grey.min()) / span
    heat = np.clip(heat.astype(np.float32), 0, 1)
    rgb = np.stack([grey, grey, grey], axis=-1) * 0.6
    rgb[..., 0] += 0.4 * heat + 0.4 * heat * (heat > 0.5)
    rgb[..., 1] += 0.4 * np.clip(heat - 0.5, 0, 1) * 2
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
