"""Evaluate a trained GoogLeNet: top-1 / top-5, per-class accuracy and predictions, and the command line.

    python -m gnet.evaluate CHECKPOINT [--data-dir DIR] [--json]
    gnet-evaluate --help

``CHECKPOINT`` is any gnet checkpoint: a run's ``last.pt``, a weights file from
:func:`gnet.checkpoint.export_weights`, or the name of a registered weight (:mod:`gnet.weights`, e.g.
``IMAGENETTE_CPU``). Images are prepared with the evaluation transform at the resolution the checkpoint was
trained at (``--image-size`` overrides it): resize the short side to size / 0.875, centre crop.

Only ``val/`` is read, so a folder without ``train/`` will do. Sizes have documented maximums
(:mod:`gnet._validate`): ``--image-size`` 1024, ``--batch-size`` 1024, ``--workers`` 256.

Exit codes: 0 done, 2 bad arguments, a missing or unusable checkpoint (damaged, or with weights that are NaN or
infinite), missing or corrupt data, a data-loading worker that died; 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
``--json`` prints strict JSON: a class with no images has ``null`` accuracy, never ``NaN``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnet import data as gdata
from gnet._process import WorkerDiedError, one_line, run_cli, worker_died, worker_failures
from gnet._validate import MAX_EVAL_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_WORKERS
from gnet.checkpoint import Checkpoint, CheckpointError
from gnet.device import DEVICES, DeviceError, autocast, device_name, resolve_device, to_device
from gnet.weights import load_weights

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "Evaluation",
    "EvaluationSums",
    "Predictions",
    "confusion_matrix",
    "evaluate",
    "evaluate_checkpoint",
    "evaluation_sums",
    "main",
    "predict",
    "summarize",
    "topk_correct",
]

EXIT_OK, EXIT_ERROR = 0, 2


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows have the target among their top k logits, for each k (k is capped at the class count)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == target[:, None]
    return [int(hits[:, : min(k, logits.shape[1])].any(dim=1).sum()) for k in ks]


def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    precision: str = "fp32",
    *,
    stop: Any = None,
) -> dict[str, float] | None:
    """Mean cross-entropy and top-1 / top-5 accuracy (fractions) of the main classifier over ``loader``.

    ``stop`` is anything with a ``requested`` flag (the trainer's signal handler): when it is set, evaluation
    stops after the current batch and returns None.
    """
    sums = evaluation_sums(model, loader, device, precision, stop=stop)
    return None if sums.stopped else sums.means()


class EvaluationSums(NamedTuple):
    """What :func:`evaluate` adds up; sums of several shards (ranks) add up to the whole set's."""

    loss_sum: float
    correct1: int
    correct5: int
    count: int
    stopped: bool = False

    def means(self) -> dict[str, float]:
        n = self.count
        return {"loss": self.loss_sum / n, "top1": self.correct1 / n, "top5": self.correct5 / n}


def evaluation_sums(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    precision: str = "fp32",
    *,
    stop: Any = None,
) -> EvaluationSums:
    """Summed cross-entropy, top-1 and top-5 hits and the image count over ``loader`` (see :func:`evaluate`)."""
    model.eval()
    loss_sum, correct1, correct5, count = 0.0, 0, 0, 0
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = to_device(images, targets, device)
            with autocast(device, precision):
                logits = model(images)
            logits = logits.float()
            loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
            top1, top5 = topk_correct(logits, targets)
            correct1, correct5, count = correct1 + top1, correct5 + top5, count + len(targets)
            if stop is not None and stop.requested:
                return EvaluationSums(loss_sum, correct1, correct5, count, stopped=True)
    return EvaluationSums(loss_sum, correct1, correct5, count)


class Predictions(NamedTuple):
    targets: np.ndarray  # true labels
    predictions: np.ndarray  # arg-max labels
    probabilities: np.ndarray  # softmax, one row per image


def predict(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    workers: int = 0,
) -> Predictions:
    """Run ``model`` (eval mode) over ``dataset`` in order; the softmax of every image.

    Raises ``ValueError`` if the network's output is NaN or infinite for some image (its numbers would mean
    nothing), and :class:`gnet._process.WorkerDiedError` if a worker process dies.
    """
    device = torch.device(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    model.eval()
    targets, probabilities = [], []
    with torch.inference_mode():
        for images, labels in worker_failures(loader):
            images, labels = to_device(images, labels, device)
            logits = model(images).float()
            if not bool(torch.isfinite(logits).all()):
                raise ValueError(
                    f"the network's output is NaN or infinite for an image of batch {len(targets) + 1}: "
                    "its weights do not make a usable classifier"
                )
            probabilities.append(torch.softmax(logits, dim=1).cpu())
            targets.append(labels.cpu())
    probs = torch.cat(probabilities).numpy()
    return Predictions(torch.cat(targets).numpy(), probs.argmax(axis=1), probs)


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts, ``matrix[true, predicted]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predictions)), 1)
    return matrix


# ------------------------------------------------------------ a checkpoint on a dataset
class Evaluation(NamedTuple):
    """What :func:`evaluate_checkpoint` measured: the summary, every prediction, and the images they are of."""

    report: dict[str, Any]  # see summarize(), plus image_size, data_dir, device, seconds
    predictions: Predictions
    dataset: gdata.ImageFolderDataset


def evaluate_checkpoint(
    checkpoint: str | Path | Checkpoint,
    data_dir: str | Path | None = None,
    *,
    image_size: int | None = None,
    batch_size: int = 128,
    workers: int = 0,
    device: str | torch.device = "auto",
) -> Evaluation:
    """Top-1, top-5, mean loss and per-class accuracy of a checkpoint on a ``val/`` split (all of it).

    ``data_dir`` is found as :func:`gnet.data.resolve_data_dir` finds it (``$GNET_DATA_DIR``, then gnet's download
    folder, when None).
    Raises :class:`~gnet.checkpoint.CheckpointError`, :class:`~gnet.data.DataNotFoundError`,
    :class:`~gnet.data.CorruptImageError` or ``ValueError`` with a message for the user.
    """
    device = resolve_device(device)
    loaded = load_weights(checkpoint, device=device)
    image_size = image_size or loaded.trained_with("image_size", 224)
    root = _val_root(data_dir, loaded.trained_with("dataset_size", "160px"))
    dataset = gdata.ImageFolderDataset(root / "val", gdata.eval_transform(image_size))
    if dataset.classes != loaded.classes:
        raise ValueError(f"{root / 'val'} has classes {dataset.classes}, the checkpoint {loaded.classes}")
    started = time.perf_counter()
    result = predict(loaded.model, dataset, batch_size=batch_size, device=device, workers=workers)
    report = summarize(result, loaded.class_names) | {
        "image_size": image_size,
        "data_dir": str(dataset.root),
        "device": device_name(device),
        "seconds": time.perf_counter() - started,
    }
    return Evaluation(report, result, dataset)


def _val_root(data_dir: str | Path | None, dataset_size: str) -> Path:
    """The folder holding ``val/`` (evaluation reads nothing else, so no ``train/`` is needed), found where
    :func:`gnet.data.resolve_data_dir` looks for every command: ``data_dir`` alone, else ``$GNET_DATA_DIR``, then
    gnet's download folder."""
    size = dataset_size if dataset_size in gdata.IMAGENETTE_SIZES else "160px"
    return gdata.resolve_data_dir(data_dir, size, splits=("val",))


def summarize(result: Predictions, names: Sequence[str]) -> dict[str, Any]:
    """Image count, top-1, top-5, mean cross-entropy and per-class top-1 (keyed by ``names``) of predictions.

    Every class gets a row, also one with no images (its ``top1`` is then None); ``names`` must name every class
    the predictions can hold, so that none is dropped from the table.
    """
    if result.probabilities.shape[1] != len(names) or len(set(names)) != len(names):
        raise ValueError(
            f"expected one distinct name per class ({result.probabilities.shape[1]}), got {len(names)} names "
            f"({len(set(names))} distinct)"
        )
    targets, probs = torch.from_numpy(result.targets), torch.from_numpy(result.probabilities)
    top1, top5 = topk_correct(probs, targets)
    picked = probs[torch.arange(len(targets)), targets].clamp_min(1e-12)
    per_class = {}
    for label, name in enumerate(names):
        members = result.targets == label
        per_class[name] = {
            "images": int(members.sum()),
            "top1": float((result.predictions[members] == label).mean()) if members.any() else None,
        }
    return {
        "images": len(targets),
        "top1": top1 / len(targets),
        "top5": top5 / len(targets),
        "loss": float(-picked.log().mean()),
        "per_class": per_class,
    }


# ------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnet-evaluate",
        description="Evaluate a gnet checkpoint on the whole val/ split: top-1, top-5, per-class accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="exit codes: 0 done; 2 bad arguments, an unusable checkpoint or data (one line says why); "
        "130 Ctrl-C, 143 SIGTERM, 129 SIGHUP",
    )
    parser.add_argument("checkpoint", help="last.pt, a weights file, or a registered weight name (IMAGENETTE_CPU)")
    parser.add_argument(
        "--data-dir",
        help="folder with val/, or one holding imagenette2-<size>/ [$GNET_DATA_DIR, then ~/.cache/gnet/data]",
    )
    parser.add_argument(
        "--image-size", type=int, help=f"evaluation crop in pixels, at most {MAX_IMAGE_SIZE} [the training size]"
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, help=f"images per forward pass (at most {MAX_EVAL_BATCH_SIZE})"
    )
    parser.add_argument("--workers", type=int, default=0, help=f"DataLoader worker processes (at most {MAX_WORKERS})")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _print_table(report: dict[str, Any], checkpoint: str) -> None:
    print(f"{checkpoint}: {report['images']} images of {report['data_dir']} at {report['image_size']} px")
    print(f"top-1 {100 * report['top1']:.2f} %   top-5 {100 * report['top5']:.2f} %   loss {report['loss']:.4f}")
    width = max(len(name) for name in report["per_class"])
    for name, row in report["per_class"].items():
        accuracy = f"{100 * row['top1']:6.2f} %" if row["top1"] is not None else "     – "
        print(f"  {name:<{width}}  {accuracy}  of {row['images']}")
    print(f"{report['seconds']:.1f} s on {report['device']}")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gnet-evaluate`` / ``python -m gnet.evaluate`` entry point; returns the exit code (130 on Ctrl-C)."""
    return run_cli("gnet-evaluate", build_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    limits = {"image_size": (1, MAX_IMAGE_SIZE), "batch_size": (1, MAX_EVAL_BATCH_SIZE), "workers": (0, MAX_WORKERS)}
    for name, (low, high) in limits.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            bound = f">= {low}" if value < low else f"<= {high}"
            print(f"gnet-evaluate: error: --{name.replace('_', '-')} must be {bound}, got {value}", file=sys.stderr)
            return EXIT_ERROR
    try:
        report, _, _ = evaluate_checkpoint(
            args.checkpoint,
            args.data_dir,
            image_size=args.image_size,
            batch_size=args.batch_size,
            workers=args.workers,
            device=args.device,
        )
    except (
        CheckpointError,
        gdata.DataNotFoundError,
        gdata.CorruptImageError,
        DeviceError,
        ValueError,
        WorkerDiedError,
    ) as error:
        # Our own messages: a line, or a line + a fix; a worker's error without the worker's traceback.
        print(f"gnet-evaluate: error: {one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    except (RuntimeError, EOFError, ConnectionError) as error:  # a worker that died, reported wherever we were
        if not (worker_died(error) or (args.workers > 0 and not isinstance(error, RuntimeError))):
            raise
        print(f"gnet-evaluate: error: a data-loading worker process died ({one_line(error)})", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, **report}, allow_nan=False))
    else:
        _print_table(report, args.checkpoint)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
