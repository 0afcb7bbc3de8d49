"""Command-line interface: ``python -m svetlana_core <command> …``.

Every command exits with 0 on success and 2 on bad input, printing one line on stderr
that names the file or value and what is wrong (no traceback). Heavy modules (torch) are
imported inside the commands that need them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from svetlana_core.errors import InputError

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def cmd_objects(args: argparse.Namespace) -> int:
    from svetlana_core import io
    from svetlana_core import objects

    _, mask = io.load_pair(args.image, args.mask, axes=args.axes,
                           relabel_binary=args.relabel_binary)
    table = objects.object_table(mask)
    if args.out:
        io.write_csv(args.out, table)
        print(f"{len(table)} objects written to {args.out}")
    else:
        print(table.to_csv(index=False), end="")
    return EXIT_OK


def cmd_import_labels(args: argparse.Namespace) -> int:
    from svetlana_core.io.label_sources import gather_labels

    # Everything is read and checked before the project is touched; images and labels are
    # then stored in one transaction, so a refused file leaves the project as it was (and no
    # project is created). Masks made from GeoJSON outlines are removed again then.
    import time
    import uuid

    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    # Masks made from outlines go to a folder of their own: never over an earlier file.
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    batch = Path(args.project) / "masks" / stamp
    gathered = gather_labels(args.labels, images=args.images, masks=args.masks,
                             label_name=args.label_name, napari=args.napari, class_names=names,
                             geojson_as_mask=args.geojson_as_mask, masks_out=batch)
    try:
        n = _store_labels(args, gathered)
    except BaseException:
        for path in gathered.written:
            path.unlink(missing_ok=True)
        for folder in (batch, batch.parent, Path(args.project)):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    for note in gathered.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(gathered.pairs)} images and {n} labels stored in {args.project}")
    return EXIT_OK


def _store_labels(args: argparse.Namespace, gathered) -> int:
    """Check the gathered labels against the masks and the project, then store them."""
    from svetlana_core.store.connection import DB_NAME
    from svetlana_core.store.label_import import check_labels, store_checked
    from svetlana_core.store.project import Project

    exists = (Path(args.project) / DB_NAME).is_file()
    project = Project.open(args.project) if exists else None
    origin = (f"labels file {args.labels}" if args.labels
              else f"napari-svetlana project {args.napari}")
    check = check_labels(project, gathered, origin)
    if check.errors:
        raise InputError(check.errors[0])
    return store_checked(project or Project.open_or_create(args.project), check,
                         add_classes=args.add_classes, author=args.author,
                         hint="pass --add-classes to add them, or rename them in the file")


def cmd_export_labels(args: argparse.Namespace) -> int:
    from svetlana_core.store.project import Project

    project = Project.open(args.project)
    if args.format == "geojson":
        n = project.export_labels_geojson(args.out)
        print(f"{n} labels written as QuPath GeoJSON into {args.out}")
        return EXIT_OK
    n = project.export_labels_csv(args.out)
    print(f"{n} labels written to {args.out}")
    return EXIT_OK


def cmd_transfer_labels(args: argparse.Namespace) -> int:
    from svetlana_core.store.project import Project

    report = Project.open(args.project).replace_mask(args.image, args.new_mask,
                                                    min_iou=args.min_iou, author=args.author)
    print(f"{args.image}: {report.summary()}", file=sys.stderr)
    print(_json_line({"image": args.image, "new_mask": str(args.new_mask),
                      "min_iou": report.min_iou, **report.counts(),
                      "lost_labels": report.lost["old_label"].tolist(),
                      "ambiguous_labels": report.ambiguous["old_label"].tolist()}))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from svetlana_core.demo import create_demo

    project = create_demo(args.project)
    n_images = len(project.images())
    n_labels = len(project.labels())
    print(f"demo project in {args.project}: {n_images} images, {n_labels} labelled objects")
    return EXIT_OK


def _parse_value(text: str):
    """``--arch-param`` values: JSON when it parses (numbers, true, lists), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _config_from_args(args: argparse.Namespace) -> dict:
    """The TrainConfig dict: ``--config`` file, then the flags given on the command line."""
    config: dict = {}
    if args.config:
        path = Path(args.config)
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"config file {path} not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"config file {path} is not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise InputError(f"config file {path} must hold a JSON object")
    if args.arch:
        config["arch"] = args.arch
    params = dict(config.get("arch_params") or {})
    for item in args.arch_param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--arch-param {item!r} must look like KEY=VALUE")
        params[key] = _parse_value(value)
    if params:
        config["arch_params"] = params
    if getattr(args, "channels", None):
        try:
            config["channels"] = [int(c) for c in args.channels.split(",")]
        except ValueError:
            raise InputError(f"--channels {args.channels!r} must be channel numbers, e.g. "
                             "0,2") from None
    for key in ("epochs", "max_minutes", "seed", "device", "val_fraction", "batch_size", "lr",
                "patch_size"):
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    return config


def _group_by(pattern: str | None):
    from svetlana_core.io.pairing import group_by_pattern

    return group_by_pattern(pattern)


def cmd_train(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    if config.get("arch") == "rf":
        return _train_rf(args, config)
    from svetlana_core import training

    cfg = training.TrainConfig.from_dict(config)
    cfg.validate()
    print(_json_line(_train_cnn(cfg, _dataset(args, cfg), args.out)))
    return EXIT_OK


def _dataset(args: argparse.Namespace, cfg):
    """The labelled objects of a project or of folders, cropped as ``cfg`` says."""
    from svetlana_core import training

    group_by = _group_by(args.group_pattern)
    if args.project:
        from svetlana_core.store.project import Project

        project = Project.open(args.project)
        return training.dataset_from_training_set(project.training_set(), cfg, group_by)
    _require(args, "images", "labels", *(["masks"] if args.images == "-" else []))
    images = None if args.images == "-" else args.images
    return training.dataset_from_folders(images, args.masks, args.labels, cfg,
                                         group_by=group_by, axes=args.axes,
                                         label_name=args.label_name)


def _train_cnn(cfg, dataset, out: str | Path) -> dict:
    """Train one CNN, a line per epoch on stderr; returns the final line's fields."""
    from svetlana_core import training

    def on_epoch(record: dict) -> None:
        shown = {k: record.get(k) for k in ("epoch", "train_loss", "val_loss", "accuracy",
                                              "balanced_accuracy", "macro_f1", "seconds")}
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in shown.items() if v is not None), file=sys.stderr, flush=True)

    run = training.train(dataset, cfg, on_epoch=on_epoch, out_dir=out)
    metrics = {k: run.metrics.get(k) for k in ("n", "accuracy", "balanced_accuracy", "macro_f1",
                                                "per_class", "confusion", "classes")}
    return {"model_dir": str(run.model_dir), "best_epoch": run.best_epoch,
            "stop_reason": run.stop_reason, "seconds": round(run.seconds, 1),
            "device": run.device, "split": run.split.get("note"), **metrics}


#: Config keys that change the cropped patches: cells that share them share one dataset.
_PATCH_KEYS = ("patch_size", "patch_mode", "dilation", "normalisation")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Train one CNN per cell of the grid, one after another; one JSON line per cell."""
    from svetlana_core import training
    from svetlana_core.training import sweep

    base = _config_from_args(args)
    if base.get("arch") == "rf":
        raise InputError("sweep trains CNNs; the random forest has no grid to sweep")
    planned = sweep.configs(base, sweep.parse_grid(args.grid))  # all checked before any trains
    datasets: dict[tuple, object] = {}
    for cell, config in planned:
        cfg = training.TrainConfig.from_dict(config)
        key = tuple(json.dumps(getattr(cfg, k)) for k in _PATCH_KEYS)
        if key not in datasets:
            datasets = {key: _dataset(args, cfg)}  # one set of patches in memory at a time
        print(f"cell {sweep.label(cell)}", file=sys.stderr, flush=True)
        result = _train_cnn(cfg, datasets[key], Path(args.out) / sweep.folder_name(cell))
        print(_json_line({"cell": cell, **result}), flush=True)
    return EXIT_OK


def _train_rf(args: argparse.Namespace, config: dict) -> int:
    from svetlana_core import baseline
    from svetlana_core import io

    if args.project:
        raise InputError("--arch rf trains from folders (--images, --masks, --labels) only")
    images = None if args.images in (None, "-") else args.images
    _require(args, "labels", *(["masks"] if images is None else []))
    labels = io.read_labels_csv(args.labels)
    files = io.folder_files(images, args.masks, label_name=args.label_name)
    result = baseline.train_from_labels(
        files, labels, val_fraction=config.get("val_fraction", 0.2),
        seed=config.get("seed", 0), group_by=_group_by(args.group_pattern), axes=args.axes,
        out_dir=args.out, **(config.get("arch_params") or {}))
    print(_json_line({"model_dir": str(args.out), "n_train": result.n_train,
                      "n_val": result.n_val, **(result.metrics or {})}))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from svetlana_core.predict.evaluate import evaluate_folder

    images = None if args.images == "-" else args.images
    if images is None and not args.masks:
        raise InputError("evaluate --images - (mask-only data) needs --masks")
    metrics = evaluate_folder(args.model, images, args.masks, args.labels, axes=args.axes,
                              device=args.device, label_name=args.label_name)
    print(_json_line({k: metrics[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1",
                                              "per_class", "confusion")}))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from svetlana_core import io
    from svetlana_core.predict.many import predict_many

    if args.scheduler and args.dask_local:
        raise InputError("give either --scheduler or --dask-local, not both")
    if args.write_into_zarr and args.zarr_copy:
        raise InputError("give either --write-into-zarr or --zarr-copy, not both")
    zarr_labels = "into" if args.write_into_zarr else "copy" if args.zarr_copy else None
    if args.images == "-" and not args.masks:
        raise InputError("predict --images - (mask-only data) needs --masks")
    # mask-only data: each mask is its own input, as in training (predict_many takes pairs)
    pairs = (list(io.folder_files(None, args.masks).values()) if args.images == "-"
             else io.pair_files(args.images, args.masks, label_name=args.label_name))
    client = cluster = None
    if args.dask_local:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.dask_local, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    bar = tqdm(total=len(pairs), unit="image", file=sys.stderr, disable=args.quiet)

    def progress(done: int, total: int, name: str) -> None:
        bar.n = done
        bar.set_postfix_str(name)
        bar.refresh()

    try:
        result = predict_many(args.model, pairs, args.out, batch_size=args.batch_size,
                              device=args.device, force=args.force, progress=progress,
                              client=client, scheduler=args.scheduler, axes=args.axes,
                              confidence_map=args.confidence_map, geojson=args.geojson,
                              zarr_labels=zarr_labels)
    finally:
        bar.close()
        if client is not None:
            client.close()
            cluster.close()
    for note in result.notes:
        if "model.onnx" in note:  # the path taken with this model: worth a line on stderr
            print(f"note: {note}", file=sys.stderr)
    for name, message in result.failed.items():
        print(f"failed: {name}: {message}", file=sys.stderr)
    print(_json_line({"out_dir": str(args.out), "done": len(result.done),
                      "skipped": len(result.skipped), "failed": len(result.failed),
                      "engine": result.engine}))
    return EXIT_OK if not result.failed else EXIT_BAD_INPUT


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from svetlana_core.models.export import export_folder

    path = export_folder(args.model)
    print(_json_line({"model_dir": str(args.model), "onnx": str(path)}))
    return EXIT_OK


def cmd_gradcam(args: argparse.Namespace) -> int:
    from svetlana_core import io
    from svetlana_core.explain.cam import explain_object
    from svetlana_core.explain.heatmap import save_heatmap_png
    from svetlana_core.models.folder import load_model, model_kind

    if model_kind(args.model) == "rf":
        raise InputError(f"{args.model} is a random forest: Grad-CAM explains a CNN's decision "
                         "on a patch (a forest's feature importances are in its model.json)")
    model = load_model(args.model)
    image, mask = io.load_pair(None if args.image == "-" else args.image, args.mask,
                               axes=args.axes)
    from svetlana_core.objects.table import labels_of

    present = labels_of(mask)
    if args.label not in present:
        raise InputError(
            f"label {args.label} is not an object of mask {args.mask} ({present.size} objects, "
            f"labels {present.min()} to {present.max()})"
        )
    explanation, patch = explain_object(model, image, mask, args.label, target=args.target,
                                        guided=args.guided)
    save_heatmap_png(args.out, patch, explanation.heat)
    probabilities = dict(zip(model.classes, map(float, explanation.probabilities)))
    print(_json_line({"label": args.label, "target": explanation.target_class,
                      "predicted": model.classes[explanation.predicted],
                      "probabilities": probabilities, "out": str(args.out)}))
    return EXIT_OK


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n}" for n in names if getattr(args, n, None) in (None, "")]
    if missing:
        raise InputError(f"train needs {', '.join(missing)} (or a PROJECT_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m svetlana_core",
        description="Classify the objects of segmentation masks with small neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    _add_train_command(sub)
    _add_model_commands(sub)
    return parser


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    """objects, import-labels, export-labels, demo: commands that read or write data."""
    p = sub.add_parser("objects", help="print or write the object table of a mask")
    p.add_argument("image", help="image file (TIFF, PNG, JPEG)")
    p.add_argument("mask", help="instance mask (TIFF, PNG, .npy, Cellpose _seg.npy)")
    p.add_argument("--out", help="write the table to this CSV instead of printing it")
    p.add_argument("--axes", help="axes of the image (YX, YXC, CYX, ZYX, ZCYX); guessed if absent")
    p.add_argument("--relabel-binary", action="store_true",
                   help="label the connected components of a binary mask (in memory)")
    p.set_defaults(func=cmd_objects)

    p = sub.add_parser("import-labels",
                       help="add images and their labels (CSV, QuPath GeoJSON or a "
                       "napari-svetlana project) to a project (created if needed)")
    p.add_argument("project", help="project folder")
    p.add_argument("--images", help="folder of images (TIFF, PNG, JPEG, OME-Zarr)")
    p.add_argument("--masks", help="folder of masks (default: the images folder)")
    p.add_argument("--labels", help="CSV with columns image,label,class, or a QuPath GeoJSON "
                   "file or folder of them (one per image, named after it)")
    p.add_argument("--geojson-as-mask", action="store_true",
                   help="the images have no mask: the GeoJSON outlines become the masks")
    p.add_argument("--napari", metavar="FOLDER", help="a napari-svetlana project (Images/, "
                   "Masks/, Svetlana/labels): import its images and labels")
    p.add_argument("--class-names", help="names of the napari-svetlana classes 1,2,… in order, "
                   "comma-separated (default: 1, 2, …)")
    p.add_argument("--label-name", help="label image of OME-Zarr images to use as the mask")
    p.add_argument("--add-classes", action="store_true",
                   help="add classes the project does not have yet (else they are refused)")
    p.add_argument("--author", default="", help="recorded as the author of the labels")
    p.set_defaults(func=cmd_import_labels)

    p = sub.add_parser("export-labels", help="write a project's labels as CSV image,label,class "
                       "or as QuPath GeoJSON")
    p.add_argument("project", help="project folder")
    p.add_argument("--out", required=True, help="CSV file to write (a folder for GeoJSON)")
    p.add_argument("--format", choices=["csv", "geojson"], default="csv",
                   help="geojson: one FeatureCollection per image, <stem>.geojson")
    p.set_defaults(func=cmd_export_labels)

    p = sub.add_parser("transfer-labels", help="give an image a new mask (re-segmented) and "
                       "carry its labels to the objects that match")
    p.add_argument("project", help="project folder")
    p.add_argument("--image", required=True, help="the image's name in the project")
    p.add_argument("--new-mask", required=True, help="the new mask file")
    p.add_argument("--min-iou", type=float, default=0.5,
                   help="smallest overlap (intersection over union) of a match (default 0.5)")
    p.add_argument("--author", default="", help="recorded as the author of the labels")
    p.set_defaults(func=cmd_transfer_labels)

    p = sub.add_parser("demo", help="create the demo project (synthetic cells, 3 classes)")
    p.add_argument("project", help="project folder to create")
    p.set_defaults(func=cmd_demo)


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    """train and sweep: the same data and settings; a sweep adds its grid."""
    p = sub.add_parser("train", help="train a classifier (CNN or random forest)")
    _train_arguments(p, "model folder to write")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("sweep", help="train one CNN per cell of a grid of settings, one after "
                       "another (one JSON line per cell)")
    _train_arguments(p, "folder of the models, one sub-folder per cell (depth-2_width-8)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2", required=True,
                   help="a setting and its values, e.g. depth=2,3 (repeatable: the cells are "
                        "every combination): a TrainConfig key or an architecture parameter")
    p.set_defaults(func=cmd_sweep)


def _train_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("project", nargs="?", help="train from this project's stored labels")
    p.add_argument("--images", help="folder of images ('-' for mask-only data)")
    p.add_argument("--masks", help="folder of masks (default: the images folder)")
    p.add_argument("--labels", help="CSV with columns image,label,class")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--config", help="TrainConfig JSON file (flags below override it)")
    p.add_argument("--arch", help="cnn, resnet18…152, densenet121…201, alexnet, or rf")
    p.add_argument("--arch-param", action="append", metavar="KEY=VALUE",
                   help="architecture parameter, e.g. depth=2 (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this budget")
    p.add_argument("--seed", type=int)
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int, help="patch side in pixels along every axis "
                   "(default: automatic from the object sizes, at most 256 in 2D, 48 in 3D)")
    p.add_argument("--lr", type=float)
    p.add_argument("--channels", help="the image channels the network sees, e.g. 0,2 "
                   "(default: all); kept in the model")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--group-pattern", help="regex whose first group in the image name is the "
                   "validation group, e.g. 'train_(\\d+)_' (default: the image)")
    p.add_argument("--axes", help="axes of the image files, when they cannot be guessed")
    p.add_argument("--label-name", help="label image of OME-Zarr images to use as the mask "
                   "(default: the first one)")


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """evaluate, predict, gradcam: commands that use a trained model."""
    p = sub.add_parser("evaluate", help="score a model on labelled objects (one JSON line)")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--images", required=True, help="folder of images ('-' for mask-only)")
    p.add_argument("--masks", help="folder of masks (default: the images folder)")
    p.add_argument("--labels", required=True, help="CSV with columns image,label,class")
    p.add_argument("--label-name", help="label image of OME-Zarr images to use as the mask")
    p.add_argument("--axes")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict every object of a folder or plate of images")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--images", required=True,
                   help="folder of images ('-' for mask-only data, with --masks)")
    p.add_argument("--masks", help="folder of masks (default: the images folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch-size", type=int,
                   help="patches per forward pass (default 64 with ONNX Runtime on the CPU, "
                        "256 on a GPU)")
    p.add_argument("--confidence-map", action="store_true",
                   help="also write confidence/<image>.tif, a float32 map of each object's "
                        "confidence (the tables always hold it)")
    p.add_argument("--geojson", action="store_true",
                   help="also write geojson/<image>.geojson: outlines and classes for QuPath")
    p.add_argument("--write-into-zarr", action="store_true",
                   help="write the classes into each OME-Zarr image as the label image "
                   "labels/svetlana_classes (changes your Zarr: opt-in)")
    p.add_argument("--zarr-copy", action="store_true",
                   help="write a copy of each OME-Zarr image, with labels/svetlana_classes, "
                   "into OUT/zarr/")
    p.add_argument("--label-name", help="label image of OME-Zarr images to use as the mask "
                   "(default: the first one)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--dask-local", type=int, metavar="N",
                   help="start a local Dask cluster of N worker processes")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--force", action="store_true", help="redo images already predicted")
    p.add_argument("--axes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export-onnx",
                       help="(re)write a model folder's model.onnx from its weights (needs torch)")
    p.add_argument("model", help="model folder")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("gradcam", help="Grad-CAM heat map of one object, as a PNG")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--image", required=True, help="image file ('-' for mask-only models)")
    p.add_argument("--mask", required=True, help="mask file")
    p.add_argument("--label", required=True, type=int, help="the object's label in the mask")
    p.add_argument("--target", help="class to explain (default: the predicted class)")
    p.add_argument("--guided", action="store_true", help="guided Grad-CAM (2D)")
    p.add_argument("--axes")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_gradcam)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # tifffile logs its own warnings about damaged files; our InputError already names the
    # file and the problem in one line.
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    _print_core_notes()
    try:
        return args.func(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        # OS errors carry the file name; one line is enough for the user.
        print(f"error: {error.strerror}: {error.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a full disk, a quota, ulimit -f met outside io.atomic_write
        from svetlana_core.errors import storage_error

        print(f"error: {storage_error(error, error.filename or 'a file')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class _Notes(logging.Handler):
    """Prints what the core logs at warning level (e.g. pairs whose names differ) as one
    ``note:`` line on stderr (looked up at each line, so a redirected stderr gets it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"note: {record.getMessage()}", file=sys.stderr)


def _print_core_notes() -> None:
    core = logging.getLogger("svetlana_core")
    if not any(isinstance(handler, _Notes) for handler in core.handlers):
        core.addHandler(_Notes(logging.WARNING))
        core.setLevel(logging.WARNING)


def _json_line(payload: dict) -> str:
    """One JSON line with numpy scalars turned into plain numbers."""
    return json.dumps(payload, default=lambda o: o.item() if hasattr(o, "item") else str(o))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
