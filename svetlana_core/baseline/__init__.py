"""Random-forest baseline on hand-crafted object features (the ilastik-style reference).

The Svetlana paper compares its CNNs with ilastik's object classification: a random forest on
per-object shape and intensity statistics. This module is that reference, in 2D and 3D, with
the same train / predict / evaluate / save surface as the CNN so the app and the CLI can score
both on the same split (:func:`svetlana_core.metrics.classification_metrics` for both).

No torch here: the baseline imports and runs without it.

Features (:func:`object_features`, one row per label, float64, pixel / voxel units, never
absolute position or orientation):

============================  =====  =======================================================
column                        dims   meaning
============================  =====  =======================================================
``area``                      2D 3D  pixel / voxel count
``perimeter``                 2D     scikit-image ``perimeter`` (4-connected contour length)
``circularity``               2D     4 pi area / perimeter^2 (about 1 for a disk)
``eccentricity``              2D     of the ellipse with the same second moments (0 = disk)
``solidity``                  2D 3D  area / convex-hull area, as scikit-image counts it
``extent``                    2D 3D  area / bounding-box area
``axis_major_length``         2D 3D  from the inertia tensor, as scikit-image
``axis_intermediate_length``  3D     the middle axis, same formula
``axis_minor_length``         2D 3D
``axis_ratio``                2D 3D  minor / major (1 = round, towards 0 = elongated)
``axis_ratio_intermediate``   3D     intermediate / major (low with ``axis_ratio`` = rod)
``equivalent_diameter_area``  2D 3D  diameter of the disk / ball of the same area
``euler_number``              2D 3D  objects minus holes (3D: plus cavities minus tunnels)
``surface_area``              3D     count of voxel faces between the object and anything else
``sphericity``                3D     pi^(1/3) (6 volume)^(2/3) / ``surface_area``
``ch{c}_mean``, ``_std``,     image  statistics of channel ``c`` inside the object
``_min``, ``_max``, ``_sum``,        (``std`` is the population std, ``p50`` the median,
``_p10``, ``_p50``, ``_p90``         percentiles interpolate linearly as ``np.percentile``)
``ch{c}_ring_mean``           image  mean of channel ``c`` on the background within
                                     ``ring_width`` pixels of the object
``ch{c}_contrast``            image  ``ch{c}_mean - ch{c}_ring_mean``
============================  =====  =======================================================

A value that is undefined for an object is NaN (the circularity of a one-pixel object, the ring
of an object with no background around it); the forest handles NaN (scikit-learn >= 1.4).

Saving. A fitted forest is stored as ``model.json`` (classes, feature names, parameters,
metrics, versions, the SHA-256 of the arrays) and ``forest.npz`` (the node arrays of every tree,
concatenated). It is predicted by :class:`Forest`, a small numpy traversal written here, so that
nothing is ever unpickled: a pickled or joblib'd estimator runs arbitrary code when loaded, and
model folders are shared between users of the app. ``forest.npz`` is read with
``allow_pickle=False`` and every array is checked before use.
"""

from svetlana_core.baseline.forest import FOREST_FILE, Forest
from svetlana_core.baseline.model import BaselineModel, FORMAT_VERSION, MODEL_FILE, load_baseline, train_baseline
from svetlana_core.baseline.run import BaselineRun, train_from_labels

__all__ = [
    'BaselineModel',
    'BaselineRun',
    'FOREST_FILE',
    'FORMAT_VERSION',
    'Forest',
    'MODEL_FILE',
    'load_baseline',
    'train_baseline',
    'train_from_labels',
]
