"""Labels in and out on the Project page: download the labels (CSV, QuPath GeoJSON), upload a
labels CSV or QuPath GeoJSON files, see the same report as the CLI's ``import-labels``, agree to
new classes, store everything in one transaction."""

from __future__ import annotations

import hashlib
import io as bytes_io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from svetlana_core.errors import InputError
from svetlana_core.io.label_sources import GEOJSON_EXTENSIONS, Gathered, labels_from_geojson
from svetlana_core.io.labels import read_labels_csv
from svetlana_core.store import Project
from svetlana_core.store.label_import import LabelCheck, check_labels, store_checked
from ui import state

_CHECK_KEY, _ROUND_KEY, _STORED_KEY = ("labels_upload_check", "labels_upload_round",
                                       "labels_upload_stored")


def downloads(project: Project) -> None:
    """The project's labels as a CSV and as a zip of QuPath GeoJSON files (built on click)."""
    left, right = st.columns(2)
    name = project.folder.name
    left.download_button("Download labels (CSV)", lambda: _csv_bytes(project),
                         file_name=f"{name}-labels.csv", mime="text/csv", on_click="ignore",
                         key="labels_csv_download")
    right.download_button(
        "Download labels (QuPath GeoJSON, zip)", lambda: _geojson_zip(project),
        file_name=f"{name}-labels-geojson.zip", mime="application/zip", on_click="ignore",
        key="labels_geojson_download",
        help="One FeatureCollection per labelled image: the objects' outlines with their class "
             "(QuPath: File > Import objects)")


def _csv_bytes(project: Project) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.csv"
        project.export_labels_csv(path)
        return path.read_bytes()


def _geojson_zip(project: Project) -> bytes:
    buffer = bytes_io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer, "w",
                                                                  zipfile.ZIP_DEFLATED) as zf:
        project.export_labels_geojson(folder)
        for path in sorted(Path(folder).iterdir()):
            zf.write(path, path.name)
    return buffer.getvalue()


def upload(project: Project) -> None:
    """Upload labels, check them against the project, store them when the user agrees."""
    stored = st.session_state.pop(_STORED_KEY, None)
    if stored:
        st.success(stored)
    # A new key per stored upload empties the uploader, so the same file is not stored twice.
    files = st.file_uploader(
        "A labels CSV (image,label,class), or QuPath GeoJSON files named after their images",
        type=["csv", *(e.lstrip(".") for e in GEOJSON_EXTENSIONS)], accept_multiple_files=True,
        key=f"labels_upload_{st.session_state.get(_ROUND_KEY, 0)}")
    if not files:
        st.session_state.pop(_CHECK_KEY, None)
        return
    try:
        check = _checked(project, files)
    except InputError as error:
        st.error(str(error))
        return
    report(check)
    if check.errors:
        return
    add = True
    if check.new_classes:
        add = st.checkbox(f"Add the class(es) {', '.join(map(repr, check.new_classes))} to the "
                          "project", key="labels_upload_add_classes")
    if st.button(f"Store {len(check.table)} label(s)", type="primary", disabled=not add,
                 key="labels_upload_store"):
        try:
            n = store_checked(project, check, add_classes=add, author=state.author())
        except InputError as error:
            st.error(str(error))
            return
        st.session_state.pop(_CHECK_KEY, None)
        st.session_state[_ROUND_KEY] = st.session_state.get(_ROUND_KEY, 0) + 1
        st.session_state[_STORED_KEY] = f"{n} label(s) stored from {check.origin}"
        st.rerun()


def report(check: LabelCheck) -> None:
    """The check as the CLI says it: errors, notes, what would be stored, per image."""
    for error in check.errors:
        st.error(error)
    for note in check.gathered.notes:
        st.caption(note)
    (st.warning if check.new_classes or check.changed else st.info)(check.summary())
    shown = check.per_image if check.per_image["new image"].any() else \
        check.per_image.drop(columns="new image")  # uploads here add labels only
    st.dataframe(shown, hide_index=True, height=min(250, 40 + 35 * len(shown)))


def _checked(project: Project, files: list) -> LabelCheck:
    """The check of these uploads, computed once per set of files (a 10,000-object GeoJSON
    takes seconds to match)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.getvalue())
    key = (str(project.folder), digest.hexdigest(), len(project.labels()))
    cached = st.session_state.get(_CHECK_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    check = check_uploads(project, files)
    st.session_state[_CHECK_KEY] = (key, check)
    return check


def check_uploads(project: Project, files: list) -> LabelCheck:
    """Check uploaded labels (one CSV, or GeoJSON files) against the project's images.

    Raises
    ------
    InputError
        A CSV mixed with other files, or a file that cannot be read (naming it).
    """
    names = [Path(file.name).name for file in files]
    csvs = [n for n in names if n.lower().endswith(".csv")]
    if csvs and len(files) > 1:
        raise InputError(f"upload one labels CSV, or GeoJSON files, not both or several CSVs "
                         f"(got {', '.join(names)})")
    with tempfile.TemporaryDirectory() as folder:
        for file, name in zip(files, names):
            (Path(folder) / name).write_bytes(file.getvalue())
        try:
            return _check_files(project, Path(folder), names, csvs)
        except InputError as error:  # name the uploaded file, not its temporary copy
            raise InputError(str(error).replace(f"{folder}/", "")) from None


def _check_files(project: Project, folder: Path, names: list[str], csvs: list[str]
                 ) -> LabelCheck:
    if csvs:
        gathered = Gathered([], read_labels_csv(folder / csvs[0]))
        return check_labels(project, gathered, f"labels file {csvs[0]}")
    masks = dict(project.images()[["name", "mask_path"]].values)
    if not masks:
        raise InputError("the project has no images yet: add them before their labels")
    gathered = Gathered([], *labels_from_geojson(folder, masks))
    return check_labels(project, gathered, f"GeoJSON file(s) {', '.join(names)}")
