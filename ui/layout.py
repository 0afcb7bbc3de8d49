"""What every page shares: page set-up and the sidebar (project picker, image, jobs).

Every page calls :func:`page_setup` first. With ``st.navigation`` and a folder named
``pages/``, the first deep link after a server start (e.g. ``/train``) may run the page file
without ``app.py``; calling the set-up from the page itself makes that case identical to a
normal visit (FIELD-NOTES.md).
"""

from __future__ import annotations

import os

import streamlit as st

from svetlana_core.store import Project
from ui import auth, state

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/progress_activity:",
                "done": ":material/check_circle:", "failed": ":material/error:",
                "stopped": ":material/stop_circle:"}


def page_setup(title: str, require_project: bool = False) -> Project | None:
    """Configure the page, draw the sidebar and the title, return the current project.

    With ``require_project``, a page without a chosen project says where to get one and
    stops there.
    """
    try:
        st.set_page_config(page_title=f"{title} · Svetlana", page_icon=":material/biotech:",
                           layout="wide")
    except st.errors.StreamlitAPIException:  # already set by app.py in this run
        pass
    auth.login_gate()  # draws nothing unless secrets.toml configures a login
    project = _sidebar()
    st.title(title)
    if project is None and require_project:
        st.info("Choose or create a project first (Project page).")
        st.stop()
    return project


#: Sidebar links: (page file, label, icon). app.py lists the same pages for st.navigation.
NAVIGATION = [
    ("pages/project.py", "Project", ":material/folder_open:"),
    ("pages/annotate.py", "Annotate", ":material/ads_click:"),
    ("pages/object_map.py", "Object map", ":material/scatter_plot:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/predict.py", "Predict", ":material/category:"),
    ("pages/dashboard.py", "Dashboard", ":material/grid_on:"),
]


def _sidebar() -> Project | None:
    with st.sidebar:
        st.markdown("### :material/biotech: Svetlana")
        links = st.container()  # filled once the project and image of this run are known
        st.divider()
        names = state.list_projects()
        current = state.current_project_name()
        if names:
            # The widget follows the current project, whoever changed it (a link, "Create
            # project", the demo button); set on every run, as the widget of a page just opened
            # starts empty. A choice here changes it in a callback, before the page runs, so
            # the whole run (links included) sees the new project.
            st.session_state["sidebar_project"] = current
            st.selectbox("Project", names, key="sidebar_project", placeholder="Choose a project",
                         on_change=_choose_project)
        else:
            st.caption("No project yet: create one or open the demo on the Project page.")
        project = state.current_project() if current else None
        if project is not None:
            image = state.current_image(project)
            if image:
                st.caption(f"Image: **{image}**")
            _current_model(project)
            _jobs_status(project)
        state.author_field()
        state.keep_place_in_url()
        where = state.place()
        with links:
            for page, label, icon in NAVIGATION:
                st.page_link(page, label=label, icon=icon, query_params=where)
    return project


def _choose_project() -> None:
    state.set_current_project(st.session_state.get("sidebar_project"))


def _current_model(project: Project) -> None:
    """The project's current model, shared by the lab: the best finished training unless
    someone picked another here."""
    from ui import runs

    trained = runs.model_runs(project, kind=runs.TRAINING_KINDS)
    if trained.empty:
        return
    labels = {r["model_dir"]: runs.model_label(r) for r in trained.to_dict("records")}
    current = project.current_model()
    options = list(labels)
    choice = st.selectbox("Current model", options,
                          index=options.index(current) if current in labels else None,
                          format_func=labels.get, key=f"sidebar_model_{current}",
                          placeholder="No finished training yet",
                          help="Predict, Dashboard, Correct predictions and the Object map use "
                               "it unless their own picker says otherwise")
    if choice is not None and choice != current:
        project.set_current_model(choice, author=state.author())
        st.session_state.pop(state.MODEL_KEY, None)  # the pages follow the new choice
        st.query_params.pop("model", None)
        st.rerun()


def _jobs_status(project: Project) -> None:
    """Running and queued jobs of the project, and the latest run.

    While a job is queued or running, a fragment redraws this every 2 s without a page
    rerun; when the last one ends it reruns the page once (so the page shows the result) and
    the timer stops. With no job active nothing ticks: an idle tab costs the server nothing.
    """
    from ui import runs as run_views

    active = run_views.any_active(project)

    @st.fragment(run_every=2 if active else None)
    def show() -> None:
        runs = project.runs()
        if runs.empty:
            return
        running = runs[runs["status"].isin(["queued", "running"])]
        if active and running.empty and st.session_state.get("_jobs_active"):
            st.session_state["_jobs_active"] = False
            st.rerun()  # the last job ended: redraw the page once, stop ticking
        shown = running if not running.empty else runs.sort_values("id").tail(1)
        for row in shown.itertuples():
            icon = STATUS_ICONS.get(row.status, "")
            st.caption(f"{icon} {row.kind} run {row.id}: {row.status}")

    st.session_state["_jobs_active"] = active
    show()


def rerun_fragment() -> None:
    """Rerun only the current fragment when this run is a fragment rerun, else the page.

    ``st.rerun(scope="fragment")`` is refused during a full-page run (the fragment's first
    draw), which is when a click that arrived with a page rerun gets processed.
    """
    try:
        st.rerun(scope="fragment")
    except st.errors.StreamlitAPIException:
        st.rerun()
