"""Figures of a training run: its curves, its per-class accuracy, its confusion matrix, its predictions.

They read what :mod:`gnet.train` wrote (``gnet.train.read_metrics``) and what :mod:`gnet.evaluate` measured,
so a chapter shows exactly the run it describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from gnet import data as gdata
from gnet.evaluate import Predictions

__all__ = ["load_recorded", "plot_confusion_matrix", "plot_curves", "plot_per_class", "show_predictions"]


def load_recorded(run: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The metrics (one dict per epoch) and ``run.json`` of a recorded run, ``book/recorded_runs/<run>/``."""
    from gnet.train import read_metrics, read_run_info
    from gnet.weights import recorded_run_file

    folder = recorded_run_file(run, "metrics.jsonl").parent
    recorded_run_file(run, "run.json")  # the same folder, fetched if this is not a checkout
    return read_metrics(folder), read_run_info(folder)


def plot_curves(metrics: Sequence[dict[str, Any]], *, title: str | None = None, lr: bool = False):
    """Loss and accuracy against epoch, train beside val, and with ``lr=True`` the learning rate.

    Returns ``(fig, axes)``: ``(loss_ax, accuracy_ax)``, plus ``lr_ax`` with ``lr=True``.
    """
    if not metrics:
        raise ValueError("metrics is empty: the run has no finished epoch yet")
    epochs = [m["epoch"] for m in metrics]
    columns = 3 if lr else 2
    fig, axes = plt.subplots(1, columns, figsize=(3.6 * columns + 0.6, 3.4), constrained_layout=True)
    loss_ax, acc_ax = axes[0], axes[1]
    marker = "" if len(epochs) > 20 else "o"
    loss_ax.plot(epochs, [m["train_loss"] for m in metrics], marker=marker, label="train (main + 0.3 × each aux)")
    loss_ax.plot(epochs, [m["val_loss"] for m in metrics], marker=marker, label="val (main classifier)")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss (nats)", title="loss")
    if "train_top1" in metrics[0]:
        acc_ax.plot(epochs, [100 * m["train_top1"] for m in metrics], marker=marker, label="train top-1 (augmented)")
    acc_ax.plot(epochs, [100 * m["val_top1"] for m in metrics], marker=marker, label="val top-1")
    acc_ax.plot(epochs, [100 * m["val_top5"] for m in metrics], linestyle="--", label="val top-5")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 100), title="accuracy")
    if lr:
        axes[2].plot(epochs, [m["lr"] for m in metrics], color="0.3")
        axes[2].set(xlabel="epoch", ylabel="learning rate (last step of the epoch)", title="schedule")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    return fig, tuple(axes)


def plot_per_class(per_class: Mapping[str, Mapping[str, float]], *, title: str | None = None):
    """Horizontal bars of each class's top-1 accuracy (``gnet.evaluate`` report's ``per_class``)."""
    names = list(per_class)
    accuracy = [100 * per_class[name]["top1"] for name in names]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(names) + 1.0), constrained_layout=True)
    bars = ax.barh(names, accuracy, color="#0072B2")
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="top-1 accuracy (%)")
    ax.bar_label(
        bars, [f"{a:.1f} % of {int(per_class[n]['images'])}" for a, n in zip(accuracy, names, strict=True)], fontsize=8
    )
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig, ax


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
