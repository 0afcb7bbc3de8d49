"""The image viewer shared by pages: display controls (plane, channels, contrast, zoom) and
the cached JPEG preview with contours and class colours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import loaders, overlay

#: A small image (or a zoomed-in window) is enlarged by a whole factor up to this many display
#: pixels. The Annotate page's canvas column is ~846 px in a 1600-px window with the sidebar
#: open (FIELD-NOTES.md) and a canvas wider than its column loses the clicks on its right part
#: to the next column, so it stays below that: a 256² tile is drawn at 512 px, a 384² one
#: stays 1:1 (2 x 384 > 720), a 128² one at 640.
FILL_SIDE = 720
#: Zoom factors offered, at every image size; those that would show a window of fewer than
#: :data:`MIN_WINDOW` image pixels are left out (a handful of enlarged blocks shows nothing).
ZOOMS = (1, 2, 4, 8, 16)
MIN_WINDOW = 16
RGB_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class Display:
    """How an image is shown: the plane (3D), channels, contrast percentiles and viewport;
    ``rgb``: the channels are red, green, blue with one contrast range for all three (None:
    so when the image has three channels, as a view drawn without controls)."""

    plane: int | None
    channels: tuple[int, ...] | None
    low: float
    high: float
    viewport: overlay.Viewport
    rgb: bool | None = None
    zooms: tuple[int, ...] = (1,)


def channel_name(channel: int, rgb: bool) -> str:
    """What the channel picker calls a channel: ``red``/``green``/``blue`` for an RGB image.

    >>> channel_name(0, rgb=True), channel_name(0, rgb=False)
    ('red', 'channel 0')
    """
    return RGB_NAMES[channel] if rgb and channel < len(RGB_NAMES) else f"channel {channel}"


def zoom_choices(shape: tuple[int, ...]) -> list[int]:
    """The zoom factors offered for an image of ``(rows, columns)``: at every size.

    >>> zoom_choices((256, 256)), zoom_choices((20, 20))
    ([1, 2, 4, 8, 16], [1])
    """
    return [z for z in ZOOMS if max(shape[-2:]) / z >= MIN_WINDOW]


def display_controls(image: np.ndarray | None, mask: np.ndarray, key: str,
                     max_side: int = 1024, zoomable: bool = True,
                     fill_side: int = FILL_SIDE, navigation: bool = False) -> Display:
    """Draw the plane / colours / channel / contrast / zoom controls and return the display.

    A three-channel image opens as RGB (channels named red, green, blue, one contrast range
    so the colours keep their balance); "false colour" shows it as other multichannel
    images. Zoom and pan are offered at every image size; a small image or window is
    enlarged up to ``fill_side`` display pixels (:func:`overlay.fit_viewport`).

    With ``navigation`` (the Annotate page's canvas), the view fits the width of the column
    the controls are drawn in, measured in the browser (:func:`ui.navigation.measure`,
    which the page draws after its canvas; ``max_side`` and ``fill_side`` until it is
    known), and zoom / pan buttons with keyboard shortcuts are drawn under the zoom
    (:func:`ui.navigation.buttons`).
    """
    if navigation and zoomable:
        from ui import navigation as nav

        width = nav.measured_width(key)  # the page draws nav.measure(key) in this column
        if width:  # every canvas pixel inside its column, so every pixel takes clicks
            max_side = fill_side = max(MIN_WINDOW, int(width))
    plane = None
    if mask.ndim == 3:
        plane = st.slider("Plane (z)", 0, mask.shape[0] - 1, mask.shape[0] // 2,
                          key=f"{key}_plane")
    channels = None
    rgb = False
    low, high = 1.0, 99.8
    cols = st.columns([2, 2, 1]) if zoomable else st.columns([2, 2])
    if image is not None:
        n_channels = image.shape[0]
        if n_channels == 3:
            # deselecting the segment gives None: still RGB, the default
            rgb = cols[0].segmented_control("Colours", ["RGB", "false colour"], default="RGB",
                                            key=f"{key}_colours") != "false colour"
        if n_channels > 1:
            chosen = cols[0].multiselect(
                "Channels", list(range(n_channels)), default=list(range(min(n_channels, 3))),
                key=f"{key}_channels", format_func=lambda c: channel_name(c, rgb))
            channels = tuple(chosen) if chosen else None
        # one channel: no channel picker, so the contrast takes the first column
        low, high = cols[1 if n_channels > 1 else 0].slider(
            "Contrast (percentiles)", 0.0, 100.0, (1.0, 99.8), 0.1, key=f"{key}_contrast")
    shape = mask.shape[-2:]
    zoom, centre = 1, None
    zooms = zoom_choices(shape)
    if zoomable and len(zooms) > 1:
        if st.session_state.get(f"{key}_zoom") not in zooms:
            st.session_state.pop(f"{key}_zoom", None)  # another image offers other zooms
        zoom = cols[-1].select_slider("Zoom", zooms, key=f"{key}_zoom",
                                      **_default(f"{key}_zoom", 1))
        if navigation:
            from ui import navigation as nav

            nav.buttons(key, shape, zooms)
        if zoom > 1:
            for axis, name in enumerate(("crow", "ccol")):  # another image may be smaller
                if st.session_state.get(f"{key}_{name}", 0) > shape[axis] - 1:
                    st.session_state[f"{key}_{name}"] = shape[axis] - 1
            r, c = st.columns(2)
            centre = (r.slider("Centre row", 0, shape[0] - 1, key=f"{key}_crow",
                               **_default(f"{key}_crow", shape[0] // 2)),
                      c.slider("Centre column", 0, shape[1] - 1, key=f"{key}_ccol",
                               **_default(f"{key}_ccol", shape[1] // 2)))
    viewport = overlay.fit_viewport(shape, max_side=max_side, zoom=zoom, centre=centre,
                                    fill_side=fill_side)
    return Display(plane, channels, low, min(max(high, low + 0.1), 100.0), viewport, rgb,
                   tuple(zooms))


def _default(key: str, value) -> dict:
    """``value=`` for a widget whose state the navigation may have set: passing a default
    as well makes Streamlit warn on the page, and the state wins anyway."""
    state = st.session_state.get(key)
    if state is None:
        return {"value": value}
    return {}


def object_display(table, label: int, mask_shape: tuple[int, ...], side: int = 384) -> Display:
    """The view of one object with its context, for the guided mode.

    The object's centroid is in the middle (clipped at the image's edges), in its plane for a
    3D mask; the window is four times the object's larger bounding-box side, at least 64
    pixels and at most the image, shown in ``side`` display pixels.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`svetlana_core.objects.object_table` of the mask.
    label : int
    mask_shape : tuple of int
        (rows, columns) or (planes, rows, columns).
    side : int
        Largest side of the preview, in display pixels.
    """
    obj = table.set_index("label").loc[label]
    plane = int(round(obj["centroid_plane"])) if len(mask_shape) == 3 else None
    extent = max(obj["bbox_row_stop"] - obj["bbox_row_start"],
                 obj["bbox_column_stop"] - obj["bbox_column_start"])
    longest = max(mask_shape[-2:])
    window = int(min(longest, max(64, 4 * extent)))
    port = overlay.fit_viewport(mask_shape[-2:], max_side=side, zoom=longest / window,
                                centre=(obj["centroid_row"], obj["centroid_column"]))
    return Display(plane, None, 1.0, 99.8, port)


def guided_plane(display: Display, table, label: int, n_planes: int) -> Display:
    """The guided view of a 3D object on the plane the user picks: a slider over the planes
    the object spans, starting at its centroid's."""
    from dataclasses import replace

    obj = table.set_index("label").loc[label]
    first, last = int(obj["bbox_plane_start"]), int(obj["bbox_plane_stop"]) - 1
    if last <= first:
        return display
    plane = st.slider("Plane (z) through the object", first, last,
                      min(max(display.plane, first), last), key=f"guided_plane_{label}")
    return replace(display, plane=int(plane))


def preview(row, image: np.ndarray | None, mask: np.ndarray, display: Display,
            label_colours: dict[int, str] | None = None, highlight: int | None = None) -> bytes:
    """JPEG bytes of the current view (cached by file, view and colours)."""
    limits = None
    rgb = display.rgb
    if rgb is None:
        rgb = image is not None and image.shape[0] == 3
    if image is not None:
        limits = loaders.display_limits(row, image, display.plane, display.low, display.high,
                                        shared=rgb)
    colours = tuple(sorted((label_colours or {}).items()))
    return loaders.preview_jpeg(loaders.file_key(row), image, mask, display.viewport,
                                display.plane, display.channels, limits,
                                (display.low, display.high, display.plane, rgb),
                                colours, highlight, rgb)


def overview(row, image: np.ndarray | None, mask: np.ndarray, display: Display,
             key: str) -> None:
    """The navigation overview of the view drawn by ``display_controls(..., key=key,
    navigation=True)``: the whole image from the smallest pyramid level, the view on it."""
    from ui import navigation as nav

    port, shape = display.viewport, mask.shape[-2:]
    whole = (port.row, port.column, port.height, port.width) == (0, 0, *shape)
    if len(display.zooms) < 2:
        return
    if whole and port.step <= 1:
        # every pixel is on the canvas already: no overview, and no plotly to load (it doubled
        # the Annotate page's first paint, 2.4 -> 4.2 s); zoom with the buttons, keys or tool
        nav.view_caption(key, shape, port)
        return
    limits = None
    if image is not None:
        limits = loaders.display_limits(row, image, display.plane, display.low, display.high,
                                        shared=bool(display.rgb))
    jpeg = loaders.overview_jpeg(loaders.file_key(row), image, mask, display.plane,
                                 display.channels, limits,
                                 (display.low, display.high, display.plane, display.rgb),
                                 bool(display.rgb))
    nav.overview(jpeg, key, mask.shape[-2:], list(display.zooms), display.viewport)


def pick_image(project, images, key: str):
    """The image chooser shared by pages: a select box on the tab's current image.

    Returns ``(name, row, image, mask)`` where ``row`` holds the paths and axes (the cache key
    of :mod:`ui.loaders`); on a file that cannot be read, shows the error and stops the page.
    """
    from svetlana_core.errors import InputError
    from ui import state

    names = images["name"].tolist()
    current = state.current_image(project)
    # The widget follows the tab's image, whoever changed it (another page, a link; set on
    # every run, as a widget new to this page would open on the first image); a choice here
    # changes it in a callback, before the page runs, so the sidebar links see it too.
    st.session_state[key] = current
    name = st.selectbox("Image", names, key=key, on_change=_choose_image, args=(key,))
    record = images.set_index("name").loc[name]
    row = {"path": record["path"], "mask_path": record["mask_path"], "axes": record["axes"]}
    try:
        image, mask = loaders.load_pair(row)
    except InputError as error:
        st.error(str(error))
        st.stop()
    return name, row, image, mask


def _choose_image(key: str) -> None:
    from ui import state

    state.set_current_image(st.session_state[key])
