"""Labelling logic behind the Annotate page: canvas drawings → labels → store, and which
object the guided mode shows next. No Streamlit import: session state comes in as a mapping,
so this is tested directly."""

from __future__ import annotations

import json
import secrets
import zlib
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from svetlana_core.objects import object_table
from svetlana_core.store import Project
from svetlana_core.store.annotations import UndoConflict
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


@dataclass(frozen=True)
class Marks:
    """What the shapes that appeared on the canvas since the last run select.

    Attributes
    ----------
    clicked : ndarray of int64
        Objects under new clicks (sorted, unique).
    enclosed : ndarray of int64
        Objects whose centroid lies in a new rectangle or polygon, not clicked.
    erased : int
        Shapes that disappeared (the canvas's own undo, delete or trash buttons).
    """

    clicked: np.ndarray
    enclosed: np.ndarray
    erased: int = 0


def _shape_id(shape: dict) -> str:
    """A shape's geometry as text: the same mark sent again gives the same text."""
    keys = ("type", "left", "top", "width", "height", "radius", "scaleX", "scaleY", "angle")
    points = [(round(float(v["x"]), 2), round(float(v["y"]), 2))
              for v in shape.get("points") or []]
    numbers = (int, float)  # 10 and 10.0 are one position
    return json.dumps([round(float(v), 2) if isinstance(v, numbers) and not isinstance(v, bool)
                       else v for v in (shape.get(k) for k in keys)] + [points])


def drawn_marks(session: MutableMapping, key: str, viewport: Viewport, mask: np.ndarray,
                plane: int | None = None) -> Marks:
    """The objects selected by the shapes the canvas ``key`` sent that were not there before.

    The canvas sends its whole drawing on every change. The drawing is compared with the one
    seen last (kept in ``session``) as a multiset of shape geometries, not by length: the
    canvas's own ↶, delete and trash buttons shrink it, and a canvas drawn anew (after an
    error hid it, or any remount) restarts from an empty drawing while session state still
    holds the old one. Counting lengths dropped the next clicks in both cases (issue 12).
    The rule: a shape that appears labels what it selects, once (a shape the canvas's ↷
    puts back counts as a new click); a shape that disappears changes no label. Past :data:`FRESH_CANVAS_AFTER` shapes the next :func:`canvas_key` is a fresh canvas.

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
    Marks
    """
    sent = session.get(key) or {}
    drawn = ((sent.get("drawing") or {}).get("raw") or {}).get("objects") or []
    ids = [_shape_id(shape) for shape in drawn]
    before = Counter(session.get("canvas_seen", {}).get(key, ()))
    # Only the canvas on screen: Streamlit forgets the value of a canvas no longer drawn.
    session["canvas_seen"] = {key: ids}
    new = Counter(ids) - before
    erased = sum((before - Counter(ids)).values())
    # The latest copies of a repeated shape are the new ones (a second click on one pixel).
    fresh = []
    for shape, shape_id in zip(reversed(drawn), reversed(ids)):
        if new[shape_id] > 0:
            new[shape_id] -= 1
            fresh.append(shape)
    if len(drawn) >= FRESH_CANVAS_AFTER:
        session["canvas_n"] = session.get("canvas_n", 0) + 1
    empty = np.zeros(0, dtype=np.int64)
    if not fresh:
        return Marks(empty, empty, erased)
    shapes = parse_drawing({"objects": fresh[::-1]}, sent.get("backgroundFit"), viewport)
    plane_mask = mask if plane is None else mask[plane]
    clicked = labels_from_shapes(plane_mask, Shapes(shapes.points, [], []))
    enclosed = labels_from_shapes(plane_mask, Shapes(empty.reshape(0, 2), shapes.boxes,
                                                     shapes.polygons))
    return Marks(clicked, np.setdiff1d(enclosed, clicked), erased)


def store_marks(project: Project, image: str, marks: Marks, class_name: str, author: str,
                source: str = "manual", relabel: bool = False) -> tuple[np.ndarray, int]:
    """Give ``class_name`` to the objects ``marks`` select, in one transaction, one undo step.

    A click always labels its object (clicking a labelled object is how a label is
    corrected). A rectangle or polygon labels only the objects that have no label yet
    unless ``relabel``: a selection drawn over labelled objects silently relabelled them.

    Returns
    -------
    labelled : ndarray of int64
        The objects given ``class_name``.
    kept : int
        Objects in a rectangle or polygon that kept the label they had.
    """
    enclosed = marks.enclosed
    if not relabel and len(enclosed):
        enclosed = np.setdiff1d(enclosed, project.labels(image)["label"].to_numpy())
    labelled = np.union1d(marks.clicked, enclosed).astype(np.int64)
    label_objects(project, image, labelled, class_name, author, source)
    return labelled, len(marks.enclosed) - len(enclosed)


def label_objects(project: Project, image: str, labels: np.ndarray, class_name: str,
                  author: str, source: str = "manual") -> int:
    """Give ``class_name`` to ``labels`` of ``image`` in one committed transaction, one undo
    step (a rectangle or a polygon labels many objects in one action)."""
    if len(labels) == 0:
        return 0
    return project.annotate_many([(image, int(label), class_name) for label in labels],
                                 author=author, source=source, one_action=len(labels) > 1)


def caption(class_name: str, labelled: np.ndarray, kept: int) -> str:
    """What the page says after storing marks (kept in session: it names the class used)."""
    text = f"Last: {class_name} ← objects {labelled[:10].tolist()}" if len(labelled) else ""
    if kept:
        text += (f"{' · ' if text else ''}{kept} already labelled object{'s' * (kept > 1)} "
                 f"left as {'they were' if kept > 1 else 'it was'} (tick Relabel to change "
                 f"{'them' if kept > 1 else 'it'})")
    return text


#: Said after the canvas's own ↶ / delete / trash took marks away.
ERASED = ("The canvas's own ↶ and 🗑 erase marks only; labels stay. "
          "Undo (Ctrl+Z) takes a label back.")


def undo(project: Project, author: str, image: str, session: MutableMapping) -> tuple[bool, str]:
    """Take back the author's latest action on ``image``; ``(ok, message)`` for the page.

    The rule when a colleague changed one of its objects since: nothing is undone, the
    colleague's label stays, the message names who changed what and when, and that action is
    dropped from this tab's undo stack (its rows are kept in ``session["undo_skipped"]``), so
    the next Undo takes back the action before it. ``ok`` is False then.
    """
    skipped = session.setdefault("undo_skipped", [])
    try:
        undone = project.undo_last(author, image=image, skip=skipped)
    except UndoConflict as conflict:
        skipped.extend(conflict.rows)
        who, class_name, time = conflict.changes[-1]
        what = "removed its label" if class_name is None else f"set it to **{class_name}**"
        return False, (f"Not undone: **{who or 'someone (anonymous)'}** {what} at "
                       f"{time[11:19]} UTC (object {conflict.label}), after your label. "
                       "Their label is kept and this step is dropped from your undo list: "
                       "Undo again takes back your action before it.")
    if undone is None:
        return True, "nothing to undo"
    return True, f"undid label {undone[1]}"


def labels_changed(session: MutableMapping, image: str, version: int, seen: bool = False) -> bool:
    """Whether ``image``'s labels changed since this tab last drew them.

    With ``seen`` (a panel that is about to read the labels), records ``version`` as drawn.
    Read the version before the labels: a label that lands in between costs one more
    redraw, never a missed one.
    """
    versions = session.setdefault("label_versions", {})
    changed = versions.get(image) != version
    if seen:
        versions[image] = version
    return changed


def chosen_class(session: MutableMapping, class_names: list[str]) -> str:
    """The class the page's Class radio holds, read before the radio is drawn.

    The radio is drawn after the click is stored, so that its counts include that click.
    The choice is kept under a key of its own as well: the radio is not drawn in guided
    mode, and Streamlit forgets the value of a widget a run did not draw.
    """
    value = session.get("annotate_class", session.get("annotate_class_kept"))
    if value not in class_names:  # first visit, or the class was renamed or removed
        value = class_names[0]
    session["annotate_class"] = session["annotate_class_kept"] = value
    return value


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
