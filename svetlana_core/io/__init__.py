"""Read and write images and label masks, pair them by file name, read the labels CSV.

Canonical layout
----------------
Every image leaves this module channel-first, whatever the file held:

* 2D: ``(C, rows, columns)`` -- grey images have ``C = 1``, RGB has ``C = 3``;
* 3D: ``(C, planes, rows, columns)``.

The dtype of the file is kept (no conversion to float). An alpha channel (RGBA, grey + alpha)
is dropped. A mask is an integer array ``(rows, columns)`` or ``(planes, rows, columns)``,
0 is background, labels are never renumbered and need not be contiguous.

Axes
----
An axes string names the dimensions of the array as it is stored in the file, with the letters
``Y`` (rows), ``X`` (columns), ``Z`` (planes) and ``C`` (channels): ``"YX"``, ``"YXC"`` (RGB),
``"CYX"``, ``"ZYX"``, ``"ZCYX"`` and any other order of those letters (``"CZYX"``, ``"ZYXC"``).
The axes come, in this order, from the ``axes=`` argument, from the file's own metadata (OME-TIFF,
ImageJ hyperstacks, TIFFs written by tifffile with ``metadata={"axes": ...}``, RGB TIFF samples,
PNG / JPEG colour) or from :func:`guess_axes`. A time axis of length 1 is dropped; a time series
is refused (split it into one file per time point).

Pairing rules (:func:`pair_files`)
----------------------------------
Images are the files of ``images_dir`` (not its sub-folders, not hidden files) whose extension is
one of :data:`IMAGE_EXTENSIONS`, in any case. For an image ``<stem>.<ext>`` the mask is looked up in
``masks_dir`` (``images_dir`` when ``masks_dir`` is None) among the files with an extension in
:data:`MASK_EXTENSIONS` named

* ``<stem>.<ext>`` -- only when the masks are in a folder of their own;
* ``<stem>.npy``;
* ``<stem>_cp_masks.<ext>`` and ``<stem>_seg.npy`` (Cellpose; when both are there, the
  ``_cp_masks`` file is used: :data:`~svetlana_core.io.pairing.CELLPOSE_RULE`);
* ``<stem>_mask.<ext>``, ``<stem>_masks.<ext>``, ``<stem>_label.<ext>``, ``<stem>_labels.<ext>``.

The suffixes are matched in any case; the stem itself is matched exactly. When the masks sit in the
image folder, a file whose stem ends with one of those suffixes is a mask, never an image.
A napari-svetlana project folder (``Images/`` and ``Masks/``, no images of its own) is paired
as the plugin pairs it, by sorted file order; names that differ are logged. OME-Zarr images
(``*.zarr`` folders, HCS plates) take their first label image as the mask (or the one named by
``label_name``), else a mask file named after them (:mod:`svetlana_core.io.omezarr`).
Exactly one mask must match each image and each mask may serve one image only; otherwise
:class:`~svetlana_core.errors.InputError` says which files are missing or in conflict.
:func:`pair_folder` applies the same rules file by file: it keeps the pairs and sets each
image it cannot pair aside with one line (an upload batch is checked so).
:func:`folder_files` is the one resolver of folders for training, evaluation and jobs: the pairs
by image file name, or every mask of a folder for mask-only data.

Plate wells in file names are read by :func:`svetlana_core.plate.parse_well`.

Safety
------
Nothing here modifies a user's file. Every writer (:func:`write_tiff`, :func:`write_csv`,
:func:`atomic_write_bytes`) goes through :func:`atomic_write`, which writes a temporary file in the
target folder and renames it into place, so a reader never sees half a file. Pickled data is
read from Cellpose ``*_seg.npy`` files only, and then only numpy arrays and plain Python values
are let through (see :func:`read_mask`).
"""

from svetlana_core.io.axes import guess_axes, to_canonical
from svetlana_core.io.labels import read_labels_csv
from svetlana_core.io.omezarr import image_name, image_stem, is_zarr_path
from svetlana_core.io.pairing import CELLPOSE_RULE, Files, MASK_SUFFIXES, Pair, Pairing, Unpaired, folder_files, group_by_pattern, pair_files, pair_folder
from svetlana_core.io.read import IMAGE_EXTENSIONS, MASK_EXTENSIONS, load_pair, read_image, read_mask
from svetlana_core.io.write import atomic_write, atomic_write_bytes, csv_text, formula_safe, formula_unsafe, index_is_data, write_csv, write_tiff

__all__ = [
    'CELLPOSE_RULE',
    'Files',
    'IMAGE_EXTENSIONS',
    'MASK_EXTENSIONS',
    'MASK_SUFFIXES',
    'Pair',
    'Pairing',
    'Unpaired',
    'atomic_write',
    'atomic_write_bytes',
    'folder_files',
    'group_by_pattern',
    'guess_axes',
    'image_name',
    'image_stem',
    'is_zarr_path',
    'csv_text',
    'formula_safe',
    'formula_unsafe',
    'index_is_data',
    'load_pair',
    'pair_files',
    'pair_folder',
    'read_image',
    'read_labels_csv',
    'read_mask',
    'to_canonical',
    'write_csv',
    'write_tiff',
]
