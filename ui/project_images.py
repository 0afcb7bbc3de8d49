"""Removing images and uploads on the Project page, each behind a confirmation step.

A removed image keeps its labels in the project's history (:meth:`Project.remove_image`) and
can be brought back; deleting uploads deletes files, which cannot. Both ask first: the
first button only records what is to be removed (in session state, so the question survives
the rerun), the second does it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from svetlana_core.errors import InputError, byte_size
from svetlana_core.store import Project
from ui import importer, state

_IMAGE_KEY, _UPLOADS_KEY = "remove_image_pending", "remove_uploads_pending"


def removal(project: Project, images: pd.DataFrame) -> None:
    """An expander to remove an image, bring a removed one back, delete unused uploads."""
    removed = project.removed_images()
    unused = importer.unused_uploads(project)
    if images.empty and removed.empty and not unused:
        return
    pending = st.session_state.get(_IMAGE_KEY) or st.session_state.get(_UPLOADS_KEY)
    with st.expander("Remove images or uploads", icon=":material/delete:",
                     expanded=bool(pending)):
        if not images.empty:
            _remove_image(project, images)
        if not removed.empty:
            _bring_back(project, removed)
        if unused:
            _remove_uploads(project, unused)


def _remove_image(project: Project, images: pd.DataFrame) -> None:
    name = st.selectbox("Image to remove", images["name"].tolist(), index=None,
                        key="remove_image_pick", placeholder="Choose an image")
    if st.button("Remove image…", disabled=name is None):
        st.session_state[_IMAGE_KEY] = name
    pending = st.session_state.get(_IMAGE_KEY)
    if pending not in set(images["name"]):
        st.session_state.pop(_IMAGE_KEY, None)  # removed meanwhile, e.g. by a colleague
        return
    labelled = int(project.label_counts(pending)["n"].sum())
    st.warning(f"Remove **{pending}** from the project? Its {labelled} labelled objects stay "
               "in the project's history: adding the same files again, or **Bring back** "
               "below, restores them. No file is deleted.")
    yes, no = st.columns(2)
    if yes.button("Yes, remove it", type="primary"):
        st.session_state.pop(_IMAGE_KEY)
        try:
            project.remove_image(pending, author=state.author())
            st.toast(f"{pending} removed; its {labelled} labels are kept in the history")
        except InputError as error:
            st.error(str(error))
            return
        st.rerun()
    if no.button("Cancel", key="remove_image_cancel"):
        st.session_state.pop(_IMAGE_KEY)
        st.rerun()


def _bring_back(project: Project, removed: pd.DataFrame) -> None:
    st.caption("Removed images (their labels are kept)")
    shown = removed[["name", "removed_by", "removed_at"]].copy()
    shown["removed_at"] = shown["removed_at"].str.slice(0, 19).str.replace("T", " ") + " UTC"
    st.dataframe(shown, hide_index=True, height=min(200, 40 + 35 * len(shown)))
    name = st.selectbox("Removed image", removed["name"].tolist(), index=None,
                        key="restore_image_pick", placeholder="Choose a removed image")
    if st.button("Bring back", disabled=name is None):
        try:
            project.restore_image(name)
            st.toast(f"{name} is back with its labels")
            st.rerun()
        except InputError as error:
            st.error(str(error))


def _remove_uploads(project: Project, unused: list) -> None:
    size = sum(path.stat().st_size for path in unused)
    st.caption(f"{len(unused)} uploaded file(s), {byte_size(size)}, are used by no image of "
               "the project (files of removed images among them).")
    if st.button("Delete unused uploads…"):
        st.session_state[_UPLOADS_KEY] = True
    if not st.session_state.get(_UPLOADS_KEY):
        return
    st.warning(f"Delete {len(unused)} file(s) from {project.folder / 'uploads'}? A removed "
               "image whose files go can no longer be brought back (its labels stay in the "
               "history).")
    yes, no = st.columns(2)
    if yes.button("Yes, delete them", type="primary"):
        st.session_state.pop(_UPLOADS_KEY)
        try:
            st.toast(f"{importer.remove_uploads(project, unused)} file(s) deleted")
        except InputError as error:
            st.error(str(error))
            return
        st.rerun()
    if no.button("Cancel", key="remove_uploads_cancel"):
        st.session_state.pop(_UPLOADS_KEY)
        st.rerun()
