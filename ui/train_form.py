"""The common training settings as widgets, turned into a ``TrainConfig`` dict.

The form covers what most users change; the Train page's JSON editor exposes every key of
:class:`svetlana_core.training.TrainConfig` (albumentations transforms included).
"""

from __future__ import annotations

import streamlit as st

from svetlana_core import jobs, models, patches
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from svetlana_core.training import TrainConfig
from ui import loaders, overlay, state


def settings_form(project: Project) -> dict:
    """Draw the settings widgets and return the config dict they describe."""
    a, b, c = st.columns(3)
    arch = a.selectbox("Architecture", list(models.ARCHITECTURES), key="train_arch",
                       help="cnn: the small custom network of the paper (2D or 3D).")
    params: dict = {}
    if arch == "cnn":
        # ranges and defaults from the registry (depth 1 to 5, width 2 to 128)
        spec, default = models.ARCHITECTURES["cnn"].params, models.architecture_params("cnn")
        depth = spec["depth"]
        params["depth"] = b.slider("Depth (conv blocks)", int(depth.low), int(depth.high),
                                   default["depth"], key="train_depth")
        widths = [w for w in (2, 4, 8, 16, 32, 64, 128)
                  if spec["width"].low <= w <= spec["width"].high]
        params["width"] = c.select_slider("Width (filters)", widths, default["width"],
                                          key="train_width")
    auto = a.toggle("Automatic patch size", True, key="train_auto_patch",
                    help="From the object sizes (95th percentile × 1.5), robust to giant objects.")
    patch = None if auto else b.number_input("Patch size (pixels)", 8, 512, 64, 8,
                                             key="train_patch")
    mode = c.radio("Patch content", ["context", "masked"], horizontal=True, key="train_mode",
                   help="masked: the image outside the object (dilated) is set to zero.")
    a, b, c, d = st.columns(4)
    epochs = a.number_input("Epochs", 1, 1000, 40, key="train_epochs")
    lr = b.number_input("Learning rate", 1e-6, 1.0, 2e-3, format="%.4f", key="train_lr")
    batch = c.select_slider("Batch size", [8, 16, 32, 64, 128, 256], 64, key="train_batch")
    val = d.slider("Validation fraction", 0.0, 0.5, 0.2, 0.05, key="train_val",
                   help="Held out by whole images, stratified by class.")
    a, b, c = st.columns(3)
    flips = a.toggle("Flips and 90° rotations", True, key="train_flips")
    weights = b.selectbox("Class weights", ["sqrt", "balanced", "none"], key="train_weights",
                          help="Weigh rare classes up in the loss: 'balanced' fully, 'sqrt' "
                               "halfway (the default), 'none' not at all.")
    minutes = c.number_input("Time budget (minutes, 0 = none)", 0.0, 1440.0, 0.0,
                             key="train_minutes")
    _patch_preview(project, None if patch is None else int(patch), mode)
    return {
        "arch": arch, "arch_params": params, "patch_size": patch, "patch_mode": mode,
        "epochs": int(epochs), "lr": float(lr), "batch_size": int(batch),
        "val_fraction": float(val),
        "augment": {"flips": flips, "rot90": flips, "transforms": []},
        "class_weights": None if weights == "none" else weights,
        "max_minutes": float(minutes) or None,
    }


def _patch_preview(project: Project, size: int | None, mode: str, n: int = 8) -> None:
    """Up to ``n`` labelled objects of the current image, cropped as the network will see
    them (size, context or masked, percentile normalisation), the object outlined."""
    image_name = state.current_image(project)
    if image_name is None:
        return
    images = project.images()
    row = images.loc[images["name"] == image_name].iloc[0]
    try:
        image, mask = loaders.load_pair(row)
        table = loaders.object_table(row, mask)
        labelled = project.labels(image_name)
        chosen = labelled["label"].head(n).to_numpy() if not labelled.empty \
            else table["label"].head(n).to_numpy()
        if not len(chosen):
            return
        crops = patches.extract(image, mask, chosen, size=size, mode=mode, table=table)
    except InputError as error:
        st.caption(f"No patch preview: {error}")
        return
    shown = "×".join(str(s) for s in crops.shape[2:])
    how = "set above" if size else "automatic for this image; training picks it from all images"
    st.caption(f"Patches as the network sees them on **{image_name}**: {shown} pixels "
               f"({how}), {mode} mode, the object outlined.")
    classes = dict(zip(labelled["label"], labelled["class"])) if not labelled.empty else {}
    image_channels = 0 if image is None else image.shape[0]
    tiles = [overlay.patch_tile(crop, image_channels) for crop in crops]
    captions = [f"{label} · {classes.get(label, 'unlabelled')}" for label in chosen]
    st.image(tiles, caption=captions, width=96)


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
