"""Counts and fractions of classes per image, per well and per plate; agreement; exports.

The input is the tidy per-object table of a prediction (or of the annotations), one row per
object keyed by ``(image, label)``::

    image     label  class   confidence  well
    A01_1.png     3  alive         0.97  A01
    A01_1.png     7  dead          0.88  A01

Counting is a ``groupby`` on that table, so the order of its rows never matters. Plates are
described by their number of wells (:data:`svetlana_core.plate.PLATE_LAYOUTS`); wells are named and
read by :mod:`svetlana_core.plate` ("A01", "P24", "AF48"; "a1" and "B007" are read too), and
addressed by a 0-based row index and a 1-based column number.

Per-well tables with a layout keep every well of the plate: a well with no image has NaN counts
(nothing was measured there), an imaged well where no object was found has zeros. Images without a
well are left out of the per-well table and listed in its ``attrs["images_without_well"]``, so the
app can say how many were left out instead of inventing a well for them.

This module needs only numpy and pandas at import; scikit-learn, scipy and openpyxl are imported by
the functions that use them.
"""

from svetlana_core.stats.agreement import agreement
from svetlana_core.stats.counts import counts_per_image, counts_per_plate, counts_per_well, plate_heatmap
from svetlana_core.stats.export import export_tables
from svetlana_core.stats.metrics import classification_metrics

__all__ = [
    'agreement',
    'classification_metrics',
    'counts_per_image',
    'counts_per_plate',
    'counts_per_well',
    'export_tables',
    'plate_heatmap',
]
