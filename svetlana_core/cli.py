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


# ---------------------------------------------------------------------------- commands


def cmd_objects(args: argparse.Namespace) -> int:
    from svetlana_core import io, objects, stats

    _, mask = io.load_pair(args.image, args.mask, axes=args.axes,
                           relabel_binary=args.relabel_binary)
    table = objects.object_table(mask)
    if args.out:
        stats.write_csv(args.out, table)
        print(f"{len(table)} objects written to {args.out}")
    else:
        print(table.to_csv(index=False), end="")
    return EXIT_OK


def cmd_import_labels(args: argparse.Namespace) -> int:
    from svetlana_core import io
    from svetlana_core.store import Project

    project = Project.open_or_create(args.project)
    pairs = io.pair_files(args.images, args.masks)
    project.add_images([(p.image, p.mask) for p in pairs])
    n = project.import_labels_csv(args.labels, author=args.author)
    print(f"{len(pairs)} images and {n} labels stored in {args.project}")
    return EXIT_OK


def cmd_export_labels(args: argparse.Namespace) -> int:
    from svetlana_core.store import Project

    project = Project.open(args.project)
    n = project.export_labels_csv(args.out)
    print(f"{n} labels written to {args.out}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from svetlana_core.demo import create_demo

    project = create_demo(args.project)
    n_images = len(project.images())
    n_labels = len(project.labels())
    print(f"demo project in {args.project}: {n_images} images, {n_labels} labelled objects")
    return EXIT_OK


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m svetlana_core",
        description="Classify the objects of segmentation masks with small neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("objects", help="print or write the object table of a mask")
    p.add_argument("image", help="image file (TIFF, PNG, JPEG)")
    p.add_argument("mask", help="instance mask (TIFF, PNG, .npy, Cellpose _seg.npy)")
    p.add_argument("--out", help="write the table to this CSV instead of printing it")
    p.add_argument("--axes", help="axes of the image (YX, YXC, CYX, ZYX, ZCYX); guessed if absent")
    p.add_argument("--relabel-binary", action="store_true",
                   help="label the connected components of a binary mask (in memory)")
    p.set_defaults(func=cmd_objects)

    p = sub.add_parser("import-labels",
                       help="add image/mask pairs and a labels CSV to a project (created if needed)")
    p.add_argument("project", help="project folder")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", help="folder of masks (default: the images folder)")
    p.add_argument("--labels", required=True, help="CSV with columns image,label,class")
    p.add_argument("--author", default="", help="recorded as the author of the labels")
    p.set_defaults(func=cmd_import_labels)

    p = sub.add_parser("export-labels", help="write a project's labels as CSV image,label,class")
    p.add_argument("project", help="project folder")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.set_defaults(func=cmd_export_labels)

    p = sub.add_parser("demo", help="create the demo project (synthetic cells, 3 classes)")
    p.add_argument("project", help="project folder to create")
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # tifffile logs its own warnings about damaged files; our InputError already names the
    # file and the problem in one line.
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        return args.func(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        # OS errors carry the file name; one line is enough for the user.
        print(f"error: {error.strerror}: {error.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _json_line(payload: dict) -> str:
    """One JSON line with numpy scalars turned into plain numbers."""
    return json.dumps(payload, default=lambda o: o.item() if hasattr(o, "item") else str(o))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
