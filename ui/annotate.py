"""Labelling logic behind the Annotate page: canvas drawings → labels → store, and which
object the guided mode shows next. No Streamlit import: session state comes in as a mapping,
so this is tested directly."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import MutableMapping

import numpy as np
import pandas as pd

from svetlana_core.objects import object_table
from svetlana_core.store import Project
from ui.canvas import (
    Shapes,
    labels_at_points,
    labels_in_box,
    labels_in_polygon,
    parse_drawing,
)
from ui.overlay import Viewport, class_colours

#: Shapes a canvas holds before it is replaced by a fresh one: the browser uploads the whole
#: drawing on every click (~0.75 KB a shape, FIELD-NOTES.md), so the payload stays small.
FRESH_CANVAS_AFTER = 200


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


def canvas_key(session: MutableMapping, view: tuple) -> str:
    """The canvas's widget key for a view (image, plane, viewport).

    Another view, or a fresh canvas after :data:`FRESH_CANVAS_AFTER` shapes, gets another key,
    hence an empty canvas; the same view keeps its canvas across reruns.
    """
    return f"canvas_{abs(hash(view))}_{session.setdefault('canvas_n', 0)}"


def drawn_labels(session: MutableMapping, key: str, viewport: Viewport, mask: np.ndarray,
                 plane: int | None = None) -> np.ndarray:
    """Labels selected by the shapes the canvas ``key`` sent that were not handled yet.

    The canvas sends its whole drawing on every rerun: the shapes handled so far are counted
    in ``session`` so that each is handled once (a rerun with the same value labels nothing).
    Past :data:`FRESH_CANVAS_AFTER` shapes the next :func:`canvas_key` is a fresh canvas.

    Parameters
    ----------
    session : mapping
        ``st.session_state``: the canvas value under ``key``
        (``{"drawing": {"raw": {"objects": [...]}}, "backgroundFit": {...}}``).
    viewport : Viewport
        The window of the image the canvas shows.
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
    plane : int, optional
        The plane shown, for a 3D mask.

    Returns
    -------
    ndarray of int64
        Sorted, unique labels (empty when nothing new was drawn).
    """
    sent = session.get(key) or {}
    drawn = ((sent.get("drawing") or {}).get("raw") or {}).get("objects") or []
    handled = session.setdefault("canvas_handled", {})
    done = min(handled.get(key, 0), len(drawn))
    if len(drawn) <= done:
        return np.zeros(0, dtype=np.int64)
    handled[key] = len(drawn)
    if len(drawn) >= FRESH_CANVAS_AFTER:
        session["canvas_n"] = session.get("canvas_n", 0) + 1
    shapes = parse_drawing({"objects": drawn[done:]}, sent.get("backgroundFit"), viewport)
    return labels_from_shapes(mask if plane is None else mask[plane], shapes)


def label_objects(project: Project, image: str, labels: np.ndarray, class_name: str,
                  author: str, source: str = "manual") -> int:
    """Give ``class_name`` to ``labels`` of ``image`` in one committed transaction, one undo
    step (a rectangle or a polygon labels many objects in one action)."""
    if len(labels) == 0:
        return 0
    return project.annotate_many([(image, int(label), class_name) for label in labels],
                                 author=author, source=source, one_action=len(labels) > 1)


def object_colours(labels: pd.DataFrame, classes: pd.DataFrame,
                   predicted: pd.DataFrame | None = None) -> dict[int, str]:
    """label → colour shown on the canvas: labelled objects in their class's colour and,
    with predictions (correction mode), the other objects in their predicted class's."""
    colours = class_colours(labels, classes)
    if predicted is None:
        return colours
    unlabelled = predicted[~predicted["label"].isin(labels["label"])]
    return {**class_colours(unlabelled, classes), **colours}


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
