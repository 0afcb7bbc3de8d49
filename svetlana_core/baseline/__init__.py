"""Random-forest baseline on hand-crafted object features (the ilastik-style reference).

The Svetlana paper compares its CNNs with ilastik's object classification: a random forest on
per-object shape and intensity statistics. This package is that reference, in 2D and 3D, with
the same train / predict / evaluate / save surface as the CNN so the app and the CLI can score
both on the same split (:func:`svetlana_core.stats.classification_metrics` for both).

No torch here: the baseline imports and runs without it.

The features are :func:`svetlana_core.objects.object_features` (shape and intensity statistics
per object, described in :mod:`svetlana_core.objects.features`); a value undefined for an object
is NaN, which the forest handles (scikit-learn >= 1.4).

Saving. A fitted forest is stored as ``model.json`` (classes, feature names, parameters,
metrics, versions, the SHA-256 of the arrays) and ``forest.npz`` (the node arrays of every tree,
concatenated). It is predicted by :class:`Forest`, a small numpy traversal written here, so that
nothing is ever unpickled: a pickled or joblib'd estimator runs arbitrary code when loaded, and
model folders are shared between users of the app. Both files are written atomically
(:func:`svetlana_core.io.atomic_write`) and ``model.json`` is strict JSON (a NaN metric is
``null``). ``forest.npz`` is read with ``allow_pickle=False`` and every array is checked before
use.
"""

from svetlana_core.baseline.forest import FOREST_FILE, Forest
from svetlana_core.baseline.model import BaselineModel, load_baseline, train_baseline
from svetlana_core.baseline.run import BaselineRun, train_from_labels

__all__ = [
    'BaselineModel',
    'BaselineRun',
    'FOREST_FILE',
    'Forest',
    'load_baseline',
    'train_baseline',
    'train_from_labels',
]
