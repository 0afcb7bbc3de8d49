"""Predict page: run a model on this image, the project or a server folder (a job), then
review the classes, the confidence, the doubtful objects and Grad-CAM of any object."""

from pathlib import Path

import streamlit as st

from svetlana_core import io
from svetlana_core import jobs
from svetlana_core.errors import InputError
from ui import loaders, predictions, runs, state, viewer
from ui.layout import page_setup

project = page_setup("Predict", require_project=True)
jobs.reap_dead_jobs(project.folder)
models = runs.model_runs(project)
models = models[models["kind"] == "train"] if not models.empty else models
images, classes = project.images(), project.classes()
if models.empty or images.empty:
    st.info("Train a model first (Train page).")
    st.stop()

model_dirs = models["model_dir"].tolist()
labels = {r["model_dir"]: runs.model_label(r) for r in models.to_dict("records")}
model_dir = st.selectbox("Model", model_dirs, format_func=labels.get, key="predict_model")
out_dir = predictions.outputs_dir(project, model_dir)
image_name = state.current_image(project)

left, right = st.columns([2, 1])
scope = left.radio("Predict", ["this image", "all images of the project", "a server folder"],
                   horizontal=True, key="predict_scope")
folder = masks = None
if scope == "a server folder":
    folder = left.text_input("Images folder (inside the data roots)", key="predict_folder")
    masks = left.text_input("Masks folder (empty: the images folder)", key="predict_masks")
force = right.checkbox("Redo images already predicted by this model", key="predict_force")
if right.button("Start prediction", type="primary"):
    try:
        if scope == "a server folder":
            images_dir = state.resolve_inside_roots(folder)
            masks_dir = state.resolve_inside_roots(masks) if masks else None
            # the worker pairs the folder itself: refuse links that lead out before it starts
            _, skipped = state.pairs_inside_roots(io.pair_files(images_dir, masks_dir))
            if skipped:
                raise InputError(skipped[0])
            source = {"kind": "folder", "images": str(images_dir),
                      "masks": str(masks_dir) if masks_dir else None}
        else:
            chosen = [image_name] if scope == "this image" else images["name"].tolist()
            source = {"kind": "project", "images": chosen}
        run_id = jobs.submit_prediction(project.folder, model_dir, source, out_dir,
                                        force=force, author=state.author())
        st.session_state["predict_run"] = run_id
    except InputError as error:
        st.error(str(error))

run_id = st.session_state.get("predict_run")
if run_id is not None:
    active = project.run(run_id)["status"] in ("queued", "running")

    @st.fragment(run_every=1 if active else None)
    def progress() -> None:
        record = project.run(run_id)
        summary = record.get("summary") or {}
        done, total = summary.get("finished", 0), max(summary.get("total", 1), 1)
        st.progress(done / total, text=f"prediction run {run_id}: {record['status']} · "
                                       f"{done}/{total} images")
        for failure in summary.get("failed", [])[:10]:
            st.warning(failure)
        if record.get("error"):
            st.error(record["error"])
        if active and record["status"] not in ("queued", "running"):
            st.rerun()

    progress()

st.divider()
image_name, row, image, mask = viewer.pick_image(project, images, key="predict_image")
table = project.predictions(model_dir, image_name)
if table.empty:
    st.info("No predictions of this model for this image yet.")
    st.stop()
table = table.merge(loaders.object_table(row, mask), on="label", how="left")

view, filters = st.columns([3, 1])
colour_by = filters.radio("Colour by", ["class", "confidence"], key="predict_colour")
shown = filters.multiselect("Classes", classes["name"].tolist(), key="predict_classes")
low, high = filters.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="predict_conf")
subset = table[table["confidence"].between(low, high)]
if shown:
    subset = subset[subset["class"].isin(shown)]
colours = (predictions.class_colours(subset, classes) if colour_by == "class"
           else predictions.confidence_colours(subset))
with view:
    display = viewer.display_controls(image, mask, key="predict_view")
    selected = st.session_state.get("predict_selected")
    st.image(viewer.preview(row, image, mask, display, colours, highlight=selected))
filters.caption(" · ".join(f"{c}: {n}" for c, n in subset["class"].value_counts().items()))

columns = ["label", "class", "confidence"] + [c for c in table if c.startswith("p_")]
event = st.dataframe(subset[columns], hide_index=True, on_select="rerun",
                     selection_mode="single-row", key="predict_table", height=250)
if event.selection.rows:
    st.session_state["predict_selected"] = int(subset.iloc[event.selection.rows[0]]["label"])
selected = st.session_state.get("predict_selected")
if selected in set(table["label"]):
    predictions.gradcam_panel(model_dir, image, mask, selected, image_name)

with st.expander("Review the doubtful objects first (least confident per class)"):
    limits = (loaders.display_limits(row, image, None, 1.0, 99.8)
              if image is not None and mask.ndim == 2 else None)
    for name in table["class"].unique() if mask.ndim == 2 else []:
        tiles = predictions.gallery(image, mask, table[table["class"] == name], limits)
        st.markdown(f"**{name}**")
        st.image([t for t, _ in tiles], caption=[c for _, c in tiles], width=96)

downloads = st.columns(3)
for column, name in zip(downloads, ["objects.csv", "results.xlsx",
                                    f"class_maps/{Path(image_name).stem}.tif"]):
    path = out_dir / name
    if path.exists():
        column.download_button(f"Download {Path(name).name}", path.read_bytes(),
                               file_name=Path(name).name, key=f"dl_{name}")
