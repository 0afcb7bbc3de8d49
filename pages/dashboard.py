"""Dashboard page: counts and fractions per image and per well, the plate heat map, the
images of a clicked well, per-condition bars from a plate map, downloads."""

import plotly.express as px
import streamlit as st

from svetlana_core import io, stats
from svetlana_core.errors import InputError
from ui import plate, predictions, state
from ui.layout import page_setup

project = page_setup("Dashboard", require_project=True)
model_dir = predictions.pick_model(
    project, "Train a model and predict images first (Train and Predict pages).")
layout_choice = st.radio("Plate", ["auto", 96, 384, 1536], horizontal=True, key="dash_layout")
try:
    per_image, per_well, classes = plate.project_counts(
        project, model_dir, None if layout_choice == "auto" else int(layout_choice))
except InputError as error:
    st.error(str(error))
    st.stop()
if per_image.empty:
    st.info("This model has not predicted any image of the project yet (Predict page).")
    st.stop()

st.subheader("Per image")
st.dataframe(per_image, hide_index=True, key="dash_per_image")

if not per_well.empty:
    st.subheader("Per well")
    a, b = st.columns(2)
    target = b.selectbox("Class", ["all objects"] + classes, key="dash_class")
    # the fraction of all objects is 1 everywhere: for "all objects" only the count exists
    metric = a.radio("Metric", ["count", "fraction"], horizontal=True, key="dash_metric",
                     disabled=target == "all objects",
                     help="Fraction: the share of a well's objects in the chosen class.")
    if target == "all objects":
        value = "n_objects"
    else:
        value = f"{'n' if metric == 'count' else 'frac'}_{target}"
    grid = stats.plate_heatmap(per_well, value,
                               None if layout_choice == "auto" else int(layout_choice))
    event = st.plotly_chart(plate.plate_figure(grid, value), on_select="rerun",
                            selection_mode="points", key="dash_plate")
    points = getattr(getattr(event, "selection", None), "points", None) or []
    well = points[0].get("text") if points else None
    if well:
        st.markdown(f"**Well {well}**")
        in_well = per_image[per_image["well"] == well]
        st.dataframe(in_well, hide_index=True)
        if not in_well.empty and st.button(f"Open {in_well['image'].iloc[0]} on the Predict "
                                           "page"):
            state.set_current_image(in_well["image"].iloc[0])
            # the link keeps this tab's project and model: Predict opens on the same model
            st.switch_page("pages/predict.py", query_params=state.place())
    st.dataframe(per_well, hide_index=True, key="dash_per_well")

    plate_map = st.file_uploader("Plate map CSV (columns well, condition)", type=["csv"],
                                 key="dash_plate_map")
    if plate_map is not None:
        try:
            conditions = plate.read_plate_map(plate_map.getvalue(), plate_map.name)
        except InputError as error:
            st.error(str(error))
        else:
            summary = plate.condition_summary(per_well, conditions, value)
            st.plotly_chart(px.bar(summary, x="condition", y="mean", error_y="std",
                                   title=f"{value} per condition (mean ± sd over wells)"),
                            key="dash_conditions")

columns = st.columns(2)
columns[0].download_button("Download counts per image (CSV)", io.csv_text(per_image),
                           file_name="counts_per_image.csv")
if not per_well.empty:
    columns[1].download_button("Download counts per well (CSV)", io.csv_text(per_well),
                               file_name="counts_per_well.csv")
