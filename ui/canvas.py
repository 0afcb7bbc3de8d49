"""Turn what streamlit-drawable-canvas sends back into image pixels and object labels.

Pure functions (no Streamlit import) so the geometry is pinned by tests.

The canvas (0.13) reports Fabric.js objects in *canvas* pixels:

- point mode: a click at (x, y) is stored as a circle with ``left = x - radius - strokeWidth/2``
  and ``top = y`` (origin left/centre), so ``x = left + radius + strokeWidth/2``;
- rectangle mode: ``left``, ``top``, ``width * scaleX``, ``height * scaleY`` (origin left/top);
- polygon mode: a ``Polygon`` whose ``points`` are absolute canvas coordinates.

Canvas pixels map to the preview (the JPEG sent as background) through the canvas's
``background_fit`` (``scale_x``, ``offset_x``, …), and preview pixels map to image pixels
through the :class:`ui.overlay.Viewport` the preview was cut from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ui.overlay import Viewport


@dataclass(frozen=True)
class Shapes:
    """What the user drew, in image pixel coordinates (rows, columns).

    Attributes
    ----------
    points : (N, 2) float array of clicked positions.
    boxes : list of (row_start, column_start, row_stop, column_stop)
    polygons : list of (K, 2) arrays of vertices.
    """

    points: np.ndarray
    boxes: list[tuple[float, float, float, float]]
    polygons: list[np.ndarray]

    @property
    def empty(self) -> bool:
        return len(self.points) == 0 and not self.boxes and not self.polygons


def _fit(background_fit: dict | None) -> tuple[float, float, float, float]:
    if not background_fit:
        return 1.0, 1.0, 0.0, 0.0
    return (float(background_fit.get("scale_x", background_fit.get("scaleX", 1.0))),
            float(background_fit.get("scale_y", background_fit.get("scaleY", 1.0))),
            float(background_fit.get("offset_x", background_fit.get("offsetX", 0.0))),
            float(background_fit.get("offset_y", background_fit.get("offsetY", 0.0))))


def canvas_to_image(x: np.ndarray, y: np.ndarray, background_fit: dict | None,
                    viewport: Viewport) -> tuple[np.ndarray, np.ndarray]:
    """Map canvas coordinates to (row, column) image coordinates (floats).

    Parameters
    ----------
    x, y : arrays
        Canvas coordinates (x along columns, y along rows), as the canvas reports them.
    background_fit : dict or None
        ``CanvasResult.background_fit`` (snake_case) or the raw ``backgroundFit``
        (camelCase) of the component value; None means one canvas pixel per preview pixel.
    viewport : Viewport
        The window of the image the preview shows. When it is shrunk (``step > 1``) a
        click maps to the image pixel its display pixel shows, not between samples.
    """
    scale_x, scale_y, offset_x, offset_y = _fit(background_fit)
    display_column = (np.asarray(x, dtype=float) - offset_x) / scale_x
    display_row = (np.asarray(y, dtype=float) - offset_y) / scale_y
    if viewport.step > 1:
        # A shrunk preview shows at display pixel d the image pixel row + d * step (the mask
        # is strided, ui.overlay.crop): a click anywhere in that display pixel selects what
        # it shows. Without the floor, a click in the pixel's right half at step 14 read
        # the image 7 pixels further, off a small object drawn there.
        display_column, display_row = np.floor(display_column), np.floor(display_row)
    return (viewport.row + display_row * viewport.step,
            viewport.column + display_column * viewport.step)


def parse_drawing(json_data: dict | None, background_fit: dict | None,
                  viewport: Viewport) -> Shapes:
    """Read the points, rectangles and polygons of a canvas drawing in image coordinates."""
    objects = (json_data or {}).get("objects", []) or []
    px, py, boxes, polygons = [], [], [], []
    for obj in objects:
        # A drawing holds a handful of shapes: a loop over them is the clear way.
        kind = str(obj.get("type", "")).lower()
        if kind == "circle":
            radius = float(obj.get("radius", 0)) * float(obj.get("scaleX", 1))
            stroke = float(obj.get("strokeWidth", 0))
            px.append(float(obj.get("left", 0)) + radius + stroke / 2)
            py.append(float(obj.get("top", 0)))
        elif kind == "rect":
            width = float(obj.get("width", 0)) * float(obj.get("scaleX", 1))
            height = float(obj.get("height", 0)) * float(obj.get("scaleY", 1))
            left, top = float(obj.get("left", 0)), float(obj.get("top", 0))
            r0, c0 = canvas_to_image(np.array([left]), np.array([top]), background_fit, viewport)
            r1, c1 = canvas_to_image(np.array([left + width]), np.array([top + height]),
                                     background_fit, viewport)
            boxes.append((float(r0[0]), float(c0[0]), float(r1[0]), float(c1[0])))
        elif kind == "polygon":
            vertices = obj.get("points") or []
            if len(vertices) >= 3:
                xs = np.array([v["x"] for v in vertices], dtype=float)
                ys = np.array([v["y"] for v in vertices], dtype=float)
                rows, columns = canvas_to_image(xs, ys, background_fit, viewport)
                polygons.append(np.stack([rows, columns], axis=1))
    if px:
        rows, columns = canvas_to_image(np.array(px), np.array(py), background_fit, viewport)
        points = np.stack([rows, columns], axis=1)
    else:
        points = np.zeros((0, 2))
    return Shapes(points, boxes, polygons)


def labels_at_points(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Labels under each (row, column) point; 0 for background or outside the image.

    Parameters
    ----------
    mask : (rows, columns) integer array
    points : (N, 2) float array

    Examples
    --------
    >>> mask = np.zeros((5, 5), int); mask[1:3, 1:3] = 7
    >>> labels_at_points(mask, np.array([[1.5, 2.2], [4.0, 4.0], [-1, 0]])).tolist()
    [7, 0, 0]
    """
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.floor(points[:, 0]).astype(np.int64)
    columns = np.floor(points[:, 1]).astype(np.int64)
    inside = (rows >= 0) & (rows < mask.shape[0]) & (columns >= 0) & (columns < mask.shape[1])
    out = np.zeros(len(points), dtype=np.int64)
    out[inside] = mask[rows[inside], columns[inside]]
    return out


def labels_in_box(centroids: np.ndarray, labels: np.ndarray,
                  box: tuple[float, float, float, float]) -> np.ndarray:
    """Labels whose centroid (row, column) lies inside the box (row0, col0, row1, col1)."""
    r0, c0, r1, c1 = box
    r0, r1 = min(r0, r1), max(r0, r1)
    c0, c1 = min(c0, c1), max(c0, c1)
    inside = ((centroids[:, 0] >= r0) & (centroids[:, 0] <= r1)
              & (centroids[:, 1] >= c0) & (centroids[:, 1] <= c1))
    return labels[inside]


def labels_in_polygon(centroids: np.ndarray, labels: np.ndarray,
                      polygon: np.ndarray) -> np.ndarray:
    """Labels whose centroid (row, column) lies inside the polygon (K, 2) (rows, columns)."""
    from skimage.measure import points_in_poly

    if len(centroids) == 0:
        return labels[:0]
    return labels[points_in_poly(centroids, polygon)]
