"""Patches cropped around the objects of a label mask, ready for a network.

Every patch is centred on an object's rounded centroid and stacks the image channels with one more
channel: the object's own binary mask (1 where ``mask == label``). Two modes, as in the Svetlana
napari plugin: ``"context"`` keeps the surroundings, ``"masked"`` multiplies the image channels by
the object's mask dilated by a few pixels. Patches that reach past the image border are padded
with zeros (not reflected, which would invent neighbours).

All objects are cropped in one gather (a sliding-window view of the image indexed by the
patch corners), with no Python loop over objects. The result is ``N × (C + 1) × H × W``
float32 (``N × (C + 1) × D × H × W`` in 3D): 10,000 patches of 64 × 64 with one image channel
take 328 MB, so callers that predict many objects pass chunks of ``labels`` to bound memory.
Percentile normalisation is deterministic, so chunks give exactly the patches one call would; to
skip recomputing the percentiles for each chunk, call :func:`normalise` once and pass the result
with ``normalisation="none"``.

Augmentation (albumentations, which imports torch) is :mod:`svetlana_core.patches.augment`;
import it by name: it is not loaded with the package.
"""

from svetlana_core.patches.size import AUTO_MAX, auto_patch_size
from svetlana_core.patches.normalise import IMAGE_NORMALISATIONS, NORMALISATIONS, normalise, percentile_range
from svetlana_core.patches.extract import MODES, dilate_masks, extract
from svetlana_core.patches.symmetry import DEFAULT_AUGMENT, apply_symmetries, compose_turns, parse_switches

__all__ = [
    'DEFAULT_AUGMENT',
    'AUTO_MAX',
    'IMAGE_NORMALISATIONS',
    'MODES',
    'NORMALISATIONS',
    'apply_symmetries',
    'auto_patch_size',
    'compose_turns',
    'dilate_masks',
    'extract',
    'normalise',
    'parse_switches',
    'percentile_range',
]
