"""Predict page: run a model on this image, the project or a server folder (a job), then
review the classes, the confidence, the doubtful objects and Grad-CAM of any object."""

import streamlit as st

from svetlana_core import jobs
from svetlana_core.errors import InputError
from ui import legend, loaders, overlay, predictions, state, viewer
from ui.layout import page_setup

MISSING = "#888888"  # objects predicted as a class the project no longer has

project = page_setup("Predict", require_project=True)
jobs.reap_dead_jobs(project.folder)
images, classes = project.images(), project.classes()
if images.empty:
    st.info("Train a model first (Train page).")
    st.stop()
model_dir = predictions.pick_model(project, "Train a model first (Train page).")
out_dir = predictions.outputs_dir(project, model_dir)
image_name = state.current_image(project)

left, right = st.columns([2, 1])
scope = left.radio("Predict", predictions.SCOPES, horizontal=True, key="predict_scope")
folder = masks = None
if scope == "a server folder":
    folder = left.text_input("Images folder (inside the data roots)", key="predict_folder")
    masks = left.text_input("Masks folder (empty: the images folder)", key="predict_masks")
force = right.checkbox("Redo images already predicted by this model", key="predict_force")
if right.button("Start prediction", type="primary"):
    try:
        source = predictions.prediction_source(scope, image_name, images, folder, masks)
        st.session_state["predict_run"] = jobs.submit_prediction(
            project.folder, model_dir, source, out_dir, force=force, author=state.author())
    except InputError as error:
        st.error(str(error))
if st.session_state.get("predict_run") is not None:
    predictions.progress_panel(project, st.session_state["predict_run"])

st.divider()
image_name, row, image, mask = viewer.pick_image(project, images, key="predict_image")
if st.session_state.get("predict_selected_image") not in (None, image_name):
    st.session_state.pop("predict_selected", None)  # an object of the image shown before
st.session_state["predict_selected_image"] = image_name
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
colours = (overlay.class_colours(subset, classes, missing=MISSING) if colour_by == "class"
           else predictions.confidence_colours(subset))
with view:
    display = viewer.display_controls(image, mask, key="predict_view")
    selected = st.session_state.get("predict_selected")
    st.image(viewer.preview(row, image, mask, display, colours, highlight=selected))
    if colour_by == "class":
        lost = set(subset["class"]) - set(classes["name"])
        legend.class_legend(classes, subset["class"].value_counts(),
                            {"class no longer in the project": MISSING} if lost else None)
    else:
        legend.confidence_bar(predictions.confidence_ramp())
filters.caption(" · ".join(f"{c}: {n}" for c, n in subset["class"].value_counts().items()))

columns = ["label", "class", "confidence"] + [c for c in table if c.startswith("p_")]
# The table's selection is a row position: a key per view (image, model, filters) starts a new
# view unselected, so a position never points into another, shorter or filtered, table.
view_key = predictions.table_key(image_name, model_dir, shown, low, high)
event = st.dataframe(subset[columns], hide_index=True, on_select="rerun",
                     selection_mode="single-row", key=view_key, height=250)
rows = [r for r in event.selection.rows if r < len(subset)]
if rows:
    st.session_state["predict_selected"] = int(subset.iloc[rows[0]]["label"])
selected = st.session_state.get("predict_selected")
if selected in set(table["label"]):
    predictions.gradcam_panel(model_dir, image, mask, selected, image_name, display.channels)

with st.expander("Review the doubtful objects first (least confident per class)"):
    predictions.doubtful_gallery(row, image, mask, table, dict(classes[["name", "colour"]].values))
predictions.download_buttons(out_dir, image_name, mask, table,
                             dict(classes[["name", "colour"]].values))
