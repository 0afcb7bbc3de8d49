"""Render images, mask contours and class colours into 8-bit previews for the browser.

Pure numpy (plus Pillow for JPEG encoding): no Streamlit import, so the rendering is tested
without a server. Pages cache the encoded bytes (``ui.loaders``); the browser only ever
receives a JPEG of the visible viewport at display resolution, never the full image.

Conventions: images are channel-first ``(C, rows, columns)`` (a 3D image is reduced to one
plane first), masks ``(rows, columns)``, previews ``(rows, columns, 3)`` uint8.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: Colours for channels shown as a composite (grey for one channel, RGB order otherwise).
CHANNEL_COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=np.float32
)

#: Colour of the contours of objects without a class colour. The default class palette
#: (:data:`svetlana_core.values.PALETTE`) keeps away from it, so a class never looks unlabelled.
CONTOUR_COLOUR = "#ffff00"


@dataclass(frozen=True)
class Viewport:
    """The part of an image that is shown, and how much it is shrunk or enlarged.

    Attributes
    ----------
    row, column : int
        Top-left pixel of the window in image coordinates.
    height, width : int
        Size of the window in image pixels.
    step : int or float
        Image pixels per displayed pixel: an integer stride when the window is shrunk (1 =
        full resolution), ``1 / k`` when it is enlarged ``k`` times (nearest neighbour).
        Display pixel ``d`` shows image pixel ``floor(row + d * step)`` either way, which is
        how :func:`ui.canvas.canvas_to_image` maps clicks back.
    """

    row: int
    column: int
    height: int
    width: int
    step: int | float = 1

    @property
    def enlarge(self) -> int:
        """Display pixels per image pixel along each axis (1 unless the window is enlarged)."""
        return int(round(1 / self.step)) if self.step < 1 else 1

    @property
    def display_shape(self) -> tuple[int, int]:
        """(rows, columns) of the preview sent to the browser."""
        if self.step < 1:
            return (self.height * self.enlarge, self.width * self.enlarge)
        return (-(-self.height // self.step), -(-self.width // self.step))


def fit_viewport(shape: tuple[int, int], max_side: int = 1024, zoom: float = 1.0,
                 centre: tuple[float, float] | None = None,
                 fill_side: int | None = None) -> Viewport:
    """Choose the window and stride that show an image of ``shape`` in at most ``max_side`` px.

    Parameters
    ----------
    shape : (rows, columns)
        Image size.
    max_side : int
        Largest side of the preview, in display pixels.
    zoom : float
        1 shows the whole image; 2 shows half of each side, and so on.
    centre : (row, column), optional
        Centre of the window when zoomed in; the image centre by default.
    fill_side : int, optional
        Enlarge a window whose larger side is at most half of this by the largest whole
        factor that keeps it within ``fill_side`` display pixels (nearest neighbour, so
        contours stay sharp). A whole factor keeps every image pixel a square block of display
        pixels, so a click maps back to exactly one image pixel.

    Examples
    --------
    >>> fit_viewport((2048, 2048), max_side=512)
    Viewport(row=0, column=0, height=2048, width=2048, step=4)
    >>> fit_viewport((256, 256), fill_side=720).display_shape
    (512, 512)
    """
    rows, columns = int(shape[0]), int(shape[1])
    zoom = max(float(zoom), 1.0)
    height = max(1, min(rows, int(round(rows / zoom))))
    width = max(1, min(columns, int(round(columns / zoom))))
    if centre is None:
        centre = (rows / 2, columns / 2)
    row = int(np.clip(round(centre[0] - height / 2), 0, rows - height))
    column = int(np.clip(round(centre[1] - width / 2), 0, columns - width))
    step = max(1, int(np.ceil(max(height, width) / max_side)))
    enlarge = (fill_side or 0) // max(height, width)
    if step == 1 and enlarge > 1:
        return Viewport(row, column, height, width, 1 / enlarge)
    return Viewport(row, column, height, width, step)


def crop(array: np.ndarray, viewport: Viewport) -> np.ndarray:
    """The viewport's window of the last two axes at display resolution.

    Subsampled by the step (a view), or, for an enlarged viewport, each pixel repeated into a
    square block (a new array): the mask is enlarged before its contours are found, so they
    are one display pixel wide and sharp.
    """
    v = viewport
    if v.step < 1:
        window = array[..., v.row:v.row + v.height, v.column:v.column + v.width]
        k = v.enlarge
        return np.repeat(np.repeat(window, k, axis=-2), k, axis=-1)
    step = int(v.step)
    return array[..., v.row:v.row + v.height:step, v.column:v.column + v.width:step]


def channel_limits(image: np.ndarray, low: float = 1.0, high: float = 99.8,
                   max_samples: int = 1_000_000, shared: bool = False) -> np.ndarray:
    """Per-channel display limits from percentiles of a strided subsample.

    Parameters
    ----------
    shared : bool
        One range for every channel, from the percentiles of all channels together: an RGB
        image keeps its colour balance (stretching each channel on its own tints H&E).

    Returns
    -------
    (C, 2) float32 array of (low, high) per channel.
    """
    flat = image.reshape(image.shape[0], -1)
    stride = max(1, flat.shape[1] // max_samples)
    sample = flat[:, ::stride].astype(np.float32)
    if shared:
        sample = sample.reshape(1, -1)
    limits = np.percentile(sample, [low, high], axis=1).T.astype(np.float32)
    limits = np.repeat(limits, image.shape[0] if shared else 1, axis=0)
    # a constant channel: an empty range would divide by zero. 1e-6 alone is lost in float32
    # above ~8 (a plain tile of 200 gave NaN pixels), so the margin grows with the value.
    margin = np.maximum(np.float32(1e-6), np.abs(limits[:, 0]) * np.float32(1e-5))
    limits[:, 1] = np.maximum(limits[:, 1], limits[:, 0] + margin)
    return limits


def composite(image: np.ndarray, limits: np.ndarray, channels: list[int] | None = None,
              rgb: bool = False) -> np.ndarray:
    """Turn a channel-first 2D image into an RGB preview.

    One channel is shown in grey; otherwise each selected channel gets a colour of
    :data:`CHANNEL_COLOURS` in the order selected and they are added. With ``rgb`` (a
    three-channel RGB image) channel 0, 1, 2 is always red, green, blue, even alone.

    Parameters
    ----------
    image : (C, rows, columns) array
    limits : (C, 2) array
        Display range per channel (see :func:`channel_limits`).
    channels : list of int, optional
        Channels to show (all by default, at most six).
    rgb : bool
        Colour each channel by its index (red, green, blue) instead of by its place in
        ``channels``.

    Returns
    -------
    (rows, columns, 3) uint8

    Examples
    --------
    >>> image = np.zeros((3, 1, 1)); image[1] = 1.0
    >>> limits = np.tile([0.0, 1.0], (3, 1))
    >>> grey, green = composite(image, limits, [1]), composite(image, limits, [1], rgb=True)
    >>> grey[0, 0].tolist(), green[0, 0].tolist()
    ([255, 255, 255], [0, 255, 0])
    """
    if channels is None:
        channels = list(range(min(image.shape[0], len(CHANNEL_COLOURS))))
    scaled = [(image[c].astype(np.float32) - limits[c, 0]) / (limits[c, 1] - limits[c, 0])
              for c in channels]
    if len(channels) == 1 and not rgb:
        grey = np.clip(scaled[0], 0, 1)
        out = np.repeat(grey[..., None], 3, axis=-1)
    else:
        out = np.zeros(image.shape[1:] + (3,), dtype=np.float32)
        for k, (channel, plane) in enumerate(zip(channels, scaled)):
            out += np.clip(plane, 0, 1)[..., None] * CHANNEL_COLOURS[channel if rgb else k]
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def boundaries(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` that touch a different label (inner object contours).

    Vectorised with shifted comparisons; much faster than skimage's find_boundaries on
    previews, and enough for drawing thin contours.
    """
    edge = np.zeros(mask.shape, dtype=bool)
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    return edge & (mask > 0)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """``"#1f77b4"`` → ``(31, 119, 180)``."""
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))


def class_colours(table, classes, missing: str | None = None) -> dict[int, str]:
    """label → colour of its class, for objects of a table with ``label`` and ``class``.

    Parameters
    ----------
    table : pandas.DataFrame
        Labels or predictions of one image (columns ``label``, ``class``).
    classes : pandas.DataFrame
        ``Project.classes()`` (columns ``name``, ``colour``).
    missing : str, optional
        Colour of objects whose class the project no longer has; default: leave them out
        (they get only a contour).

    Examples
    --------
    >>> import pandas as pd
    >>> classes = pd.DataFrame({"name": ["live"], "colour": ["#00ff00"]})
    >>> table = pd.DataFrame({"label": [3, 7], "class": ["live", "gone"]})
    >>> class_colours(table, classes), class_colours(table, classes, missing="#888888")
    ({3: '#00ff00'}, {3: '#00ff00', 7: '#888888'})
    """
    colour_of = dict(zip(classes["name"], classes["colour"]))
    pairs = zip(table["label"], table["class"])
    if missing is None:
        return {int(label): colour_of[name] for label, name in pairs if name in colour_of}
    return {int(label): colour_of.get(name, missing) for label, name in pairs}


def overlay(rgb: np.ndarray, mask: np.ndarray, label_colours: dict[int, str] | None = None,
            contour_colour: str = CONTOUR_COLOUR, alpha: float = 0.45,
            highlight: int | None = None) -> np.ndarray:
    """Draw object contours and fill labelled objects in their class colours.

    Parameters
    ----------
    rgb : (rows, columns, 3) uint8
        The preview to draw on (not modified).
    mask : (rows, columns) integer array
        Labels at the preview's resolution.
    label_colours : dict label → "#rrggbb", optional
        Objects to fill and the colour of each. Unlisted objects get only a contour.
    contour_colour : str
        Colour of the contours of unlabelled objects.
    alpha : float
        Opacity of the fill.
    highlight : int, optional
        A label drawn with a thick white contour (the object under review).

    Returns
    -------
    (rows, columns, 3) uint8, a new array.
    """
    out = rgb.astype(np.float32)
    edges = boundaries(mask)
    if label_colours:
        labels = np.fromiter(label_colours.keys(), dtype=np.int64, count=len(label_colours))
        colours = np.array([hex_to_rgb(c) for c in label_colours.values()], dtype=np.float32)
        # A look-up table over the labels present in the preview: one vectorised pass.
        present, inverse = np.unique(mask, return_inverse=True)
        index = np.full(present.shape, -1, dtype=np.int64)
        order = np.argsort(labels)
        pos = np.searchsorted(labels[order], present)
        pos = np.clip(pos, 0, len(labels) - 1)
        hit = labels[order][pos] == present
        index[hit] = order[pos[hit]]
        per_pixel = index[inverse.reshape(mask.shape)]
        filled = per_pixel >= 0
        out[filled] = (1 - alpha) * out[filled] + alpha * colours[per_pixel[filled]]
        out[edges & filled] = colours[per_pixel[edges & filled]]
        edges = edges & ~filled
    out[edges] = hex_to_rgb(contour_colour)
    if highlight is not None:
        from scipy import ndimage

        ring = ndimage.binary_dilation(mask == highlight, iterations=2) & (mask != highlight)
        out[ring] = 255.0
    return out.astype(np.uint8)


def encode_jpeg(rgb: np.ndarray, quality: int = 88) -> bytes:
    """Encode an RGB preview as JPEG bytes (what the canvas and st.image receive)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def fill_labels(base: np.ndarray, mask: np.ndarray, edges: np.ndarray,
                label_colours: dict[int, str] | None = None, contour_colour: str = CONTOUR_COLOUR,
                alpha: float = 0.45) -> np.ndarray:
    """:func:`overlay` without ``highlight``, from a cached base preview and its edges.

    A look-up table indexed by label (no ``np.unique`` over the pixels) and the blend done
    on the labelled pixels only: a few ms for a 1024 x 1024 preview.
    """
    if mask.size and int(mask.max()) > 10_000_000:
        # Sparse huge labels: a table indexed by label would be too big; take the slow path.
        return overlay(base, mask, label_colours, contour_colour, alpha)
    out = base.copy()
    unfilled_edges = edges
    if label_colours:
        labels = np.fromiter(label_colours.keys(), dtype=np.int64, count=len(label_colours))
        colours = np.array([hex_to_rgb(c) for c in label_colours.values()], dtype=np.float32)
        top = int(mask.max()) if mask.size else 0
        keep = (labels >= 0) & (labels <= top)
        lut = np.full(top + 1, -1, dtype=np.int32)
        lut[labels[keep]] = np.flatnonzero(keep)
        per_pixel = lut[mask]
        filled = per_pixel >= 0
        index = per_pixel[filled]
        blend = (1 - alpha) * base[filled].astype(np.float32) + alpha * colours[index]
        edge_here = edges[filled]
        blend[edge_here] = colours[index[edge_here]]
        out[filled] = blend.astype(np.uint8)
        unfilled_edges = edges & ~filled
    out[unfilled_edges] = hex_to_rgb(contour_colour)
    return out


def patch_tile(patch: np.ndarray, image_channels: int, min_side: int = 96) -> np.ndarray:
    """One training patch as the network sees it, as an RGB tile with the object outlined.

    Parameters
    ----------
    patch : (C + 1, rows, columns) or (C + 1, planes, rows, columns) float array
        Image channels (already normalised to about [0, 1]) then the object's mask channel,
        as :func:`svetlana_core.patches.extract` returns them; a 3D patch shows its middle
        plane.
    image_channels : int
        C; 0 for mask-only patches (the mask is shown in grey).
    min_side : int
        Tiles are enlarged by whole pixels (nearest neighbour) until a side reaches this.

    Returns
    -------
    (rows * k, columns * k, 3) uint8
    """
    if patch.ndim == 4:
        patch = patch[:, patch.shape[1] // 2]
    inside = patch[-1] > 0.5
    if image_channels:
        limits = np.tile(np.array([0.0, 1.0], np.float32), (image_channels, 1))
        rgb = composite(patch[:image_channels], limits)
    else:
        rgb = np.repeat((inside * 255).astype(np.uint8)[..., None], 3, axis=-1)
    rgb[boundaries(inside.astype(np.uint8))] = (255, 215, 0)  # the object's own contour
    k = max(1, -(-min_side // max(patch.shape[-2:])))
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
