"""Predict the class of every object of an image, or of a whole folder or plate of images.

:func:`predict_image` classifies all the objects of one image with a trained model (a
:class:`~svetlana_core.models.LoadedModel`) and returns a :class:`Prediction`: a class map (the
mask with each object painted with its class index + 1), a per-object table with the class, its
probabilities and uncertainty measures, and a confidence map.
:func:`predict_many` does that for many image/mask files, locally or on a Dask cluster, writes
one set of outputs per image and the combined tables, and resumes where a previous run stopped.

How it stays fast and bounded in memory
---------------------------------------
* Patches are cut ``chunk_objects`` objects at a time, so at most one chunk of patches (plus
  one batch) is held, whatever the number of objects: 10,000 patches of 64 × 64 would take
  328 MB, a chunk of 2048 takes 67 MB. The percentiles are estimated once per image and applied
  to the patches, not to a float32 copy of the whole image (see :class:`_Cropper`).
* The network sees batches of exactly ``batch_size`` patches in object order, whatever
  ``chunk_objects`` is, so chunked and unchunked runs give bit-identical probabilities.
* The class map is one look-up-table gather over the mask (``lut[mask]``), or a
  ``searchsorted`` when the labels are so large that a table would outgrow the mask. The
  confidence map is built the same way, only when it is first asked for.
* On a GPU the batches go through pinned memory with non-blocking copies, and the
  probabilities come back once per chunk.

Outputs of :func:`predict_many` (``out_dir``)
---------------------------------------------
``class_maps/<stem>.tif``
    uint8 (uint16 past 254 classes) class map, zlib TIFF, 0 = background, k = class index + 1;
    the TIFF description holds ``{"classes": [...], "background": 0, ...}``.
``confidence/<stem>.tif``
    float32 map of each object's top probability, 0 on background.
``objects/<stem>.csv``
    The per-object table of the image (columns below, with ``image`` and ``well`` first).
``done/<stem>.json``
    Written last: the model fingerprint and the input files' size and modification time. An
    image whose marker matches the model and inputs, and whose three outputs exist, is skipped.
``objects.csv``, ``objects.parquet``
    All objects of all images: ``image, well, label, class, confidence, p_<class>…, margin,
    entropy, centroid_…, bbox_…, area``.
``counts_per_image.csv``, ``counts_per_well.csv``, ``results.xlsx``
    Counts and fractions per image and per well (:mod:`svetlana_core.stats`; the plate layout is
    the smallest that holds the wells read from the file names), and a workbook with the tables.
"""

from svetlana_core.lazy import attach

_EXPORTS = {
    'CHUNK_BYTES': 'svetlana_core.predict.image',
    'COMBINED_FILES': 'svetlana_core.predict.outputs',
    'CPU_BATCH_SIZE': 'svetlana_core.predict.backends',
    'GPU_BATCH_SIZE': 'svetlana_core.predict.backends',
    'ONNX_BATCH_SIZE': 'svetlana_core.predict.backends',
    'ManyResult': 'svetlana_core.predict.many',
    'Prediction': 'svetlana_core.predict.image',
    'XLSX_MAX_OBJECTS': 'svetlana_core.predict.outputs',
    'class_map_dtype': 'svetlana_core.predict.image',
    'evaluate_folder': 'svetlana_core.predict.evaluate',
    'model_fingerprint': 'svetlana_core.predict.resume',
    'object_patches': 'svetlana_core.predict.crop',
    'predict_image': 'svetlana_core.predict.image',
    'predict_many': 'svetlana_core.predict.many',
    'predict_patches': 'svetlana_core.predict.backends',
    'prediction_columns': 'svetlana_core.predict.image',
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
