"""Moving around a large image: the column's width measured in the browser, zoom and pan
buttons with keyboard shortcuts, an overview to jump from, zoom on a canvas double-click.

The view lives in the display controls' own widget state (``<key>_zoom``,
``<key>_crow``, ``<key>_ccol``: the zoom select-slider and the centre sliders), so the
buttons, the overview, the canvas and the sliders are one state and the sliders stay a way
to type an exact position. Every move is a callback that writes that state before the run:
a navigation step is one script run (of the fragment the controls are in).

Why measure the width: Streamlit cannot tell Python how wide a column is, and a canvas wider
than its column is overlapped by the next one (in a 1600-px window only the left 846 of the
Annotate page's 1000 canvas pixels took clicks, FIELD-NOTES.md). A component with no
content (:func:`measure`) reports its own width (a ``ResizeObserver``: a resized window or a
collapsed sidebar sends the new width) and the view is sized to it; until it has reported
(the first run of a session, or AppTest, where components are inert) the caller's defaults
hold. The alternatives were worse: a fixed conservative width wastes half of a wide
screen, ``st.context`` carries no viewport size, and column ratios do not bound pixels.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import MutableMapping

import numpy as np
import streamlit as st

from ui import canvas
from ui.overlay import Viewport

#: A width is sent again only when it moved by this many pixels (a scrollbar appearing must
#: not redraw the canvas).
WIDTH_TOLERANCE = 8
#: Invisible points of the overview, per side: plotly selects boxes only where a trace has
#: points (never on an image, FIELD-NOTES.md), so a box holds one when a side of it is at
#: least 1/16 of the overview (14 px). More points cost the browser, on the server's cores
#: here: 48 x 48 SVG markers added ~180 ms to each step (bench/RESULTS.md "navigation").
OVERVIEW_GRID = 16
#: Two points of one canvas message closer than this (canvas pixels) are a double-click.
DOUBLE_CLICK_PX = 4.0
#: Keyboard shortcuts of the navigation buttons (Streamlit allows letters, digits and named
#: keys only, and reserves C and R).
SHORTCUTS = {"in": "I", "out": "O", "whole": "W", "left": "Left", "right": "Right",
             "up": "Up", "down": "Down"}

_WIDTH_JS = """
export default function(component) {
  const { setStateValue, parentElement } = component;
  // Remembered on the element: a rerun calls this again, a remount starts afresh.
  let timer = null;
  const report = () => {
    const width = Math.floor(parentElement.getBoundingClientRect().width);
    const last = parentElement.__svetlanaWidth || 0;
    if (width > 0 && Math.abs(width - last) >= %(tolerance)d) {
      parentElement.__svetlanaWidth = width;
      setStateValue('width', width);
    }
  };
  const observer = new ResizeObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(report, 150);
  });
  observer.observe(parentElement);
  report();
  // The canvas's toolbar (shown on hover above its top-right corner) has a padded wrapper
  // that covers the canvas's top 4 px there: clicks on those pixels hit the toolbar. Only
  // its card takes the pointer (it lies wholly above the canvas). The canvas draws in a
  // shadow root of its own, which page CSS cannot reach, so the rule goes into each one.
  const column = parentElement.closest('[data-testid="stColumn"]') || document.body;
  const fix = () => {
    for (const host of column.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
      const root = host.shadowRoot;
      if (root && root.querySelector('.dc-toolbar')
          && !root.querySelector('style[data-svetlana]')) {
        const style = document.createElement('style');
        style.setAttribute('data-svetlana', '');
        style.textContent = '.dc-toolbar{pointer-events:none}.dc-toolbar-card{pointer-events:auto}';
        root.appendChild(style);
      }
    }
  };
  // A new canvas (another view) mounts a new shadow root whose content appears later, out
  // of a MutationObserver's sight: look twice a second, a query over one column.
  const poll = setInterval(fix, 500);
  fix();
  return () => { observer.disconnect(); clearInterval(poll); clearTimeout(timer); };
}
""" % {"tolerance": WIDTH_TOLERANCE}

_width_component = st.components.v2.component("svetlana_column_width", js=_WIDTH_JS,
                                              isolate_styles=False)


def measure(key: str) -> None:
    """Draw the (empty) component that reports the width of the column it is in.

    Drawn after the canvas (AppTest finds components in order, and the tests read the
    canvas as the first); the width it reports is read by :func:`measured_width` in the
    next run, which its report triggers.
    """
    _width_component(key=f"{key}_width", default={"width": None},
                     on_width_change=lambda: None, width="stretch", height="content")
    measured_width(key)


def measured_width(key: str) -> int | None:
    """The width in CSS pixels that :func:`measure` reported, or None before it has.

    Kept under ``<key>_width_kept`` as well: Streamlit forgets a component's value in a run
    that does not draw it (the guided mode), and the next canvas would open at the default.
    """
    state = st.session_state.get(f"{key}_width")
    try:
        width = state.get("width") if hasattr(state, "get") else getattr(state, "width", None)
    except Exception:  # noqa: BLE001 - an unexpected shape means "not measured"
        width = None
    kept = f"{key}_width_kept"
    if isinstance(width, (int, float)) and width > 0:
        st.session_state[kept] = int(width)
    return st.session_state.get(kept)


# ---------------------------------------------------------------------------- the view state


def current(session: MutableMapping, key: str, shape: tuple[int, int]) -> tuple[int, tuple]:
    """``(zoom, (row, column))`` of the view the controls ``key`` hold (the image centre at
    zoom 1 or before any move)."""
    zoom = int(session.get(f"{key}_zoom", 1) or 1)
    centre = (float(session.get(f"{key}_crow", shape[0] // 2)),
              float(session.get(f"{key}_ccol", shape[1] // 2)))
    return zoom, centre


def set_view(session: MutableMapping, key: str, shape: tuple[int, int], zooms: list[int],
             zoom: float, centre: tuple[float, float] | None = None) -> None:
    """Write a view into the controls' state: ``zoom`` rounded down to one offered, the
    centre clipped into the image (and forgotten at zoom 1, where there is no pan)."""
    allowed = [z for z in zooms if z <= zoom] or [zooms[0]]
    session[f"{key}_zoom"] = allowed[-1]
    if allowed[-1] == 1:
        session.pop(f"{key}_crow", None)
        session.pop(f"{key}_ccol", None)
        return
    if centre is None:
        centre = current(session, key, shape)[1]
    session[f"{key}_crow"] = int(np.clip(round(centre[0]), 0, shape[0] - 1))
    session[f"{key}_ccol"] = int(np.clip(round(centre[1]), 0, shape[1] - 1))


def zoom_step(session: MutableMapping, key: str, shape: tuple[int, int], zooms: list[int],
              direction: int, centre: tuple[float, float] | None = None) -> None:
    """Zoom in (``direction`` 1) or out (-1) by one offered factor, about ``centre`` (the
    current centre by default)."""
    zoom, here = current(session, key, shape)
    index = zooms.index(zoom) if zoom in zooms else 0
    target = zooms[int(np.clip(index + direction, 0, len(zooms) - 1))]
    set_view(session, key, shape, zooms, target, here if centre is None else centre)


def pan(session: MutableMapping, key: str, shape: tuple[int, int], zooms: list[int],
        rows: float, columns: float) -> None:
    """Move the view by ``rows``, ``columns`` window sizes (0.5: half a window)."""
    zoom, (row, column) = current(session, key, shape)
    if zoom == 1:
        return
    set_view(session, key, shape, zooms, zoom,
             (row + rows * shape[0] / zoom, column + columns * shape[1] / zoom))


def box_view(box: tuple[float, float, float, float], shape: tuple[int, int],
             zooms: list[int]) -> tuple[int, tuple[float, float]]:
    """The view that shows the box (row0, column0, row1, column1) whole, as closely as the
    offered zooms allow: the largest zoom whose window holds it, centred on it.

    >>> box_view((100, 100, 300, 200), (1000, 1000), [1, 2, 4, 8])
    (4, (200.0, 150.0))
    """
    r0, r1 = sorted(box[0::2])
    c0, c1 = sorted(box[1::2])
    fits = [z for z in zooms if shape[0] / z >= r1 - r0 and shape[1] / z >= c1 - c0]
    return (fits[-1] if fits else zooms[0]), ((r0 + r1) / 2, (c0 + c1) / 2)


# ---------------------------------------------------------------------------- the canvas


def double_click(drawing: list[dict], seen: list[str], shape_id) -> dict | None:
    """The point of a double-click among the shapes a canvas sent, or None.

    streamlit-drawable-canvas reports no double-click event: in point mode each click adds
    a circle, and the two clicks of a double-click arrive in one message (the canvas waits
    200 ms after a mouse-up before it sends). Two new circles last in the drawing, closer
    than :data:`DOUBLE_CLICK_PX`, are taken for one. A double-click slower than that wait
    arrives as two single clicks (two labels): use the Zoom tool then.

    Parameters
    ----------
    drawing : list of dict
        The canvas's objects, oldest first.
    seen : list of str
        Ids (``shape_id``) of the shapes handled already.
    shape_id : callable
        dict → str, how shapes are compared (:func:`ui.annotate._shape_id`).
    """
    fresh = Counter(shape_id(s) for s in drawing) - Counter(seen)
    if sum(fresh.values()) < 2 or len(drawing) < 2:
        return None
    a, b = drawing[-2], drawing[-1]
    if not all(str(s.get("type", "")).lower() == "circle" for s in (a, b)):
        return None
    if np.hypot(float(a.get("left", 0)) - float(b.get("left", 0)),
                float(a.get("top", 0)) - float(b.get("top", 0))) > DOUBLE_CLICK_PX:
        return None
    return b


def canvas_changed(canvas_key: str, key: str, shape: tuple[int, int], zooms: list[int],
                   viewport: Viewport, zoom_tool: bool) -> None:
    """The canvas's ``on_change``: a double-click (any tool) or a click with the Zoom tool
    zooms in one step about the clicked pixel.

    Runs before the script: the view it sets is the one the run draws, on a canvas of a new
    key, so the points of the old canvas are never read as labels (with the Zoom tool the
    page also stores no marks: at full zoom the view may not change).
    """
    from ui.annotate import _shape_id  # the one definition of "the same shape"

    sent = st.session_state.get(canvas_key) or {}
    drawing = ((sent.get("drawing") or {}).get("raw") or {}).get("objects") or []
    seen = st.session_state.get("canvas_seen", {}).get(canvas_key, [])
    if zoom_tool:
        fresh = Counter(_shape_id(s) for s in drawing) - Counter(seen)
        point = drawing[-1] if drawing and sum(fresh.values()) else None
    else:
        point = double_click(drawing, seen, _shape_id)
    if point is None:
        return
    shapes = canvas.parse_drawing({"objects": [point]}, sent.get("backgroundFit"), viewport)
    if len(shapes.points):
        row, column = shapes.points[0]
        zoom_step(st.session_state, key, shape, zooms, 1, (row, column))


# ---------------------------------------------------------------------------- the controls


def buttons(key: str, shape: tuple[int, int], zooms: list[int]) -> None:
    """Zoom in / out, whole image and pan buttons, each with its keyboard shortcut."""
    zoom, _ = current(st.session_state, key, shape)
    args = (st.session_state, key, shape, zooms)
    row = st.container(horizontal=True, gap="small")
    row.button("In", icon=":material/zoom_in:", key=f"{key}_nav_in",
               shortcut=SHORTCUTS["in"], on_click=zoom_step, args=args + (1,),
               disabled=zoom >= zooms[-1])
    row.button("Out", icon=":material/zoom_out:", key=f"{key}_nav_out",
               shortcut=SHORTCUTS["out"], on_click=zoom_step, args=args + (-1,),
               disabled=zoom == 1)
    row.button("Whole", icon=":material/fit_screen:", key=f"{key}_nav_whole",
               shortcut=SHORTCUTS["whole"], on_click=set_view, args=args + (1,),
               disabled=zoom == 1, help="Show the whole image")
    for name, arrow, step in (("left", "←", (0, -0.5)), ("up", "↑", (-0.5, 0)),
                              ("down", "↓", (0.5, 0)), ("right", "→", (0, 0.5))):
        row.button(arrow, key=f"{key}_nav_{name}",
                   shortcut=SHORTCUTS[name], on_click=pan, args=args + step,
                   disabled=zoom == 1, help=f"Pan {name} by half a view")


def overview_figure(jpeg: bytes, shape: tuple[int, int], viewport: Viewport, height: int = 220):
    """A plotly figure of the whole image (``jpeg``, any size) in image coordinates, the
    current view drawn as a rectangle, and a grid of invisible points that report clicks
    and boxes (x = column, y = row)."""
    import plotly.graph_objects as go

    rows, columns = shape
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    n = OVERVIEW_GRID
    ys, xs = np.mgrid[0:n, 0:n]
    fig = go.Figure()
    fig.add_layout_image(source=source, xref="x", yref="y", x=0, y=0, sizex=columns,
                         sizey=rows, sizing="stretch", layer="below")
    fig.add_trace(go.Scatter(
        x=((xs.ravel() + 0.5) * columns / n), y=((ys.ravel() + 0.5) * rows / n),
        mode="markers", hoverinfo="none", showlegend=False,
        marker={"size": max(4, height // n + 2), "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}}))
    v = viewport
    fig.add_shape(type="rect", x0=v.column, x1=v.column + v.width, y0=v.row, y1=v.row + v.height,
                  line={"color": "#ff4b4b", "width": 2})
    # constrain="domain": the plot area is the image (the range stays the image's extent)
    fig.update_xaxes(range=[0, columns], visible=False, fixedrange=True, constrain="domain")
    fig.update_yaxes(range=[rows, 0], visible=False, fixedrange=True, scaleanchor="x",
                     constrain="domain")
    # event+select: a click selects the point under it (plotly's default, "event", only
    # reports it to listeners, and Streamlit listens to selections)
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      dragmode="select", clickmode="event+select",
                      plot_bgcolor="rgba(0,0,0,0)")
    return fig


def _overview_selected(chart_key: str, key: str, shape: tuple[int, int],
                       zooms: list[int]) -> None:
    """The overview's ``on_select``: a box shows that box, a click centres the view there
    (zoomed in one step from the whole image). A fresh chart key afterwards, so the next
    click is a new selection even on the same point."""
    event = st.session_state.get(chart_key) or {}
    selection = (event.get("selection") if isinstance(event, dict)
                 else getattr(event, "selection", None)) or {}
    boxes = selection.get("box") or []
    points = selection.get("points") or []
    session = st.session_state
    if boxes and boxes[0].get("x") and boxes[0].get("y"):
        x, y = boxes[0]["x"], boxes[0]["y"]
        zoom, centre = box_view((y[0], x[0], y[1], x[1]), shape, zooms)
        set_view(session, key, shape, zooms, zoom, centre)
    elif points:
        zoom = max(current(session, key, shape)[0], zooms[min(1, len(zooms) - 1)])
        set_view(session, key, shape, zooms, zoom, (points[0]["y"], points[0]["x"]))
    else:
        return
    session[f"{key}_overview_n"] = session.get(f"{key}_overview_n", 0) + 1


def overview(jpeg: bytes, key: str, shape: tuple[int, int], zooms: list[int],
             viewport: Viewport, height: int = 220) -> None:
    """Draw the overview; a click or a box on it moves the view (:func:`_overview_selected`)."""
    chart_key = f"{key}_overview_{st.session_state.get(f'{key}_overview_n', 0)}"
    st.plotly_chart(overview_figure(jpeg, shape, viewport, height), key=chart_key,
                    on_select=lambda: _overview_selected(chart_key, key, shape, zooms),
                    selection_mode=("points", "box"), config={"displayModeBar": False})
    view_caption(key, shape, viewport, overview=True)


def view_caption(key: str, shape: tuple[int, int], viewport: Viewport,
                 overview: bool = False) -> None:
    """Where the view is, and how to move it."""
    v = viewport
    st.caption(f"View: rows {v.row}–{v.row + v.height}, columns {v.column}–{v.column + v.width}"
               f" (zoom ×{current(st.session_state, key, shape)[0]}). "
               + ("Drag a box on the overview to jump there; " if overview else "")
               + "keys I / O zoom, W whole image, arrows pan; double-click the image (or the "
               "Zoom tool) to zoom there.")
