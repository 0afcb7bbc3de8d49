"""Runs, models and their charts, as the Train, Predict and Annotate pages show them.

Reads the project store only (the worker processes write it); builds plotly figures from
the per-epoch metrics. No torch import: model folders are read with
:func:`svetlana_core.models.read_model_meta`, and :func:`device_name` asks a separate Python
process, once per server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from svetlana_core.models import MODEL_FILE
from svetlana_core.store import Project
from svetlana_core.store.current_model import TRAINING_KINDS
from ui import state

FINAL = ("done", "failed", "stopped")


def model_runs(project: Project, kind: str | tuple[str, ...] | None = None) -> pd.DataFrame:
    """Runs that left a usable model folder, newest first: done, stopped, or failed after a
    checkpoint (a killed worker keeps the best model of its finished epochs).

    ``kind``: only runs of that kind or kinds (``"train"`` for the CNNs that explain,
    :data:`TRAINING_KINDS` for every model that predicts).
    """
    runs = project.runs()
    if runs.empty:
        return runs
    ok = runs["status"].isin(FINAL) & runs["model_dir"].notna()
    if kind is not None:
        ok &= runs["kind"].isin([kind] if isinstance(kind, str) else list(kind))
    ok &= runs["model_dir"].map(lambda d: isinstance(d, str) and bool(d)
                                and (Path(d) / MODEL_FILE).exists())
    return runs[ok].sort_values("id", ascending=False)


def training_runs(project: Project) -> pd.DataFrame:
    """The CNN and random-forest trainings of a project, newest first (the Train page's runs;
    a prediction has no curves to show)."""
    all_runs = project.runs()
    if all_runs.empty:
        return all_runs
    return all_runs[all_runs["kind"].isin(TRAINING_KINDS)].sort_values("id", ascending=False)


def any_active(project: Project) -> bool:
    """Whether a job of the project is queued or running (pages tick only then)."""
    runs = project.runs()
    return bool(not runs.empty and runs["status"].isin(["queued", "running"]).any())


def run_label(table: pd.DataFrame):
    """``format_func`` for a run picker: ``run 3 · train-rf (done)``."""
    rows = table.set_index("id")
    return lambda run_id: f"run {run_id} · {rows.loc[run_id, 'kind']} ({rows.loc[run_id, 'status']})"


def _decode(value) -> dict:
    """``runs()`` keeps config and summary as JSON text; ``run()`` gives dicts."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def model_label(run) -> str:
    """How a model is named in choosers: run id, kind, folder name, best macro-F1."""
    summary = _decode(run["summary"])
    score = summary.get("macro_f1")
    text = f"run {run['id']} · {run['kind']} · {Path(run['model_dir']).name}"
    if run.get("status") == "failed":
        text += " · checkpoint of a failed run"
    return text + (f" · macro-F1 {score:.3f}" if isinstance(score, (int, float)) else "")


def latest_predictions(project: Project, image: str) -> pd.DataFrame:
    """Predictions of this image by the model the Predict page shows, else by the project's
    current model (``label, class, confidence``); empty when there are none."""
    empty = pd.DataFrame({"label": pd.Series(dtype="int64"), "class": pd.Series(dtype=str),
                          "confidence": pd.Series(dtype=float)})
    chosen = st.session_state.get(state.MODEL_KEY) or project.current_model()
    if not chosen:
        return empty
    table = project.predictions(chosen, image)
    return table if not table.empty else empty


@st.cache_resource
def device_name() -> str:
    """The device training would use here: the GPU's name, Apple MPS, or CPU (cores).

    Asked of a child Python process (:func:`svetlana_core.models.describe_device`): finding
    the GPU needs torch, which takes seconds and hundreds of MB to import, and the app's
    pages do not need it otherwise (the training runs in a worker process).
    """
    code = "from svetlana_core.models import describe_device; print(describe_device())"
    root = str(Path(__file__).resolve().parents[1])  # where svetlana_core is, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=120, env=env, check=True)
    except (OSError, subprocess.SubprocessError):  # no answer: say so rather than guess
        return "not detected"
    return result.stdout.strip() or "not detected"


def curves(epochs: pd.DataFrame, classes: list[str]) -> go.Figure:
    """Three panels: train/validation loss; validation accuracy, balanced accuracy and
    macro-F1; per-class validation recall."""
    figure = make_subplots(rows=1, cols=3, subplot_titles=(
        "Loss", "Validation scores", "Validation recall per class"))
    if epochs.empty:
        return figure
    x = epochs["epoch"]
    for column, name in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        if column in epochs:
            figure.add_trace(go.Scatter(x=x, y=epochs[column], name=name, mode="lines+markers"),
                             row=1, col=1)
    for column, name in (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
                         ("macro_f1", "macro-F1")):
        if column in epochs:
            figure.add_trace(go.Scatter(x=x, y=epochs[column], name=name, mode="lines+markers"),
                             row=1, col=2)
    for name in classes:
        column = f"recall_{name}"
        if column in epochs:
            figure.add_trace(go.Scatter(x=x, y=epochs[column], name=f"recall {name}",
                                        mode="lines"), row=1, col=3)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    figure.update_yaxes(range=[0, 1.02], row=1, col=3)
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", y=-0.25))
    return figure


def validation_caution(summary: dict, metrics: dict) -> str:
    """A sentence when a run's validation scores should not be trusted as they are: the
    split was not grouped, or a class had fewer than
    :data:`~svetlana_core.training.FEW_VALIDATION_OBJECTS` validation objects; else ``""``.

    (Issue 12: macro-F1 1.000 in large type from 8 validation objects of one image, against
    0.41 on the project's other 6,321 objects.)
    """
    from svetlana_core.training.split import FEW_VALIDATION_OBJECTS

    said = []
    note = str(summary.get("split") or "")
    if "NOT grouped" in note:
        said.append("the split was not grouped (objects of one image in both sets): the "
                    "scores are optimistic")
    support = {name: int(c.get("support", 0))
               for name, c in (metrics.get("per_class") or {}).items()}
    thin = [f"{name} {n}" for name, n in support.items() if n < FEW_VALIDATION_OBJECTS]
    if thin:
        said.append(f"few validation objects ({', '.join(thin)}; fewer than "
                    f"{FEW_VALIDATION_OBJECTS} per class): the scores are rough")
    return ("Read these scores with care: " + "; ".join(said) + ".") if said else ""


def confusion_figure(confusion: list[list[int]], classes: list[str]) -> go.Figure:
    """Confusion matrix heat map (rows: true class, columns: predicted class)."""
    figure = go.Figure(go.Heatmap(z=confusion, x=classes, y=classes, colorscale="Blues",
                                  text=confusion, texttemplate="%{text}", showscale=False))
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10),
                         xaxis_title="predicted", yaxis_title="true",
                         yaxis=dict(autorange="reversed"))
    return figure


def _to_the_second(stamp) -> str:
    """``2026-11-24T05:07:32.268+00:00`` → ``2026-11-24 05:07:32``; missing → ``""``."""
    return stamp[:19].replace("T", " ") if isinstance(stamp, str) else ""


def runs_table(project: Project) -> pd.DataFrame:
    """One row per run to compare them: status, architecture, settings, best scores."""
    runs = project.runs()
    rows = []
    for run in runs.sort_values("id", ascending=False).to_dict("records"):
        # A project holds tens of runs: a loop over them is clearer than exploding JSON.
        config = _decode(run.get("config"))
        inner = config.get("config", config)
        metrics = _decode(run.get("summary"))
        finished, total = metrics.get("finished"), metrics.get("total")
        rows.append({
            "run": run["id"], "kind": run["kind"], "status": run["status"],
            # a prediction: its model, how far it got, what ran it
            "model": Path(config["model_dir"]).name if config.get("model_dir") else "",
            "images": f"{finished}/{total}" if total is not None else "",
            "engine": metrics.get("engine", ""),
            "arch": {"train-rf": "rf", "train": inner.get("arch", "cnn")}.get(run["kind"], ""),
            # a prediction run has a model, not training settings
            "params": json.dumps(inner.get("arch_params", {}))
            if inner and run["kind"] == "train" else "",
            "epochs": inner.get("epochs"), "lr": inner.get("lr"),
            "macro_f1": metrics.get("macro_f1"),
            "balanced_accuracy": metrics.get("balanced_accuracy"),
            "device": run.get("device"), "author": run.get("author"),
            # to the second: the full ISO stamp made the table wider than the page
            "started": _to_the_second(run.get("started_at")),
            "error": run.get("error"),
        })
    return pd.DataFrame(rows)


#: Columns of the runs table that only a prediction fills, and only a training.
PREDICTION_COLUMNS = ["model", "images", "engine"]
TRAINING_COLUMNS = ["arch", "params", "epochs", "lr", "macro_f1", "balanced_accuracy", "device"]


def split_runs(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`runs_table` as two tables: trainings (with their settings and scores) and
    predictions (with their model, images done and engine), each without the other's
    columns."""
    if table.empty:
        return table, table
    is_training = table["kind"].isin(TRAINING_KINDS)
    return (table[is_training].drop(columns=PREDICTION_COLUMNS),
            table[~is_training].drop(columns=TRAINING_COLUMNS + ["kind"]))
