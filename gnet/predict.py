"""Classify image files with a trained GoogLeNet: the most likely classes of each image, with probabilities.

    python -m gnet.predict IMAGE [IMAGE ...] [--checkpoint IMAGENETTE_CPU] [--top 5] [--json]
    gnet-predict --help

``--checkpoint`` is a registered weight (:mod:`gnet.weights`; the default is ``DEFAULT``), a run's ``last.pt``
or a weights file. Each image is prepared as the checkpoint's run evaluated: resized and centre-cropped to its
training size.

A network names only the classes it was trained on (the registered weights: Imagenette's ten), so it names one of
them for every image, also for a photo that shows none of them, and its probabilities then say nothing about that.
The text output says so in a first line on stderr (so that stdout stays one line per image), and ``--help`` in
its description.

Exit codes: 0 every image was classified; 2 bad arguments or an unusable checkpoint, or at least one image could
not be read. An unreadable image gets one error line naming the file, and the other images are still classified.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gnet import data as gdata
from gnet._process import run_cli
from gnet.checkpoint import Checkpoint, CheckpointError
from gnet.device import DEVICES, DeviceError, resolve_device
from gnet.weights import WeightsUnavailableError, load_weights

__all__ = ["EXIT_ERROR", "EXIT_OK", "classify", "known_classes_note", "main"]

EXIT_OK, EXIT_ERROR = 0, 2


def classify(loaded: Checkpoint, path: str, *, top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` most likely classes of one image file, best first, as ``{"class", "probability"}`` dicts.

    Raises :class:`gnet.data.CorruptImageError` naming the file if it cannot be decoded (or is too large to, see
    :func:`gnet.data.load_rgb`), and ``ValueError`` if the network's output for it is NaN or infinite.
    """
    transform = gdata.eval_transform(loaded.trained_with("image_size", 224))
    device = next(loaded.model.parameters()).device
    image = transform(gdata.load_rgb(path)).unsqueeze(0).to(device)
    with torch.inference_mode():
        logits = loaded.model.eval()(image).float()
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"the network's output for {path} is NaN or infinite: no class can be named")
    probabilities = torch.softmax(logits, dim=1)[0].cpu()
    values, indices = probabilities.topk(min(top, len(probabilities)))
    return [
        {"class": loaded.class_names[i], "probability": float(p)} for p, i in zip(values, indices.tolist(), strict=True)
    ]


def known_classes_note(loaded: Checkpoint) -> str:
    """The note each run starts with: which classes the network can name, and what that means."""
    names = loaded.class_names
    listed = ", ".join(names) if len(names) <= 10 else f"{', '.join(names[:10])}, ..."
    return (
        f"gnet-predict: note: this network knows only {len(names)} classes ({listed}); it names one of them for "
        "any image, also one that shows none of them"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnet-predict",
        description="Classify image files with a trained gnet GoogLeNet. The network knows only the classes it was "
        "trained on (the registered weights: Imagenette's ten, tench, English springer, cassette player, chain saw, "
        "church, French horn, garbage truck, gas pump, golf ball and parachute), so it names one of them for every "
        "image, also for a photo of something else; its probabilities do not tell when that happens.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="exit codes: 0 every image classified; 2 bad arguments, an unusable checkpoint, "
        "or an image that could not be read (the others are still classified)",
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--checkpoint", default="DEFAULT", help="a registered weight name, last.pt or weights file")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print per image")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="where to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image, one per line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gnet-predict`` / ``python -m gnet.predict`` entry point; returns the exit code (130 on Ctrl-C)."""
    return run_cli("gnet-predict", build_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    if args.top < 1:
        print(f"gnet-predict: error: --top must be >= 1, got {args.top}", file=sys.stderr)
        return EXIT_ERROR
    try:
        loaded = load_weights(args.checkpoint, device=resolve_device(args.device))
    except (CheckpointError, WeightsUnavailableError, DeviceError) as error:
        print(f"gnet-predict: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if not args.json:  # for people; stdout stays one result per image, and --json output is for programs
        print(known_classes_note(loaded), file=sys.stderr)
    failed = 0
    for path in args.images:
        if Path(path).is_dir():
            print(f"gnet-predict: error: {path} is a folder, not an image (pass its files)", file=sys.stderr)
            failed += 1
            continue
        try:
            ranked = classify(loaded, path, top=args.top)
        except (gdata.CorruptImageError, ValueError) as error:  # the message names the file
            print(f"gnet-predict: error: {str(error).split('. Delete')[0]}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"image": path, "top": ranked}, allow_nan=False))
        else:
            print(f"{path}: " + ", ".join(f"{r['class']} {100 * r['probability']:.1f} %" for r in ranked))
    return EXIT_ERROR if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
