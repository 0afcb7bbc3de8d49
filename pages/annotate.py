"""Annotate page: click objects on a canvas, or label one object at a time (guided), or
correct the predictions of the latest model. Every label is committed at once."""

from functools import partial

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from ui import annotate, legend, loaders, navigation, runs, state, viewer, volume
from ui.layout import page_setup, rerun_fragment

# "Zoom": a click zooms in there (the canvas reports no double-click of its own; a fast
# double-click with any tool zooms too, ui/navigation.py).
TOOLS = {"Click": "point", "Rectangle": "rect", "Polygon": "polygon", "Zoom": "point"}

project = page_setup("Annotate", require_project=True)
images, classes = project.images(), project.classes()
if images.empty or classes.empty:
    st.info("This project needs images and at least one class (Project page).")
    st.stop()

image_name, row, image, mask = viewer.pick_image(project, images, key="annotate_image")

mode = st.segmented_control("Mode", ["Click", "Guided", "Correct predictions"], default="Click",
                            key="annotate_mode") or "Click"
class_names = classes["name"].tolist()
author = state.author()
POLL_S = 2  # colleagues' labels on this image show within this many seconds


@st.fragment
def canvas_panel(source: str) -> None:
    """The image on a canvas; a click, rectangle or polygon labels the objects it selects.

    One script run per click (bench/RESULTS.md "ui click"): the canvas keeps its key, the
    shapes it sent are handled first (only the new ones), then the class picker with fresh
    counts (drawn into a slot above, so the counts include this click), the caption, the
    preview and the canvas.
    """
    class_slot = st.container()
    class_name = annotate.chosen_class(st.session_state, class_names)
    left, right = st.columns([3, 1])
    overview_slot = right.container()
    tool = right.radio("Tool", list(TOOLS), key="annotate_tool")
    relabel = right.checkbox("Relabel", key="annotate_relabel",
                             help="Let a rectangle or polygon change objects already labelled")
    if right.button("Undo", icon=":material/undo:", shortcut="ctrl+z"):
        done, message = annotate.undo(project, author, image_name, st.session_state)
        (right.caption if done else right.warning)(message)
    with left:
        display = viewer.display_controls(image, mask, key="annotate_view", navigation=True)
    with overview_slot:
        viewer.overview(row, image, mask, display, "annotate_view")
    height, width = display.viewport.display_shape
    key = annotate.canvas_key(st.session_state, (image_name, display.plane, display.viewport))
    st.session_state["annotate_canvas_key"] = key
    marks = annotate.drawn_marks(st.session_state, key, display.viewport, mask, display.plane)
    if tool == "Zoom":  # its clicks moved the view (navigation.canvas_changed), no labels
        marks = annotate.Marks(marks.clicked[:0], marks.enclosed[:0])
    if len(marks.clicked) or len(marks.enclosed):
        labelled, kept = annotate.store_marks(project, image_name, marks, class_name, author,
                                              source, relabel)
        st.session_state["annotate_last"] = annotate.caption(class_name, labelled, kept)
    elif marks.erased:
        st.session_state["annotate_last"] = annotate.ERASED
    right.caption(st.session_state.get("annotate_last")
                  or "Click an object to give it the selected class.")
    annotate.labels_changed(st.session_state, image_name, project.label_version(image_name),
                            seen=True)
    counts = project.label_counts(image_name).set_index("class")["n"]
    class_slot.radio("Class", class_names, horizontal=True, key="annotate_class",
                     format_func=lambda c: f"{c} ({counts.get(c, 0)})")
    predicted = runs.latest_predictions(project, image_name) if source == "correction" else None
    if predicted is not None and predicted.empty:
        right.warning("No predictions for this image yet (Predict page).")
    colours = annotate.object_colours(project.labels(image_name), classes, predicted)
    jpeg = viewer.preview(row, image, mask, display, colours)
    with left:
        st_canvas(background_image=jpeg, width=width, height=height, key=key,
                  drawing_mode=TOOLS[tool], stroke_width=2, stroke_color="#ffffff",
                  fill_color="rgba(255, 255, 255, 0.15)", point_display_radius=3,
                  on_change=partial(navigation.canvas_changed, key, "annotate_view",
                                    mask.shape[-2:], list(display.zooms), display.viewport,
                                    tool == "Zoom"))
        navigation.measure("annotate_view")  # the next canvas fits this column
        legend.class_legend(classes)
    right.dataframe(counts.rename_axis("class").reset_index(), hide_index=True)


@st.fragment
def guided_panel() -> None:
    """One object at a time, zoomed with its context; keys 1–9 pick the class."""
    table = loaders.object_table(row, mask)
    annotate.labels_changed(st.session_state, image_name, project.label_version(image_name),
                            seen=True)
    labelled = set(project.labels(image_name)["label"].tolist())
    skipped = st.session_state.setdefault("guided_skipped", {}).setdefault(image_name, set())
    strategy = st.radio("Next object", ["random", "least confident first"], horizontal=True,
                        key="guided_strategy")
    predicted = runs.latest_predictions(project, image_name)
    label = annotate.next_object(table, labelled, skipped,
                                 "uncertain" if strategy != "random" else "random", predicted,
                                 seed=annotate.guided_seed(author, st.session_state))
    if label is None:
        st.success("Every object of this image is labelled or skipped.")
        return
    display = viewer.object_display(table, label, mask.shape)
    if mask.ndim == 3:  # move through the object's planes; its 3D shape beside
        display = viewer.guided_plane(display, table, label, mask.shape[0])
    shown, beside = st.columns([1, 2]) if mask.ndim == 3 else (st.container(), None)
    shown.image(viewer.preview(row, image, mask, display, highlight=label), width=384,
                caption=f"object {label} · {len(labelled)} of {len(table)} labelled")
    if beside is not None:
        with beside:
            volume.object_3d(mask, label, key="guided_")
    columns = st.columns(min(len(class_names), 9) + 2)
    # Callbacks bind the object on screen: by the time a click arrives, another user may have
    # labelled it and the next object would be a different one.
    for k, name in enumerate(class_names[:9]):
        columns[k].button(f"{k + 1} · {name}", key=f"guided_{name}", shortcut=str(k + 1),
                          on_click=project.annotate, args=(image_name, label, name),
                          kwargs={"author": author, "source": "guided"})
    columns[-2].button("Skip", shortcut="s", on_click=skipped.add, args=(label,))
    if columns[-1].button("Undo", shortcut="u"):
        done, message = annotate.undo(project, author, image_name, st.session_state)
        if not done:  # shown until the next click (a rerun would hide it)
            st.warning(message)
            return
        rerun_fragment()


@st.fragment(run_every=POLL_S)
def colleagues_labels() -> None:
    """Redraw the page when someone else labelled this image: one indexed query every
    ``POLL_S`` s, and a rerun only on a change (redrawing the canvas every tick would cost a
    page run each time). Drawn last, after the panel recorded the version it showed."""
    if annotate.labels_changed(st.session_state, image_name, project.label_version(image_name)):
        st.rerun()


if mode == "Guided":
    guided_panel()
else:
    canvas_panel("correction" if mode == "Correct predictions" else "manual")
colleagues_labels()
