"""Look at a training run: read its files, plot its curves, and inspect the trained model's predictions.

Everything reads what :mod:`gnet.train` wrote into a run folder (``metrics.jsonl``, ``run.json``, ``last.pt``),
so a chapter shows exactly the run it describes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch

from gnet import data as gdata
from gnet import train as gtrain

__all__ = [
    "Predictions",
    "confusion_matrix",
    "load_model",
    "plot_confusion_matrix",
    "plot_curves",
    "predict",
    "read_metrics",
    "read_run_info",
    "show_predictions",
]


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of ``run_dir/metrics.jsonl``, in order."""
    path = Path(run_dir) / gtrain.METRICS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/run.json``: config, device, versions, start time."""
    return json.loads((Path(run_dir) / gtrain.RUN_NAME).read_text())


def plot_curves(metrics: Sequence[dict[str, Any]], *, title: str | None = None):
    """Loss and accuracy against epoch, train beside val. Returns ``(fig, (loss_ax, accuracy_ax))``."""
    if not metrics:
        raise ValueError("metrics is empty: the run has no finished epoch yet")
    epochs = [m["epoch"] for m in metrics]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    loss_ax.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train (main + 0.3 × each aux)")
    loss_ax.plot(epochs, [m["val_loss"] for m in metrics], "s-", label="val (main classifier)")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss (nats)")
    loss_ax.set_title("loss")
    loss_ax.legend()
    if "train_top1" in metrics[0]:
        acc_ax.plot(epochs, [100 * m["train_top1"] for m in metrics], "o-", label="train top-1 (augmented)")
    acc_ax.plot(epochs, [100 * m["val_top1"] for m in metrics], "s-", label="val top-1")
    acc_ax.plot(epochs, [100 * m["val_top5"] for m in metrics], "^--", label="val top-5")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy (%)")
    acc_ax.set_ylim(0, 100)
    acc_ax.set_title("accuracy")
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs if len(epochs) <= 12 else ax.get_xticks())
    if title:
        fig.suptitle(title)
    return fig, (loss_ax, acc_ax)


def load_model(run_dir_or_checkpoint: str | os.PathLike, *, device: str | torch.device = "cpu"):
    """The trained model of a run, in eval mode. Returns ``(model, config, classes)``."""
    path = Path(run_dir_or_checkpoint)
    if path.is_dir():
        path = path / gtrain.CHECKPOINT_NAME
    state = gtrain.load_checkpoint(path)
    known = {f.name for f in dataclasses.fields(gtrain.TrainConfig)}
    config = gtrain.TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    classes = list(state["classes"])
    model = gtrain.build_model(config, num_classes=len(classes))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config, classes


class Predictions(NamedTuple):
    targets: np.ndarray  # true labels
    predictions: np.ndarray  # arg-max labels
    probabilities: np.ndarray  # softmax, one row per image


def predict(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> Predictions:
    """Run ``model`` (eval mode) over ``dataset`` in order."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.eval()
    targets, probabilities = [], []
    with torch.inference_mode():
        for images, labels in loader:
            probabilities.append(torch.softmax(model(images.to(device)).float(), dim=1).cpu())
            targets.append(labels)
    probs = torch.cat(probabilities).numpy()
    return Predictions(torch.cat(targets).numpy(), probs.argmax(axis=1), probs)


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts, ``matrix[true, predicted]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predictions)), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], *, title: str | None = None):
    """Row-normalised confusion matrix (each row: where that class's images went), counts written in."""
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    size = 1.2 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), constrained_layout=True)
    image = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="share of the true class (%)")
    ax.grid(False)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8, color=color)
    if title:
        ax.set_title(title)
    return fig, ax


def show_predictions(
    dataset: torch.utils.data.Dataset,
    result: Predictions,
    class_names: Sequence[str],
    *,
    indices: Sequence[int] | None = None,
    columns: int = 6,
):
    """A grid of images with the predicted class (and its probability) over the true one; red when wrong."""
    if indices is None:
        indices = np.linspace(0, len(dataset) - 1, num=min(12, len(dataset))).round().astype(int)
    rows = (len(indices) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.2 * rows), squeeze=False, layout="constrained")
    mean = torch.tensor(gdata.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(gdata.IMAGENET_STD).view(3, 1, 1)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices, strict=False):
        image, _ = dataset[int(index)]
        ax.imshow((image * std + mean).clamp(0, 1).permute(1, 2, 0).numpy())
        predicted, true = int(result.predictions[index]), int(result.targets[index])
        ax.set_title(
            f"{class_names[predicted]} {100 * result.probabilities[index, predicted]:.0f} %\n"
            f"(true: {class_names[true]})",
            fontsize=8,
            color="black" if predicted == true else "crimson",
        )
    return fig
