"""Quick classifier experiments on the Train page: runs compared side by side, and sweeps.

Comparing two or more trainings: their validation curves overlaid, the settings that differ,
and the per-class scores of their kept models. A sweep queues one training per cell of a
grid of one or two settings (:func:`svetlana_core.jobs.submit_sweep`); its table fills in as
the cells finish. Reads the store and the model folders' ``model.json``; no torch.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.models import read_model_meta
from svetlana_core.store import Project
from svetlana_core.training import TrainConfig

#: Settings a sweep on the Train page can vary (architecture parameters of the cnn first).
SWEEP_KEYS = ("depth", "width", "kernel", "dropout", "lr", "batch_size", "epochs",
              "patch_size", "patch_mode", "class_weights", "label_smoothing", "weight_decay",
              "max_minutes")


def _spec(project: Project, run_id: int) -> dict:
    return project.run(run_id).get("config") or {}


def run_settings(project: Project, run_id: int) -> dict[str, object]:
    """A training's settings, flat (``arch_params.depth``), every key with its value (the
    defaults filled in by :class:`TrainConfig`; a depth left automatic says ``auto``)."""
    spec = _spec(project, run_id)
    config = spec.get("config") or {}
    if spec.get("kind") == "rf":
        return {"arch": "rf", **{k: v for k, v in config.items()}}
    try:
        full = TrainConfig.from_dict(config).to_dict()
    except InputError:
        full = dict(config)
    arch = full.get("arch", "cnn")
    try:  # the registry's defaults under what the run set (a depth left out stays automatic)
        defaults = {k: v for k, v in models.architecture_params(arch).items()
                    if not (arch == "cnn" and k == "depth")}
    except InputError:
        defaults = {}
    full["arch_params"] = {**defaults, **(full.get("arch_params") or {})}
    flat: dict[str, object] = {}
    for key, value in full.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                flat[f"{key}.{inner}"] = json.dumps(item) if isinstance(item, (list, dict)) \
                    else item
        else:
            flat[key] = value
    if arch == "cnn":
        flat.setdefault("arch_params.depth", "auto")
    source = spec.get("source") or {}
    flat["group_pattern"] = source.get("group_pattern")
    return flat


def settings_diff(project: Project, run_ids: list[int]) -> pd.DataFrame:
    """The settings on which the runs differ: one row per setting, one column per run."""
    table = pd.DataFrame({f"run {r}": pd.Series(run_settings(project, r), dtype=object)
                          for r in run_ids})
    differs = table.astype(str).nunique(axis=1) > 1
    return table[differs].rename_axis("setting").reset_index()


def per_class(project: Project, run_ids: list[int]) -> pd.DataFrame:
    """Recall, precision and F1 of each class on the validation set of each kept model:
    one row per class and metric, one column per run (empty where a run kept no model)."""
    columns = {}
    for run_id in run_ids:
        model_dir = project.run(run_id).get("model_dir")
        try:
            metrics = (read_model_meta(model_dir).get("metrics") or {}) if model_dir else {}
        except InputError:  # the folder was moved or deleted
            metrics = {}
        values = {(name, metric): scores.get(metric)
                  for name, scores in (metrics.get("per_class") or {}).items()
                  for metric in ("recall", "precision", "f1", "support")}
        values[("all", "macro_f1")] = metrics.get("macro_f1")
        columns[f"run {run_id}"] = pd.Series(values, dtype=object)
    table = pd.DataFrame(columns)
    table.index = table.index.set_names(["class", "metric"])
    return table.reset_index()


def curves(project: Project, run_ids: list[int]) -> go.Figure:
    """Validation macro-F1 and validation loss per epoch, one colour per run."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Validation macro-F1",
                                                           "Validation loss"))
    for run_id in run_ids:
        epochs = project.epochs(run_id)
        if epochs.empty:
            continue
        for col, column in ((1, "macro_f1"), (2, "val_loss")):
            if column in epochs:
                figure.add_trace(go.Scatter(
                    x=epochs["epoch"], y=epochs[column], mode="lines+markers",
                    name=f"run {run_id}", legendgroup=str(run_id), showlegend=col == 1),
                    row=1, col=col)
    figure.update_yaxes(range=[0, 1.02], row=1, col=1)
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", y=-0.25))
    return figure


def parse_values(text: str) -> list[object]:
    """The values typed for a sweep key, ``"2, 3"`` → ``[2, 3]`` (JSON where it parses)."""
    from svetlana_core.training.sweep import parse_grid

    return parse_grid([f"k={text}"])["k"] if text.strip() else []


def sweeps(project: Project) -> dict[str, list[int]]:
    """Sweep id → its runs (oldest first), newest sweep first."""
    found: dict[str, list[int]] = {}
    runs = project.runs()
    for run_id, config in zip(runs["id"], runs["config"]):
        try:
            spec = json.loads(config) if isinstance(config, str) else (config or {})
        except json.JSONDecodeError:
            continue
        sweep = spec.get("sweep") if isinstance(spec, dict) else None
        if isinstance(sweep, dict) and sweep.get("id"):
            found.setdefault(str(sweep["id"]), []).append(int(run_id))
    return dict(sorted(found.items(), key=lambda item: -max(item[1])))


def sweep_table(project: Project, run_ids: list[int]) -> pd.DataFrame:
    """One row per cell: its values, run, status and validation scores (empty until done)."""
    rows = []
    for run_id in run_ids:
        record = project.run(run_id)
        cell = ((record.get("config") or {}).get("sweep") or {}).get("cell") or {}
        summary = record.get("summary") or {}
        rows.append({**{k: json.dumps(v) if isinstance(v, (list, dict)) else v
                        for k, v in cell.items()},
                     "run": run_id, "status": record["status"],
                     "macro_f1": summary.get("macro_f1"),
                     "balanced_accuracy": summary.get("balanced_accuracy"),
                     "epochs": len(project.epochs(run_id))})
    return pd.DataFrame(rows)


def sweep_grid(table: pd.DataFrame, score: str = "macro_f1") -> pd.DataFrame | None:
    """With two keys, the score as a grid (first key down, second across); else None."""
    keys = [c for c in table.columns if c not in ("run", "status", "macro_f1",
                                                    "balanced_accuracy", "epochs")]
    if len(keys) != 2 or table.empty:
        return None
    return table.pivot_table(index=keys[0], columns=keys[1], values=score, aggfunc="first",
                             dropna=False)


# --------------------------------------------------------------------------------------------
# the Train page's panels


def compare_panel(project: Project) -> None:
    """Pick two or more trainings: curves overlaid, the settings that differ, per-class
    scores side by side."""
    import streamlit as st

    from ui import runs

    trained = runs.training_runs(project)
    trained = trained[trained["kind"] == "train"] if not trained.empty else trained
    if len(trained) < 2:
        st.caption("Two trainings or more can be compared here.")
        return
    ids = trained["id"].tolist()
    chosen = st.multiselect("Runs to compare", ids, default=ids[:2], key="compare_runs",
                            format_func=runs.run_label(trained))
    if len(chosen) < 2:
        st.caption("Pick two runs or more.")
        return
    st.plotly_chart(curves(project, chosen), key="compare_curves")
    left, right = st.columns(2)
    left.markdown("**Settings that differ**")
    diff = settings_diff(project, chosen)
    if diff.empty:
        left.caption("The same settings (a different seed or data?)")
    else:
        left.dataframe(diff.astype(str), hide_index=True, key="compare_diff")
    right.markdown("**Validation scores of the kept models**")
    right.dataframe(per_class(project, chosen), hide_index=True, key="compare_per_class")


def sweep_panel(project: Project, config: dict | None, source: dict, author: str,
                ready: bool) -> None:
    """Start a sweep over one or two settings from the form's config, and follow sweeps."""
    import streamlit as st

    from svetlana_core import jobs
    from svetlana_core.training import sweep as grids

    a, b, c, d = st.columns([1, 2, 1, 2])
    first = a.selectbox("Vary", SWEEP_KEYS, key="sweep_key_1")
    first_values = b.text_input("Values (comma-separated)", "2, 3", key="sweep_values_1")
    second = c.selectbox("and", ("(nothing)",) + SWEEP_KEYS, index=2, key="sweep_key_2")
    second_values = d.text_input("Values", "8, 16, 32", key="sweep_values_2",
                                 disabled=second == "(nothing)")
    try:
        grid = {first: parse_values(first_values)}
        if second != "(nothing)":
            if second == first:
                raise InputError("vary two different settings")
            grid[second] = parse_values(second_values)
        planned = grids.configs(config or {}, grid)
    except InputError as error:
        st.error(str(error))
        planned = []
    start = st.button(f"Start the sweep ({len(planned)} runs, one after another)",
                      disabled=not planned or not ready, key="sweep_start",
                      help="Every other setting is the form's above.")
    if start:
        try:
            sweep_id, _ = jobs.submit_sweep(project.folder, config, grid, source, author=author)
        except InputError as error:
            st.error(str(error))
        else:
            st.session_state["sweep_shown"] = sweep_id
    _sweep_results(project)


def _sweep_results(project: Project) -> None:
    import streamlit as st

    from ui import runs

    found = sweeps(project)
    if not found:
        return
    ids = list(found)
    shown = st.session_state.get("sweep_shown")
    sweep_id = st.selectbox("Sweep", ids, index=ids.index(shown) if shown in ids else 0,
                            key=f"sweep_pick_{shown}",
                            format_func=lambda s: f"sweep {s} ({len(found[s])} runs)")
    active = runs.any_active(project)

    @st.fragment(run_every=2 if active else None)
    def table() -> None:
        cells = sweep_table(project, found[sweep_id])
        grid = sweep_grid(cells)
        if grid is not None:
            st.markdown("**Validation macro-F1 per cell**")
            st.dataframe(grid, key=f"sweep_grid_{sweep_id}")
        event = st.dataframe(cells, hide_index=True, on_select="rerun",
                             selection_mode="single-row", key=f"sweep_cells_{sweep_id}")
        rows = [r for r in event.selection.rows if r < len(cells)]
        if not rows:
            st.caption("Select a cell to open its run, or to delete it.")
            return
        run_id = int(cells.iloc[rows[0]]["run"])
        left, right = st.columns(2)
        if left.button(f"Open run {run_id}", key=f"sweep_open_{run_id}"):
            st.query_params["run"] = str(run_id)
            st.rerun()
        if right.button(f"Delete run {run_id}", key=f"sweep_delete_{run_id}",
                        help="Its model folder moves to deleted_models/ in the project"):
            try:
                moved = project.delete_run(run_id)
            except InputError as error:
                st.error(str(error))
            else:
                st.toast(f"run {run_id} deleted" + (f"; its model is in {moved}" if moved
                                                     else ""))
                st.rerun()

    table()
