"""Per-well tables and the plate heat map of the Dashboard page.

The plate is drawn as a scatter of square markers (one per well), not a ``go.Heatmap``:
Streamlit reports clicks on scatter points (``on_select``) but not on heat-map cells, and a
click on a well opens its images.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from svetlana_core import models, plate, stats
from svetlana_core.errors import InputError
from svetlana_core.store import Project


def _counted_classes(project: Project, model_dir: str, predicted: set[str]) -> list[str]:
    """Every class the model can predict, in project order: a class it predicted for no object
    is counted 0, not left out of the tables (its folder gone: the predicted classes)."""
    try:
        known = set(models.read_model_meta(model_dir)["classes"]) | predicted
    except InputError:
        known = predicted
    classes = [c for c in project.classes()["name"] if c in known]
    return classes + sorted(known - set(classes))


def project_counts(project: Project, model_dir: str, layout: int | None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Counts per image and per well of a model's stored predictions for the project.

    Returns ``(per_image, per_well, classes)``; images of the project without predictions
    are left out (they were not predicted), images without objects count 0.
    """
    predictions = project.predictions(model_dir)
    images = project.images()[["name", "well"]].rename(columns={"name": "image"})
    predicted = images[images["image"].isin(predictions["image"])]
    classes = _counted_classes(project, model_dir, set(predictions["class"]))
    objects = plate.add_wells(predictions, dict(zip(images["image"], images["well"])))
    per_image = stats.counts_per_image(objects, classes, images=predicted)
    if predicted["well"].notna().any():
        per_well = stats.counts_per_well(objects, classes, layout=layout, images=predicted)
    else:
        per_well = pd.DataFrame()
    return per_image, per_well, classes


def plate_figure(grid: pd.DataFrame, title: str) -> go.Figure:
    """Square markers laid out as the plate, coloured by value; empty outlines where NaN."""
    rows, columns = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]),
                                indexing="ij")
    values = grid.to_numpy().ravel()
    names = [f"{r}{int(c):02d}" for r in grid.index for c in grid.columns]
    present = ~np.isnan(values)
    size = max(6, min(26, int(600 / grid.shape[1])))
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=columns.ravel()[~present] + 1, y=rows.ravel()[~present], mode="markers",
        marker=dict(symbol="square-open", size=size, color="#bbbbbb"),
        text=[n for n, p in zip(names, present) if not p], hovertemplate="%{text}: no image",
        name="missing", showlegend=False))
    figure.add_trace(go.Scatter(
        x=columns.ravel()[present] + 1, y=rows.ravel()[present], mode="markers",
        marker=dict(symbol="square", size=size, color=values[present], colorscale="Viridis",
                    showscale=True, colorbar=dict(title=title)),
        text=[n for n, p in zip(names, present) if p], customdata=values[present],
        hovertemplate="%{text}: %{customdata:.3g}<extra></extra>", name="wells",
        showlegend=False))
    figure.update_yaxes(autorange="reversed", tickmode="array",
                        tickvals=list(range(grid.shape[0])), ticktext=list(grid.index))
    figure.update_xaxes(tickmode="array", tickvals=list(grid.columns), side="top")
    figure.update_layout(height=70 + (size + 6) * grid.shape[0],
                         margin=dict(l=10, r=10, t=30, b=10),
                         plot_bgcolor="white", dragmode=False)
    return figure


def read_plate_map(data: bytes, name: str) -> pd.DataFrame:
    """A plate map CSV (columns ``well``, ``condition``; others kept) from uploaded bytes.

    Raises
    ------
    InputError
        Not UTF-8 text, not a CSV, or without the two columns (the message names the file).
    """
    try:
        table = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                            encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"plate map {name} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); save it as 'CSV UTF-8'") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"plate map {name} is not a readable CSV: {error}") from None
    table.columns = [str(c).strip() for c in table.columns]
    if not {"well", "condition"} <= set(table.columns):
        raise InputError(f"plate map {name} needs columns well and condition; it has "
                         f"{', '.join(table.columns) or 'none'}")
    return table


def condition_summary(per_well: pd.DataFrame, plate_map: pd.DataFrame, value: str
                      ) -> pd.DataFrame:
    """Mean, standard deviation and number of wells of ``value`` per condition.

    ``plate_map`` has columns ``well`` and ``condition`` (a user's CSV); wells are matched
    by name after normalising ("a1" → "A01").
    """
    wells = plate_map.assign(well=plate_map["well"].map(_normal_well))
    merged = per_well.dropna(subset=[value]).merge(wells[["well", "condition"]], on="well")
    return (merged.groupby("condition")[value].agg(["mean", "std", "count"])
            .rename(columns={"count": "wells"}).reset_index())


def _normal_well(name) -> str | None:
    try:
        return plate.well_name(*plate.parse_well_name(str(name)))
    except ValueError:
        return None
