"""3D views of one object, for the pages that show objects of a 3D mask (issue 13, item 3).

"Branched or not" cannot be judged from one plane: an object of a stack is shown as a 3D
surface (``skimage.measure.marching_cubes`` of its mask, its neighbours faint around it, in
plotly, which the browser turns and zooms), as three orthogonal planes through its centre
(XY, XZ, YZ) and as a maximum projection. Everything works on a crop around the object, so a
256³ stack costs what the object's box costs. No torch; Streamlit only in
:func:`object_3d`, which draws them.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from svetlana_core.errors import InputError

#: Voxels of room around the object in its crop (its neighbours within reach are drawn).
MARGIN = 6


def object_box(mask: np.ndarray, label: int, margin: int = MARGIN) -> tuple[slice, ...]:
    """The object's bounding box in ``mask`` grown by ``margin`` (clipped to the stack)."""
    where = np.nonzero(mask == label)
    if not len(where[0]):
        raise InputError(f"label {label} is not an object of the mask")
    return tuple(slice(max(0, int(w.min()) - margin), min(n, int(w.max()) + 1 + margin))
                 for w, n in zip(where, mask.shape))


def _surface(volume: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray] | None:
    from skimage.measure import marching_cubes

    padded = np.pad(volume.astype(np.float32), 1)  # closed surfaces at the crop's faces
    if padded.max() <= 0:
        return None
    verts, faces, _, _ = marching_cubes(padded, 0.5, step_size=step, allow_degenerate=False)
    return verts - 1, faces


def object_figure(mask: np.ndarray, label: int, colour: str = "#0072b2",
                  spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
                  neighbours: bool = True, box: tuple[slice, ...] | None = None) -> go.Figure:
    """A 3D surface of object ``label`` of a ``(planes, rows, columns)`` mask, with the other
    objects of its box faint around it; axes in voxels times ``spacing``.

    Raises
    ------
    InputError
        A mask that is not 3D, or a label that is not in it.
    """
    if mask.ndim != 3:
        raise InputError(f"a 3D view needs a 3D mask, got shape {mask.shape}")
    box = object_box(mask, label) if box is None else box
    crop = mask[box]
    origin = np.array([s.start for s in box], dtype=float)
    # a coarser grid for big boxes keeps the surface to some 10k triangles
    step = 1 + int(crop.size > 2_000_000) + int(crop.size > 16_000_000)
    figure = go.Figure()
    parts = [(crop == label, colour, 1.0, f"object {label}")]
    if neighbours:
        parts.append(((crop > 0) & (crop != label), "#999999", 0.15, "neighbours"))
    for volume, tint, opacity, name in parts:
        surface = _surface(volume, step)
        if surface is None:
            continue
        verts, faces = surface
        z, y, x = ((verts + origin) * np.asarray(spacing)).T
        figure.add_trace(go.Mesh3d(x=x, y=y, z=z, i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
                                   color=tint, opacity=opacity, name=name, flatshading=True,
                                   showlegend=True, hoverinfo="name"))
    figure.update_layout(
        height=360, margin=dict(l=0, r=0, t=10, b=0), legend=dict(orientation="h"),
        scene=dict(aspectmode="data", xaxis_title="column", yaxis_title="row",
                   zaxis_title="plane"))
    return figure


def orthogonal_planes(volume: np.ndarray, point: tuple[int, int, int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The XY, XZ and YZ planes of a ``([C,] planes, rows, columns)`` array through
    ``point`` (plane, row, column): shapes ``(rows, columns)``, ``(planes, columns)`` and
    ``(planes, rows)`` (with the leading channel axis kept when there is one).

    >>> v = np.arange(24).reshape(2, 3, 4)
    >>> [p.shape for p in orthogonal_planes(v, (1, 2, 3))]
    [(3, 4), (2, 4), (2, 3)]
    """
    z, y, x = (int(p) for p in point)
    return volume[..., z, :, :], volume[..., :, y, :], volume[..., :, :, x]


def max_projection(volume: np.ndarray, axis: int = -3) -> np.ndarray:
    """The maximum along the planes of ``([C,] planes, rows, columns)`` (a 3D patch's or a
    stack's overview)."""
    return np.asarray(volume).max(axis=axis)


def planes_figure(mask: np.ndarray, label: int, colour: str = "#0072b2",
                  box: tuple[slice, ...] | None = None) -> go.Figure:
    """XY, XZ and YZ planes through the object's centre and the maximum projection of its
    box (:func:`object_box`, found again when not given), the object in ``colour``, its
    neighbours grey, side by side."""
    from plotly.subplots import make_subplots

    box = object_box(mask, label) if box is None else box
    crop = mask[box]
    # the centroid's voxel (rounded half up, as the object table's)
    local = tuple(int(np.floor(c.mean() + 0.5)) for c in np.nonzero(crop == label))
    views = list(orthogonal_planes(crop, local)) + [
        np.where((crop == label).any(axis=0), label, (crop > 0).any(axis=0))]
    titles = ("XY (plane)", "XZ (row)", "YZ (column)", "max projection")
    figure = make_subplots(rows=1, cols=4, subplot_titles=titles)
    rgb_object, grey = _rgb(colour), (150, 150, 150)
    for k, view in enumerate(views, 1):
        image = np.zeros((*view.shape, 3), np.uint8)
        image[(view > 0) & (view != label)] = grey
        image[view == label] = rgb_object
        figure.add_trace(go.Image(z=image, hoverinfo="skip"), row=1, col=k)
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False)
    figure.update_layout(height=240, margin=dict(l=0, r=0, t=30, b=0))
    return figure


def _rgb(colour: str) -> tuple[int, int, int]:
    from svetlana_core.values import rgb

    return rgb(colour)


def projected(image: np.ndarray | None, mask: np.ndarray, label: int,
              planes: slice | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """The maximum projection over the planes the object spans (``planes``, from its object
    table row when the caller has it; else found in the mask): of the image
    ``(C, planes, rows, columns)`` (or None) and of the mask, where the object is drawn over
    the objects in front of or behind it (a 3D object's tile for the galleries)."""
    planes = object_box(mask, label, margin=0)[0] if planes is None else planes
    stack = mask[planes]
    flat = np.where((stack == label).any(axis=0), label, stack.max(axis=0))
    return (None if image is None else image[:, planes].max(axis=1)), flat


def object_3d(mask: np.ndarray, label: int, colour: str = "#0072b2", key: str = "") -> None:
    """A 3D object: its surface with its neighbours faint (turn it with the mouse), and the
    XY, XZ, YZ planes through its centre beside its maximum projection."""
    import streamlit as st

    try:
        box = object_box(mask, int(label))  # one pass over the stack for both figures
        surface = object_figure(mask, int(label), colour, box=box)
        planes = planes_figure(mask, int(label), colour, box=box)
    except InputError as error:
        st.error(str(error))
        return
    st.subheader(f"Object {label} in 3D")
    st.plotly_chart(surface, key=f"{key}object3d_{label}")
    st.plotly_chart(planes, key=f"{key}object3d_planes_{label}")
