"""The common training settings as widgets, turned into a ``TrainConfig`` dict, and the
validation split they will make, shown before the run.

The form covers what most users change, with ``TrainConfig()``'s defaults; the Train page's
JSON editor exposes every key of :class:`svetlana_core.training.TrainConfig` (albumentations
transforms included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from svetlana_core import io, jobs, models, patches, training
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from svetlana_core.training import TrainConfig, memory
from ui import loaders, overlay, state


#: The form opens on these: what ``train`` in the CLI uses when no option is given.
DEFAULTS = TrainConfig()
#: Fewer labelled objects than this in a class: the page names it and asks before training.
FEW_LABELS = 10
#: Choices of the split's groups on the form.
GROUPINGS = ("each image", "a part of the image name")


@dataclass
class Settings:
    """What the form describes: the config, the split's group pattern (None: by image), what
    the user must agree to before the run starts (empty: nothing), and why it cannot start."""

    config: dict
    group_pattern: str | None = None
    to_confirm: list[str] = field(default_factory=list)
    blocked: str | None = None  # why the run cannot start (it would not fit in memory)


def settings_form(project: Project) -> Settings:
    """Draw the settings widgets and return the config they describe, with the split's groups.

    Every default is :data:`DEFAULTS`'s (``TrainConfig()``), so the app trains what the CLI
    trains; the CNN depth stays automatic (:func:`svetlana_core.training.auto_depth`) unless
    the user moves its slider.
    """
    a, b, c = st.columns(3)
    arch = a.selectbox("Architecture", list(models.ARCHITECTURES), key="train_arch",
                       index=list(models.ARCHITECTURES).index(DEFAULTS.arch),
                       help="cnn: the small custom network of the paper (2D or 3D).")
    auto = a.toggle("Automatic patch size", DEFAULTS.patch_size is None, key="train_auto_patch",
                    help="From the object sizes (95th percentile × 1.5), robust to giant "
                         f"objects; at most {patches.AUTO_MAX[2]} pixels in 2D and "
                         f"{patches.AUTO_MAX[3]}³ in 3D (a memory and speed budget: bigger "
                         "objects are cropped to their middle; set a size to go beyond).")
    patch = None if auto else int(b.number_input("Patch size (pixels)", 8, 512, 64, 8,
                                                 key="train_patch"))
    modes = list(training.PATCH_MODES)
    mode = c.radio("Patch content", modes, index=modes.index(DEFAULTS.patch_mode),
                   horizontal=True, key="train_mode",
                   help="masked: the image outside the object (dilated) is set to zero.")
    preview = _patch_crops(project, patch, mode)
    params: dict = {}
    if arch == "cnn":
        params = _cnn_params(b, c, preview[1].shape[2:] if preview else patch)
    a, b, c, d = st.columns(4)
    epochs = a.number_input("Epochs", 1, 1000, DEFAULTS.epochs, key="train_epochs")
    lr = b.number_input("Learning rate", 1e-6, 1.0, DEFAULTS.lr, format="%.4f", key="train_lr")
    batch = c.select_slider("Batch size", [8, 16, 32, 64, 128, 256], DEFAULTS.batch_size,
                            key="train_batch")
    minutes = d.number_input("Time budget (minutes, 0 = none)", 0.0, 1440.0,
                             float(DEFAULTS.max_minutes or 0.0), key="train_minutes")
    a, b = st.columns(2)
    flips = a.toggle("Flips and 90° rotations", bool((DEFAULTS.augment or {}).get("flips")),
                     key="train_flips")
    weights = [DEFAULTS.class_weights] + [w for w in training.CLASS_WEIGHTS
                                          if w != DEFAULTS.class_weights]
    chosen_weights = b.selectbox(
        "Class weights", ["none" if w is None else w for w in weights], key="train_weights",
        help="Weigh rare classes up in the loss: 'balanced' fully, 'sqrt' halfway (the "
             "default), 'none' not at all.")
    channels = _channel_choice(preview[3] if preview else 0)
    if preview:
        _show_patches(*preview, patch, mode)
    val, pattern, to_confirm = _validation(project)
    blocked = _memory_line(project, arch, params, preview, patch, int(batch),
                           None if channels is None else len(channels) + 1)
    config = {
        "arch": arch, "arch_params": params, "patch_size": patch, "patch_mode": mode,
        "epochs": int(epochs), "lr": float(lr), "batch_size": int(batch),
        "val_fraction": float(val),
        "augment": {"flips": flips, "rot90": flips, "transforms": []},
        "class_weights": None if chosen_weights == "none" else chosen_weights,
        "max_minutes": float(minutes) or None, "channels": channels,
    }
    return Settings(config, pattern, to_confirm, blocked)


def _cnn_params(depth_column, width_column, patch: tuple[int, ...] | int | None) -> dict:
    """Depth ("auto" unless moved: the value then goes into the config) and width sliders,
    ranges and defaults from the architecture registry."""
    spec, default = models.ARCHITECTURES["cnn"].params, models.architecture_params("cnn")
    if isinstance(patch, int):
        patch = (patch, patch)
    automatic = training.auto_depth(patch) if patch else None
    depth = depth_column.select_slider(
        "Depth (conv blocks)", ["auto", *range(int(spec["depth"].low), int(spec["depth"].high) + 1)],
        "auto", key="train_depth",
        format_func=lambda d: (f"auto ({automatic})" if automatic else "auto") if d == "auto"
        else str(d),
        help="auto: 3 blocks below 64-pixel patches, 4 from 64, 5 from 128 (tuned on CoNSeP: "
             "+0.04 to 0.06 macro-F1 over a fixed depth 3).")
    widths = [w for w in (2, 4, 8, 16, 32, 64, 128)
              if spec["width"].low <= w <= spec["width"].high]
    width = width_column.select_slider("Width (filters)", widths, default["width"],
                                       key="train_width")
    return {"width": width} if depth == "auto" else {"depth": int(depth), "width": width}


def _validation(project: Project) -> tuple[float, str | None, list[str]]:
    """The split's settings and, before any run, what it will hold: a prominent warning when
    it is not grouped or thin, and the classes with too few labels (to confirm)."""
    st.markdown("**Validation**")
    a, b, c = st.columns([1, 1, 2])
    val = a.slider("Validation fraction", 0.0, 0.5, DEFAULTS.val_fraction, 0.05, key="train_val",
                   help="Held out by whole groups (images, or the images sharing a part of "
                        "their name), stratified by class.")
    grouping = b.radio("Keep together", GROUPINGS, key="train_grouping",
                       help="Objects of one group are all in training or all in validation. "
                            "Tiles cut from one slide belong together: group them by the "
                            "slide's part of the name.")
    pattern = None
    if grouping == GROUPINGS[1]:
        pattern = c.text_input(
            "Pattern (regular expression; its first group is the group)", r"^(.+)_[^_]+$",
            key="train_group_pattern",
            help=r"e.g. train_(\d+)_ groups the CoNSeP tiles train_4_12.png by slide 4. A "
                 "name it does not match is its own group.") or None
    labels = project.labels()
    to_confirm = _thin_classes(project, labels)
    if labels["class"].nunique() < 2:
        return val, pattern, to_confirm
    try:
        group_by = io.group_by_pattern(pattern)
        split = training.preview_split(labels["class"], labels["image"], val, 0, group_by)
    except InputError as error:
        st.error(str(error))
        return val, pattern, to_confirm
    if pattern:
        names = labels["image"].drop_duplicates().head(3)
        c.caption("Groups: " + ", ".join(f"{n} → {group_by(n)}" for n in names))
    counts = ", ".join(f"{k} {n}" for k, n in split.val_per_class.items())
    where = (f"{len(split.val_groups)} of {split.n_groups} group(s)" if split.grouped
             else f"the {split.n_groups} group(s) mixed")
    line = f"Validation: **{split.n_val} objects** from {where} ({counts})."
    thin = split.thin_classes()
    if val == 0:
        st.info("No validation set: the run keeps its last epoch and reports no scores.")
    elif not split.grouped:
        st.error(f"{line} The split is NOT grouped: {split.note}. Label objects on more "
                 "images, or group by a part of the name.", icon=":material/warning:")
    elif thin:
        st.warning(f"{line} Fewer than {training.FEW_VALIDATION_OBJECTS} validation objects "
                   f"in {', '.join(thin)}: one object moves its recall by "
                   f"{100 / max(1, min(split.val_per_class[t] for t in thin)):.0f} % or more, so "
                   "the scores are rough. Label more images (or raise the fraction).",
                   icon=":material/warning:")
    else:
        st.success(line)
    return val, pattern, to_confirm


def _channel_choice(n_channels: int) -> list[int] | None:
    """The image channels the network sees (None: all), for images of several channels."""
    if n_channels < 2:
        return None
    names = ("red", "green", "blue") if n_channels == 3 else None
    every = list(range(n_channels))
    chosen = st.multiselect(
        "Channels the network sees", every, default=every, key="train_channels",
        format_func=lambda c: names[c] if names else f"channel {c}",
        help="Leave out channels that do not tell the classes apart (a nuclear stain, an "
             "empty channel). The model keeps the choice and takes the same channels from "
             "the images it predicts.")
    if not chosen or sorted(chosen) == every:
        return None
    return sorted(chosen)


def _memory_line(project: Project, arch: str, params: dict, preview, patch: int | None,
                 batch: int, in_channels: int | None = None) -> str | None:
    """The run's estimated memory beside what is free (:mod:`svetlana_core.training.memory`);
    the refusal the worker would give, shown before the start, or None when it fits."""
    if preview is None:
        return None
    _, crops, _, _ = preview
    shape = crops.shape[2:] if patch is None else (patch,) * (crops.ndim - 2)
    n_objects = len(project.labels())
    try:
        need = memory.check_fits(arch, params, shape, batch, n_objects,
                                 in_channels or crops.shape[1])
    except InputError as error:
        st.error(f"Cannot start: {error}.", icon=":material/memory:")
        return str(error)
    free = memory.environment_free()
    st.caption(f"Memory: about {need / 2**30:.1f} GB for {n_objects} patches of "
               f"{'×'.join(map(str, shape))} and batches of {batch}"
               + (f", of {free / 2**30:.1f} GB free." if free else "."))
    return None


def _thin_classes(project: Project, labels) -> list[str]:
    """One sentence per class of the project with fewer than :data:`FEW_LABELS` labels."""
    counts = labels["class"].value_counts()
    lines = []
    for name in project.classes()["name"]:
        n = int(counts.get(name, 0))
        if n == 0:
            lines.append(f"class {name} has no labels: the model will not know it (it never "
                         "predicts it)")
        elif n < FEW_LABELS:
            lines.append(f"class {name} has only {n} label(s): the model will hardly learn it")
    return lines


def _patch_crops(project: Project, size: int | None, mode: str, n: int = 8):
    """Up to ``n`` labelled objects of the current image, cropped as the network will see
    them (size, context or masked, percentile normalisation); None when there are none."""
    image_name = state.current_image(project)
    if image_name is None:
        return None
    images = project.images()
    row = images.loc[images["name"] == image_name].iloc[0]
    try:
        image, mask = loaders.load_pair(row)
        table = loaders.object_table(row, mask)
        labelled = project.labels(image_name)
        chosen = labelled["label"].head(n).to_numpy() if not labelled.empty \
            else table["label"].head(n).to_numpy()
        if not len(chosen):
            return None
        crops = patches.extract(image, mask, chosen, size=size, mode=mode, table=table)
    except InputError as error:
        st.caption(f"No patch preview: {error}")
        return None
    classes = dict(zip(labelled["label"], labelled["class"])) if not labelled.empty else {}
    captions = [f"{label} · {classes.get(label, 'unlabelled')}" for label in chosen]
    return image_name, crops, captions, 0 if image is None else image.shape[0]


def _show_patches(image_name: str, crops, captions: list[str], image_channels: int,
                  size: int | None, mode: str) -> None:
    """The crops of :func:`_patch_crops`, the object outlined, with what they are."""
    shown = "×".join(str(s) for s in crops.shape[2:])
    how = "set above" if size else "automatic for this image; training picks it from all images"
    st.caption(f"Patches as the network sees them on **{image_name}**: {shown} pixels "
               f"({how}), {mode} mode, the object outlined.")
    st.image([overlay.patch_tile(crop, image_channels) for crop in crops], caption=captions,
             width=96)


def validate(config: dict) -> None:
    """Check a config before starting a job; raises InputError naming the bad key.

    Needs no torch: the config and the architecture registry are torch-free (albumentations,
    which imports torch, only for a spec that lists its transforms).
    """
    # First the paths, against the app's roots (configured or the default workspace): a typed
    # JSON config must not name the server's other files, nor learn from a check whether they
    # exist (the job API checks the configured roots again).
    jobs.config_paths_inside_roots(config, state.data_roots())
    TrainConfig.from_dict(config).validate()
