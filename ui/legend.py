"""Legends of the coloured views: which class each fill colour is, what the yellow contours
are, and the colour bar of the confidence view.

The ``*_html`` functions are pure (no Streamlit call) and return one HTML block of small
swatches, so their content is tested directly; :func:`class_legend` and
:func:`confidence_bar` draw them. Class names are escaped: a project's class may hold quotes,
``<`` or ``$`` (which Streamlit's markdown would read as the start of a formula).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from ui.overlay import CONTOUR_COLOUR

#: What the contours without a fill are, on every view that fills classes.
UNLABELLED = "no class (contour)"

_BLOCK = ("display:flex;flex-wrap:wrap;align-items:center;gap:0.2rem 1rem;"
          "font-size:0.875rem;margin:0.25rem 0 0.5rem 0")
_ITEM = "display:inline-flex;align-items:center;gap:0.35rem"
_BOX = ("display:inline-block;width:0.9rem;height:0.9rem;border-radius:2px;"
        "box-sizing:border-box;flex:none")


def _text(value: object) -> str:
    return html.escape(str(value)).replace("$", "&#36;")


def swatch_html(name: str, colour: str, count: int | None = None,
                outline: bool = False) -> str:
    """One legend entry: a square of ``colour`` (a filled one, or only its outline) and the
    name, with the count in brackets when given.

    Examples
    --------
    >>> swatch_html("live", "#009e73", 3)  # doctest: +ELLIPSIS
    '<span class="svetlana-swatch" ...background:#009e73;...live (3)</span>'
    """
    fill = (f"background:transparent;border:2px solid {_text(colour)}" if outline else
            f"background:{_text(colour)};border:1px solid rgba(128,128,128,0.6)")
    label = _text(name) + ("" if count is None else f" ({int(count)})")
    return (f'<span class="svetlana-swatch" style="{_ITEM}">'
            f'<span style="{_BOX};{fill}"></span>{label}</span>')


def class_legend_html(classes: pd.DataFrame, counts: Mapping[str, int] | None = None,
                      extra: Mapping[str, str] | None = None,
                      contour: str | None = CONTOUR_COLOUR) -> str:
    """The legend of a class overlay as one HTML block.

    Parameters
    ----------
    classes : pandas.DataFrame
        ``Project.classes()`` (columns ``name``, ``colour``), in display order.
    counts : mapping class name -> int, optional
        Objects of each class in the view; classes shown with their count (0 when absent).
    extra : mapping name -> colour, optional
        More filled entries after the classes (e.g. ``{"class no longer in the project":
        "#888888"}``).
    contour : str or None
        Colour of the contours of objects without a class, listed last as an outline; None
        leaves the entry out.

    Returns
    -------
    str
        ``<div class="svetlana-legend">`` holding one swatch per entry.
    """
    entries = [swatch_html(name, colour, None if counts is None else counts.get(name, 0))
               for name, colour in zip(classes["name"], classes["colour"])]
    entries += [swatch_html(name, colour) for name, colour in (extra or {}).items()]
    if contour:
        entries.append(swatch_html(UNLABELLED, contour, outline=True))
    return f'<div class="svetlana-legend" style="{_BLOCK}">{"".join(entries)}</div>'


def colour_bar_html(colours: Sequence[str], low: str, high: str, title: str) -> str:
    """A horizontal colour bar: ``title``, ``low``, a gradient through ``colours``, ``high``.

    Examples
    --------
    >>> colour_bar_html(["#ff0000", "#00ff00"], "0", "1", "confidence")  # doctest: +ELLIPSIS
    '<div class="svetlana-colour-bar" ...linear-gradient(to right, #ff0000 0%, #00ff00 100%)...'
    """
    last = max(len(colours) - 1, 1)
    stops = ", ".join(f"{_text(c)} {100 * k / last:g}%" for k, c in enumerate(colours))
    bar = (f'<span style="display:inline-block;width:12rem;height:0.8rem;border-radius:2px;'
           f'background:linear-gradient(to right, {stops})"></span>')
    return (f'<div class="svetlana-colour-bar" style="{_BLOCK}">'
            f'<span>{_text(title)}</span><span>{_text(low)}</span>{bar}'
            f'<span>{_text(high)}</span></div>')


def class_legend(classes: pd.DataFrame, counts: Mapping[str, int] | None = None,
                 extra: Mapping[str, str] | None = None,
                 contour: str | None = CONTOUR_COLOUR) -> None:
    """Draw :func:`class_legend_html` (under a class overlay)."""
    st.markdown(class_legend_html(classes, counts, extra, contour), unsafe_allow_html=True)


def confidence_bar(colours: Sequence[str], title: str = "confidence") -> None:
    """Draw the colour bar of a confidence view, from 0 to 1 through ``colours``."""
    st.markdown(colour_bar_html(colours, "0", "1", title), unsafe_allow_html=True)
