"""Train page: settings form (or the full JSON config), start a training job, watch live
curves, stop, compare runs, and train the random-forest baseline beside it."""

import json

import pandas as pd
import streamlit as st

from svetlana_core import jobs
from svetlana_core.errors import InputError
from svetlana_core.models import read_model_meta
from ui import compare, runs, state, train_form
from ui.layout import page_setup

project = page_setup("Train", require_project=True)
jobs.reap_dead_jobs(project.folder)
counts = project.label_counts()
classes = counts.loc[counts["n"] > 0, "class"].tolist()
st.caption(f"Device: **{runs.device_name()}** · labelled objects: "
           + ", ".join(f"{c} {n}" for c, n in zip(counts["class"], counts["n"])))
if len(classes) < 2:
    st.warning("Label objects of at least two classes before training (Annotate page).")

# A key keeps the expander as the user left it across reruns (without one it folded away on
# the first edit once a run was in the URL); it opens folded only on a link to a run.
with st.expander("Settings", expanded="run" not in st.query_params, key="train_settings"):
    settings = train_form.settings_form(project)
    config = settings.config
    advanced = st.toggle("Edit the full configuration as JSON", key="train_json_toggle")
    if advanced:
        text = st.text_area("TrainConfig (JSON)", json.dumps(config, indent=2), height=400,
                            key="train_json")
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            st.error(f"The JSON is not valid: {error}")
            config = None
    agreed = True
    if settings.to_confirm:
        st.warning("Before training: " + "; ".join(settings.to_confirm) + ".",
                   icon=":material/help:")
        agreed = st.checkbox("Train anyway", key="train_confirm_classes")
    left, right = st.columns(2)
    ready = len(classes) >= 2 and agreed and settings.blocked is None
    start = left.button("Start training", type="primary", disabled=not ready or not config)
    baseline = right.button("Train the random-forest baseline", disabled=not ready)

try:
    source = {"kind": "project", "group_pattern": settings.group_pattern}
    if start:
        train_form.validate(config)
        run_id = jobs.submit_training(project.folder, config, source, author=state.author())
        st.query_params["run"] = str(run_id)
        st.rerun()
    if baseline:
        rf = {"val_fraction": config.get("val_fraction", 0.2) if config else 0.2,
              "seed": config.get("seed", 0) if config else 0}
        run_id = jobs.submit_training(project.folder, rf, source, author=state.author(),
                                      kind="rf")
        st.query_params["run"] = str(run_id)
        st.rerun()
except InputError as error:
    st.error(str(error))

all_runs = runs.training_runs(project)
if not all_runs.empty:
    ids = all_runs["id"].tolist()
    wanted = state.int_param("run", ids[0])  # ?run=abc or 1e3 from a hand-typed link
    run_id = st.selectbox("Run", ids, index=ids.index(wanted) if wanted in ids else 0,
                          format_func=runs.run_label(all_runs))
    st.query_params["run"] = str(run_id)
    active = project.run(run_id)["status"] in ("queued", "running")

    @st.fragment(run_every=1 if active else None)
    def live() -> None:
        status = jobs.job_status(project.folder, run_id)
        epochs = project.epochs(run_id)
        line = f"**{status['status']}** · {len(epochs)} epoch(s)"
        if status.get("device"):
            line += f" · on {status['device']}"
        st.markdown(line)
        if status["status"] in ("queued", "running"):
            if st.button("Stop", icon=":material/stop:", key=f"stop_{run_id}"):
                jobs.request_cancel(project.folder, run_id)
                st.toast("Stopping after the current batch; the best model is kept.")
        elif active:
            st.rerun()  # the job just ended: redraw the page without the timer
        if status.get("error"):
            st.error(status["error"])
        st.plotly_chart(runs.curves(epochs, classes), key=f"curves_{run_id}")

    live()
    record = project.run(run_id)
    if record["status"] in ("done", "stopped") and record.get("model_dir"):
        try:
            meta = read_model_meta(record["model_dir"])
        except InputError as error:  # the folder was moved, deleted or edited since
            st.error(str(error))
            meta = {}
        metrics = meta.get("metrics") or {}
        st.subheader("Validation of the kept model")
        summary = record.get("summary") or {}
        st.caption(summary.get("text", ""))
        caution = runs.validation_caution(summary, metrics)
        if caution:
            st.warning(caution, icon=":material/warning:")
        if metrics.get("confusion"):
            left, right = st.columns([1, 1])
            left.plotly_chart(runs.confusion_figure(metrics["confusion"], meta["classes"]),
                              key=f"confusion_{run_id}")
            per_class = pd.DataFrame(metrics.get("per_class", {})).T
            right.dataframe(per_class)
            n_val = sum(c.get("support", 0) for c in metrics.get("per_class", {}).values())
            right.metric(f"Macro-F1 on {n_val} validation objects",
                         f"{metrics.get('macro_f1', float('nan')):.3f}")


@st.fragment(run_every=2 if runs.any_active(project) else None)
def run_tables() -> None:
    """Trainings and predictions in two tables, with the live status while a job runs."""
    trainings, predictions = runs.split_runs(runs.runs_table(project))
    if not trainings.empty:
        st.subheader("Runs")
        st.dataframe(trainings, hide_index=True, key="train_runs_table")
    if not predictions.empty:
        st.subheader("Prediction runs")
        st.dataframe(predictions, hide_index=True, key="train_prediction_runs")


run_tables()

with st.expander("Compare runs"):
    compare.compare_panel(project)
with st.expander("Sweep: one run per cell of a grid of settings",
                 expanded=bool(compare.sweeps(project)), key="train_sweep"):
    compare.sweep_panel(project, config, source, state.author(), ready)
