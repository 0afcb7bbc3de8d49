"""Predictions as the Predict and Dashboard pages show them: the model picker, what to
predict, the progress of a prediction run, colours by class or confidence, the review gallery,
the Grad-CAM view of one object and the downloads.

No torch import on a page that shows no Grad-CAM: :mod:`svetlana_core.explain` and
:mod:`svetlana_core.models` load lazily, the model only when an object is explained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from svetlana_core import explain, io, models
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from ui import legend, loaders, overlay, runs, state

#: Where the Predict page takes the images to predict from.
SCOPES = ("this image", "all images of the project", "a server folder")


def outputs_dir(project: Project, model_dir: str) -> Path:
    """Where a model's batch outputs for this project go: ``outputs/<model folder name>``."""
    return project.outputs_dir / Path(model_dir).name


def pick_model(project: Project, missing: str) -> str:
    """The model chooser of the Predict and Dashboard pages: the project's trained CNNs and
    random forests, newest first, opening on the project's current model; one key, so both
    pages show the same choice.

    Without a model, shows ``missing`` (what to do first) and stops the page.
    """
    trained = runs.model_runs(project, kind=runs.TRAINING_KINDS)
    if trained.empty:
        st.info(missing)
        st.stop()
    labels = {r["model_dir"]: runs.model_label(r) for r in trained.to_dict("records")}
    by_name = {Path(folder).name: folder for folder in labels}
    chosen = by_name.get(st.query_params.get("model", ""))  # ?model=<folder name> of a link
    if chosen is None:
        chosen = st.session_state.get(state.MODEL_KEY)
    if chosen not in labels:
        current = project.current_model()
        chosen = current if current in labels else next(iter(labels))
    # Set on every run: a widget of the same key on another page starts empty (its id is the
    # page's), and would open on the first model of the list instead.
    st.session_state[state.MODEL_KEY] = chosen
    choice = st.selectbox("Model", list(labels), format_func=labels.get, key=state.MODEL_KEY,
                          help="The project's current model (sidebar) unless you pick another "
                               "here, for this tab", on_change=_choose_model)
    if st.query_params.get("model") != Path(choice).name:  # not a URL write every run
        st.query_params["model"] = Path(choice).name
    return choice


def _choose_model() -> None:
    """The tab's model goes into the URL before the page runs again, so the link's old
    ``?model=`` does not win over the choice just made."""
    st.query_params["model"] = Path(st.session_state[state.MODEL_KEY]).name


def prediction_source(scope: str, image_name: str, images: pd.DataFrame,
                      folder: str | None = None, masks: str | None = None) -> dict:
    """The ``source`` of :func:`svetlana_core.jobs.submit_prediction` for a choice of
    :data:`SCOPES`: project images by name, or a server folder inside the data roots.

    Raises
    ------
    InputError
        A folder outside the data roots, or one whose first file links out of them.
    """
    if scope != "a server folder":
        chosen = [image_name] if scope == "this image" else images["name"].tolist()
        return {"kind": "project", "images": chosen}
    images_dir = state.resolve_inside_roots(folder or "")
    masks_dir = state.resolve_inside_roots(masks) if masks else None
    # the worker pairs the folder itself: refuse links that lead out before it starts
    _, skipped = state.pairs_inside_roots(io.pair_files(images_dir, masks_dir))
    if skipped:
        raise InputError(skipped[0])
    return {"kind": "folder", "images": str(images_dir),
            "masks": str(masks_dir) if masks_dir else None}


def progress_panel(project: Project, run_id: int) -> None:
    """The progress of a prediction run, redrawn every second while it runs; the page is
    drawn again once when it ends (to show the new predictions)."""
    active = project.run(run_id)["status"] in ("queued", "running")

    @st.fragment(run_every=1 if active else None)
    def progress() -> None:
        record = project.run(run_id)
        summary = record.get("summary") or {}
        done, total = summary.get("finished", 0), summary.get("total")
        counted = f"{done}/{total} images" if total else "counting the images"
        st.progress(done / total if total else 0.0,
                    text=f"prediction run {run_id}: {record['status']} · {counted}")
        if summary.get("text") and record["status"] not in ("queued", "running"):
            st.caption(summary["text"])  # how many predicted, up to date, failed; the engine
        for note in summary.get("notes", [])[:5]:
            st.caption(note)
        for failure in summary.get("failed", [])[:10]:
            st.warning(failure)
        if record.get("error"):
            st.error(record["error"])
        if active and record["status"] not in ("queued", "running"):
            st.rerun()

    progress()


def table_key(image_name: str, model_dir: str, classes: list[str], low: float,
              high: float) -> str:
    """The widget key of the Predict page's object table for one view of it."""
    view = json.dumps([image_name, model_dir, sorted(classes), low, high])
    return "predict_table_" + hashlib.sha1(view.encode()).hexdigest()[:12]


def confidence_colours(table: pd.DataFrame) -> dict[int, str]:
    """label → colour from red (confidence 1/K or less) through yellow to green (1)."""
    confidence = table["confidence"].to_numpy(dtype=float)
    t = np.clip(confidence, 0, 1)
    red = np.where(t < 0.75, 230, np.round(230 * (1 - t) / 0.25)).astype(int)
    green = np.where(t < 0.75, np.round(60 + 170 * t / 0.75), 200).astype(int)
    return {int(label): f"#{r:02x}{g:02x}40" for label, r, g in
            zip(table["label"], np.clip(red, 0, 255), np.clip(green, 0, 255))}


def confidence_ramp(n: int = 9) -> list[str]:
    """The colours of :func:`confidence_colours` at ``n`` even steps from 0 to 1, for the
    confidence view's colour bar (:func:`ui.legend.confidence_bar`)."""
    steps = pd.DataFrame({"label": range(n), "confidence": np.linspace(0, 1, n)})
    return list(confidence_colours(steps).values())


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
        else:  # an RGB image in its colours, as the viewer opens it
            rgb = overlay.composite(overlay.crop(image, port), limits, rgb=image.shape[0] == 3)
        rgb = overlay.overlay(rgb, view_mask, highlight=int(row["label"]))
        confidence = row["confidence"]
        shown = "" if pd.isna(confidence) else f" {confidence:.2f}"  # unpredicted: no number
        out.append((overlay.encode_jpeg(rgb), f"#{row['label']} {row['class']}{shown}"))
    return out


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _model(model_dir: str, mtime: float) -> models.LoadedModel:
    return models.load_model(model_dir, device="cpu")


def explain_object(model_dir: str, image: np.ndarray | None, mask: np.ndarray, label: int,
                   guided: bool = False):
    """Grad-CAM of one object with the model (loaded once per server, on the CPU).

    Returns ``(explanation, patch, classes)``; see :func:`svetlana_core.explain.explain_object`.
    """
    # model.json is written last when a folder is saved: its time tells a rewritten folder.
    model = _model(model_dir, (Path(model_dir) / models.MODEL_FILE).stat().st_mtime)
    explanation, patch = explain.explain_object(model, image, mask, int(label), guided=guided)
    return explanation, patch, list(model.classes)


def gradcam_panel(model_dir: str, image: np.ndarray | None, mask: np.ndarray, label: int,
                  image_name: str, channels: tuple[int, ...] | None = None) -> None:
    """Why the model gave one object its class: the patch, its Grad-CAM and the probabilities.

    The patch is drawn in colour (:func:`svetlana_core.explain.patch_rgb`): an RGB image in
    its colours, other images in the ``channels`` chosen in the viewer (default the first).
    A model and image that no longer fit (the mask changed since the prediction, another
    number of channels) give one error line naming them, not a traceback.
    """
    if mask.ndim == 3:  # one plane cannot show a 3D shape
        from ui import volume

        volume.object_3d(mask, label)
    st.subheader(f"Why object {label}? (Grad-CAM)")
    if models.model_kind(model_dir) == "rf":
        st.info(f"{Path(model_dir).name} is a random forest: Grad-CAM explains a CNN's "
                "decision on a patch. Its feature importances are in its model.json.")
        return
    guided = st.toggle("Guided Grad-CAM", key="predict_guided", disabled=mask.ndim == 3)
    try:
        explanation, patch, classes = explain_object(model_dir, image, mask, label, guided)
    except InputError as error:
        st.error(f"No Grad-CAM for object {label} of {image_name} with model "
                 f"{Path(model_dir).name}: {error}")
        return
    shown = list(channels) if channels else None
    heat = explanation.heat
    if patch.ndim == 4:  # a 3D patch: any plane through it, the middle one first
        plane = st.slider("Plane through the patch", 0, patch.shape[1] - 1,
                          patch.shape[1] // 2, key=f"predict_cam_plane_{label}")
        patch, heat = patch[:, plane], heat[plane]
    a, b, c = st.columns(3)
    a.image(explain.heatmap_rgb(patch, np.zeros_like(heat), min_side=220,
                                channels=shown), caption="patch", width=220)
    b.image(explain.heatmap_rgb(patch, heat, min_side=220, channels=shown),
            width=220, caption=f"evidence for {explanation.target_class}")
    c.bar_chart(pd.DataFrame({"probability": explanation.probabilities}, index=classes),
                horizontal=True, height=220)


def doubtful_gallery(row, image: np.ndarray | None, mask: np.ndarray,
                     table: pd.DataFrame, colours: dict[str, str] | None = None) -> None:
    """The least confident objects of each predicted class, as rows of tiles (2D images),
    each row under its class's name and colour (``colours``: class -> colour). An object of a
    3D stack is shown as the maximum projection over its planes."""
    limits = (loaders.display_limits(row, image, None, 1.0, 99.8,
                                     shared=image.shape[0] == 3)
              if image is not None and mask.ndim == 2 else None)
    for name in table["class"].unique():
        tiles = (gallery(image, mask, table[table["class"] == name], limits) if mask.ndim == 2
                 else _projected_gallery(image, mask, table[table["class"] == name]))
        colour = (colours or {}).get(name)
        if colour:
            st.markdown(legend.swatch_html(name, colour), unsafe_allow_html=True)
        else:  # a class the project no longer has
            st.markdown(f"**{name}**")
        st.image([t for t, _ in tiles], caption=[c for _, c in tiles], width=96)


def _projected_gallery(image: np.ndarray | None, mask: np.ndarray, table: pd.DataFrame,
                       n: int = 12) -> list[tuple[bytes, str]]:
    """:func:`gallery` of 3D objects: each the maximum projection over its own planes (from
    the table's bounding boxes: no pass over the whole stack per object)."""
    from ui import volume

    tiles = []
    for row in table.sort_values(["confidence", "label"]).head(n).to_dict("records"):
        planes = slice(int(row["bbox_plane_start"]), int(row["bbox_plane_stop"]))
        flat_image, flat_mask = volume.projected(image, mask, int(row["label"]), planes)
        limits = None if flat_image is None else overlay.channel_limits(flat_image, 1.0, 99.8)
        tiles += gallery(flat_image, flat_mask, pd.DataFrame([row]), limits, n=1)
    return tiles


def download_buttons(out_dir: Path, image_name: str, mask: np.ndarray | None = None,
                     table: pd.DataFrame | None = None,
                     colours: dict[str, str] | None = None) -> None:
    """Download buttons for the run's combined objects and workbook, this image's class map
    and, given its mask and predictions, its objects as QuPath GeoJSON (built on click)."""
    downloads = st.columns(4)
    for column, name in zip(downloads, ["objects.csv", "results.xlsx",
                                        f"class_maps/{io.image_stem(image_name)}.tif"]):
        path = out_dir / name
        if path.exists():
            column.download_button(f"Download {Path(name).name}", path.read_bytes(),
                                   file_name=Path(name).name, key=f"dl_{name}")
    if mask is not None and table is not None and mask.ndim == 2:
        downloads[3].download_button(
            "Download QuPath GeoJSON", lambda: _geojson_bytes(mask, table, colours or {},
                                                              image_name),
            file_name=f"{io.image_stem(image_name)}.geojson", mime="application/geo+json",
            key=f"dl_geojson_{image_name}", on_click="ignore",
            help="The objects' outlines with their predicted class, confidence and "
                 "probabilities, for QuPath (File > Import objects)")


def _geojson_bytes(mask: np.ndarray, table: pd.DataFrame, colours: dict[str, str],
                   image_name: str) -> bytes:
    from svetlana_core.io import geojson
    from svetlana_core.values import rgb

    collection = geojson.mask_to_features(mask, table, {k: rgb(c) for k, c in colours.items()},
                                          image=image_name)
    return json.dumps(collection, separators=(",", ":")).encode()
