"""Project page: create or open a project, add images, edit classes, preview images."""

import pandas as pd
import streamlit as st

from svetlana_core.demo import create_demo
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from ui import classes as class_edits
from ui import importer, labels_io, loaders, project_images, state, viewer
from ui.layout import page_setup

project = page_setup("Project")

left, right = st.columns(2)
with left.form("new_project", clear_on_submit=True):
    name = st.text_input("New project name", placeholder="e.g. osteoclasts-2026-11")
    if st.form_submit_button("Create project", type="primary"):
        try:
            name = state.valid_project_name(name)
            Project.create(state.projects_dir() / name)
            state.set_current_project(name)
            st.rerun()
        except InputError as error:
            st.error(str(error))
with right:
    st.write("New here? The demo has 4 images of synthetic cells in 3 classes, a few "
             "already labelled: train and predict straight away.")
    if st.button("Open the demo project", icon=":material/science:"):
        with st.spinner("Creating the demo project…"):
            create_demo(state.projects_dir() / state.DEMO_NAME)
        state.set_current_project(state.DEMO_NAME)
        st.rerun()

if project is None:
    st.info("Choose a project in the sidebar, create one, or open the demo.")
    st.stop()

st.subheader(f"Images of {project.folder.name}")
images = project.images()
add_folder, add_upload = st.tabs(["Add from a server folder", "Upload files"])
with add_folder, st.form("add_folder"):
    roots = ", ".join(str(r) for r in state.data_roots())
    images_dir = st.text_input("Images folder", help=f"Inside the data roots: {roots}. TIFF, "
                               "PNG, JPEG and OME-Zarr images (a .zarr folder or HCS plate).")
    masks_dir = st.text_input("Masks folder (empty: the images folder)")
    label_name = st.text_input("OME-Zarr label image (empty: the first of each image)",
                               help="The label image under labels/ that holds the objects.")
    submitted = st.form_submit_button("Check and add")
with add_upload, st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Images and masks (paired by file name)", accept_multiple_files=True)
    uploaded = st.form_submit_button("Upload, check and add")

batch = None
try:
    pairs = None
    if submitted and images_dir:
        folder = state.resolve_inside_roots(images_dir)
        masks = state.resolve_inside_roots(masks_dir) if masks_dir else None
        pairs, problems = importer.pair_for_import(folder, masks,
                                                   label_name=label_name.strip() or None)
    elif uploaded and files:
        batch = importer.save_uploads(project, files)
        pairs, problems = importer.pair_for_import(batch, upload=True)
    if pairs is not None:
        pairs, skipped = importer.pairs_inside_roots(pairs) if pairs else ([], [])
        for message in skipped:
            st.warning(message)
        report = importer.validate_pairs(pairs, problems, importer.project_channels(project))
        added = importer.add_valid(project, pairs, report)
        st.session_state["import_report"] = report.to_dict("records")
        st.toast(f"{added} image(s) added")
        images = project.images()
        if batch is not None:
            importer.discard_unadded(batch, pairs, report)
except InputError as error:
    if batch is not None:
        importer.discard_unadded(batch, None)
    st.error(str(error))
if st.session_state.get("import_report"):
    with st.expander("Validation report of the last import", expanded=True):
        st.dataframe(pd.DataFrame(st.session_state["import_report"]), hide_index=True)

st.dataframe(images[["name", "well", "axes", "path", "mask_path"]], hide_index=True,
             height=min(300, 40 + 35 * len(images)))
project_images.removal(project, images)
images = project.images()

st.subheader("Classes")
classes = project.classes()
edited = st.data_editor(
    classes[["name", "colour"]], hide_index=True, num_rows="dynamic", key="classes_editor",
    column_config={"name": st.column_config.TextColumn("Class", required=True, max_chars=60),
                   "colour": st.column_config.TextColumn("Colour (#rrggbb)", max_chars=7,
                                                         validate=class_edits.COLOUR_PATTERN)},
)
if st.button("Save classes"):
    try:
        class_edits.apply_class_edits(project, classes, st.session_state["classes_editor"])
        st.toast("Classes saved")
        st.rerun()
    except InputError as error:
        st.error(str(error))
with st.expander("Pick the class colours", icon=":material/palette:"):
    class_edits.colour_pickers(project, classes)

st.subheader("Labels in and out")
labels_io.downloads(project)
labels_io.upload(project)

if images.empty:
    st.stop()
st.subheader("Preview")
_, row, image, mask = viewer.pick_image(project, images, key="project_image")
display = viewer.display_controls(image, mask, key="project_view")
table = loaders.object_table(row, mask)
st.image(viewer.preview(row, image, mask, display),
         caption=f"{len(table)} objects · shape {' × '.join(map(str, mask.shape))}")
