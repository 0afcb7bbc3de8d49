"""Labelling logic behind the Annotate page: shapes → labels → store, and which object the
guided mode shows next. No Streamlit import: tested directly."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import MutableMapping

import numpy as np
import pandas as pd

from svetlana_core.objects import object_table
from svetlana_core.store import Project
from ui.canvas import Shapes, labels_at_points, labels_in_box, labels_in_polygon


def labels_from_shapes(mask: np.ndarray, shapes: Shapes) -> np.ndarray:
    """Labels selected by a drawing on a 2D mask (or the shown plane of a 3D mask).

    A click selects the object under it; a rectangle or polygon selects every object whose
    centroid (in this plane) lies inside. Sorted, unique, background excluded.
    """
    found = [labels_at_points(mask, shapes.points)]
    if shapes.boxes or shapes.polygons:
        table = object_table(mask)
        centroids = table[["centroid_row", "centroid_column"]].to_numpy()
        labels = table["label"].to_numpy()
        found += [labels_in_box(centroids, labels, box) for box in shapes.boxes]
        found += [labels_in_polygon(centroids, labels, poly) for poly in shapes.polygons]
    selected = np.unique(np.concatenate(found).astype(np.int64))
    return selected[selected > 0]


def label_objects(project: Project, image: str, labels: np.ndarray, class_name: str,
                  author: str, source: str = "manual") -> int:
    """Give ``class_name`` to ``labels`` of ``image`` in one committed transaction."""
    if len(labels) == 0:
        return 0
    return project.annotate_many([(image, int(label), class_name) for label in labels],
                                 author=author, source=source)


def label_colours(labels: pd.DataFrame, classes: pd.DataFrame) -> dict[int, str]:
    """label → colour of its class, for the labelled objects of one image."""
    colour_of = dict(zip(classes["name"], classes["colour"]))
    return {int(label): colour_of[name] for label, name in zip(labels["label"], labels["class"])
            if name in colour_of}


def guided_seed(author: str, session: MutableMapping) -> int:
    """The random order of the guided mode for this user.

    One order per person (from the name, so it survives a reload) and, for anonymous users,
    one per browser session: people labelling one image at once are then shown different
    objects instead of all the same next one (bench/soak.py: 20 users labelled only 200
    distinct objects in 683 clicks with one shared order).
    """
    if author:
        return zlib.crc32(author.encode("utf-8"))
    return session.setdefault("guided_seed", secrets.randbits(32))


def next_object(table: pd.DataFrame, labelled: set[int], skipped: set[int],
                strategy: str = "random", predictions: pd.DataFrame | None = None,
                seed: int = 0) -> int | None:
    """The object the guided mode shows next, or None when every object is done.

    Parameters
    ----------
    table : DataFrame
        Object table of the image (``label`` column).
    labelled, skipped : set of int
        Objects to leave out.
    strategy : {"random", "uncertain"}
        ``uncertain`` takes the object with the lowest prediction confidence first (active
        learning); it falls back to random when there are no predictions.
    predictions : DataFrame, optional
        ``label``, ``confidence`` of the latest model on this image.
    seed : int
        Random order is fixed per seed so "skip" and reloads are predictable.
    """
    candidates = table["label"].to_numpy()
    keep = ~np.isin(candidates, list(labelled | skipped))
    candidates = candidates[keep]
    if len(candidates) == 0:
        return None
    if strategy == "uncertain" and predictions is not None and not predictions.empty:
        ranked = predictions[predictions["label"].isin(candidates)].sort_values(
            ["confidence", "label"])
        if not ranked.empty:
            return int(ranked["label"].iloc[0])
    order = np.random.default_rng(seed).permutation(len(table))
    ranked = table["label"].to_numpy()[order]
    return int(ranked[np.isin(ranked, candidates)][0])
