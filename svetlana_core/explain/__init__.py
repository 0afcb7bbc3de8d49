"""Why did the network give an object its class? Grad-CAM heat maps on the object's patch.

Grad-CAM (Selvaraju et al., 2017) weighs the feature maps of the last convolutional stage by the
mean gradient of the target class's logit over each map, sums them and keeps the positive part:
the regions of the patch that raise that class. Guided Grad-CAM multiplies the map (upsampled)
by guided back-propagation, the gradient at the input with negative signals blocked at every
ReLU, for a sharper, per-channel picture.

The arithmetic is captum's (``LayerGradCam``, ``GuidedGradCam``; captum 0.9 works with torch
2.14); this module picks the layer for every architecture of :mod:`svetlana_core.models`, cuts
the patch exactly as :mod:`svetlana_core.predict` does, brings the map back to patch resolution
(bilinear, trilinear in 3D) and scales it to [0, 1], and draws it over the image.
"""

from svetlana_core.lazy import attach

_EXPORTS = {
    'Explanation': 'svetlana_core.explain.cam',
    'MIN_CAM_SIDE': 'svetlana_core.explain.cam',
    'explain_object': 'svetlana_core.explain.cam',
    'gradcam': 'svetlana_core.explain.cam',
    'heatmap_rgb': 'svetlana_core.explain.heatmap',
    'patch_rgb': 'svetlana_core.explain.heatmap',
    'save_heatmap_png': 'svetlana_core.explain.heatmap',
    'target_layer': 'svetlana_core.explain.cam',
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
