"""Train a small CNN on patches cropped around labelled objects.

numpy at the edges, torch inside. The pieces, in the order a run uses them:

* :class:`TrainConfig` — every knob of a run, a frozen dataclass with a JSON round trip
  (importable without torch or albumentations);
* :func:`build_samples` / :func:`dataset_from_files` / :func:`dataset_from_folders` — one
  in-memory :class:`ObjectSet` of float32 patches ``X``, class indices ``y`` and a group per
  object (its image, or a user key such as the source slide) for the split; a project gives
  ``dataset_from_files`` its ``training_set()``;
* :func:`split_train_val` — stratified *and* grouped: no image in both sets;
  :func:`preview_split` says what it will hold before a run (the Train page's warning);
* :func:`train_one_epoch` and :func:`evaluate` — the loop, kept apart (torchvision references);
* :func:`train` — the whole run: reports each epoch through ``on_epoch``, never prints, honours
  a ``stop`` event and ``max_minutes``, keeps the best weights by validation macro-F1 and
  always leaves a model folder (:mod:`svetlana_core.models`: ``model.json`` +
  ``weights.safetensors``, nothing pickled) that ``predict``, ``explain`` and the app read.

Why the data stay in memory
---------------------------
A labelled set is thousands of objects, not millions: the 6,361 CoNSeP nuclei at their auto
patch size, 72 × 72 with four channels, are 528 MB of float32, cropped in 3 s. Cropping once
(one vectorised :func:`patches.extract` per image, normalised once per image) and gathering
each batch by fancy indexing removes the data loader from the profile: on the 2-core CPU the
time outside forward/backward/step is 2.5-4 % of a training pass (bench/train.py prints it).

Why augmentation is done here on whole batches
----------------------------------------------
The default spec is flips + rot90 (the 8 symmetries of the square). Per-patch albumentations
would cost tens of microseconds a patch in a Python loop; as whole-batch torch operations
(random per-sample flips with ``torch.where``, a random transpose of rows and columns, which
with the two flips draws uniformly from the 8 symmetries) they cost nothing measurable.
The 8 symmetries have one implementation for numpy patches and torch batches
(:mod:`svetlana_core.patches.symmetry`); albumentations (:mod:`svetlana_core.patches.augment`)
is imported and run only when the spec lists extra transforms.
"""

from svetlana_core.lazy import attach

_EXPORTS = {
    'BatchAugment': 'svetlana_core.training.augment',
    'CLASS_WEIGHTS': 'svetlana_core.training.config',
    'LOSSES': 'svetlana_core.training.config',
    'Limits': 'svetlana_core.training.loop',
    'MIN_STEPS_PER_EPOCH': 'svetlana_core.training.loop',
    'NORMALISATIONS': 'svetlana_core.training.config',
    'OPTIMISERS': 'svetlana_core.training.config',
    'ObjectSet': 'svetlana_core.training.dataset',
    'PATCH_MODES': 'svetlana_core.training.config',
    'Run': 'svetlana_core.training.run',
    'SCHEDULES': 'svetlana_core.training.config',
    'TrainConfig': 'svetlana_core.training.config',
    'auto_depth': 'svetlana_core.training.config',
    'build_loss': 'svetlana_core.training.optim',
    'build_optimiser': 'svetlana_core.training.optim',
    'build_samples': 'svetlana_core.training.dataset',
    'build_scheduler': 'svetlana_core.training.optim',
    'check_augment': 'svetlana_core.training.config',
    'class_weights': 'svetlana_core.training.optim',
    'collect_timings': 'svetlana_core.training.loop',
    'config_for_parent': 'svetlana_core.training.config',
    'dataset_from_files': 'svetlana_core.training.dataset',
    'dataset_from_folders': 'svetlana_core.training.dataset',
    'dataset_from_training_set': 'svetlana_core.training.dataset',
    'evaluate': 'svetlana_core.training.loop',
    'set_seed': 'svetlana_core.training.run',
    'split_train_val': 'svetlana_core.training.split',
    'preview_split': 'svetlana_core.training.split',
    'SplitPreview': 'svetlana_core.training.split',
    'FEW_VALIDATION_OBJECTS': 'svetlana_core.training.split',
    'train': 'svetlana_core.training.run',
    'train_one_epoch': 'svetlana_core.training.loop',
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
