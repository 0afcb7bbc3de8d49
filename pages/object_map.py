"""Object map page: every object as a point placed by its features; select a cloud of similar
objects with a box or a lasso, see them on the image, label them all at once."""

import streamlit as st

from svetlana_core.errors import InputError
from ui import loaders, object_map, predictions, state, viewer
from ui.layout import page_setup

project = page_setup("Object map", require_project=True)
images, classes = project.images(), project.classes()
if images.empty:
    st.info("Add images first (Project page).")
    st.stop()

left, middle, right = st.columns(3)
scope = left.radio("Objects of", ["this image", "the whole project"], horizontal=True,
                   key="map_scope")
models = object_map.model_choices(project)
sources = ([object_map.MODEL] if models else []) + [object_map.HANDCRAFTED,
                                                    object_map.TWO_FEATURES]
source = middle.radio("Placed by", sources, key="map_source",
                      help="The features the model computes before its last layer (once a CNN "
                           "is trained), or shape and intensity measurements of each object.")
colour_by = right.radio("Colour by", object_map.COLOUR_BY, horizontal=True, key="map_colour")
model_dir = None
if models:
    current = project.current_model()
    model_dir = st.selectbox("Model", list(models), format_func=models.get, key="map_model",
                             index=list(models).index(current) if current in models else 0)

image_name, row, image, mask = viewer.pick_image(project, images, key="map_image")
try:
    with st.spinner("Computing the map (once per model and masks)…"):
        table = object_map.features(project, source, model_dir if source == object_map.MODEL
                                    else None)
except InputError as error:
    st.error(str(error))
    st.stop()
axes = None
if source == object_map.TWO_FEATURES:
    columns = [c for c in table.columns if c not in ("image", "label")]
    x_axis, y_axis = st.columns(2)
    axes = (x_axis.selectbox("x", columns, index=0, key="map_x"),
            y_axis.selectbox("y", columns, index=min(1, len(columns) - 1), key="map_y"))
points = object_map.coordinates(table, source, axes)
points = object_map.with_colours(points, project, model_dir)
if scope == "this image":
    points = points[points["image"] == image_name]

objects = loaders.object_table(row, mask)
picked_key = f"map_picked_{image_name}"
picked = points[(points["image"] == image_name)
                & points["label"].isin(st.session_state.get(picked_key, []))]
palette = dict(classes[["name", "colour"]].values)
titles = axes or ("component 1", "component 2")
event = st.plotly_chart(object_map.figure(points, colour_by, palette, picked, titles),
                        on_select="rerun", selection_mode=("box", "lasso"), key="map_chart")
chosen = object_map.selected(event, points)

st.caption(f"{len(points)} objects · {len(chosen)} selected"
           + (f" on {chosen['image'].nunique()} images" if chosen["image"].nunique() > 1 else ""))
name_col, button_col, undo_col = st.columns([2, 1, 1])
target = name_col.selectbox("Label the selection as", classes["name"].tolist(),
                            key="map_class") if len(classes) else None
if button_col.button("Label selection", type="primary", disabled=chosen.empty or not target):
    try:
        st.toast(object_map.label_selection(project, chosen, target, state.author()))
        st.rerun()
    except InputError as error:
        st.error(str(error))
if undo_col.button("Undo", help="Takes back your last action (a whole selection at once)"):
    try:
        undone = project.undo_last(state.author())
        st.toast("Nothing to undo" if undone is None else f"Undone on {undone[0]}")
        st.rerun()
    except InputError as error:
        st.warning(str(error))

view, gallery = st.columns([3, 2])
with view:
    display = viewer.display_controls(image, mask, key="map_view")
    colours = object_map.selection_colours(chosen, image_name)
    jpeg = viewer.preview(row, image, mask, display, colours)
    if mask.ndim == 2:
        picked_event = st.plotly_chart(object_map.image_figure(jpeg, objects, display.viewport),
                                       on_select="rerun", selection_mode=("points", "box",
                                                                          "lasso"),
                                       key=f"map_image_chart_{image_name}")
        st.session_state[picked_key] = object_map.picked_labels(picked_event)
    else:
        st.image(jpeg)
with gallery:
    shown = chosen[chosen["image"] == image_name]
    if len(shown) and mask.ndim == 2:
        st.markdown(f"**Selected on {image_name}** (least confident first)")
        tiles = predictions.gallery(image, mask, object_map.gallery_table(shown, objects),
                                    loaders.display_limits(row, image, None, 1.0, 99.8,
                                                           shared=image.shape[0] == 3)
                                    if image is not None else None, n=24)
        st.image([t for t, _ in tiles], caption=[c for _, c in tiles], width=96)
