"""Weights trained by this project, registered the way torchvision registers its own.

    import gnet

    model = gnet.googlenet(weights="IMAGENETTE_CPU")  # or gnet.GoogLeNetWeights.IMAGENETTE_CPU
    weights = gnet.GoogLeNetWeights.DEFAULT
    weights.meta["val_top1"], weights.meta["command"]  # what it scored, and how it was made
    preprocess = weights.transforms()  # the evaluation transform at the training resolution

Each entry is a recorded run of the book (``book/recorded_runs/<run>/``: metrics, run.json, weights). Its
numbers here are copied from that run's files, and the tests check that they agree; the book re-evaluates the
weights on every build.

Where the file comes from: in a checkout of the repository (an editable install included) it is read from
``book/recorded_runs/<run>/weights.pt``. A wheel installed from an index has no ``book/`` folder, so the file is
downloaded from the repository (:attr:`Weights.url`) into torch.hub's cache and its SHA-256 checked; offline that
raises :class:`WeightsUnavailableError` saying what to do.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from gnet.checkpoint import Checkpoint, load_checkpoint

__all__ = [
    "GoogLeNetWeights",
    "Weights",
    "WeightsUnavailableError",
    "REPOSITORY_URL",
    "load_weights",
    "recorded_run_file",
    "repository_file",
]

#: The repository the book is published from (``repository.url`` in _config.yml).
REPOSITORY_URL = "https://github.com/gnet-book/inception-from-first-principles"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class WeightsUnavailableError(FileNotFoundError):
    """The weights file is neither in this checkout nor downloadable."""


@dataclass(frozen=True)
class Weights:
    """One registered weights file: where it lives, its checksum, and what the run that made it recorded."""

    run: str  # folder under book/recorded_runs/
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_path(self) -> str:
        return f"book/recorded_runs/{self.run}/weights.pt"

    @property
    def url(self) -> str:
        return _url(self.relative_path)

    def path(self) -> Path:
        """The weights file on disk: the checkout's copy, else a verified download in torch.hub's cache."""
        return _fetch(self.relative_path, self.sha256)

    def run_file(self, name: str) -> Path:
        """``metrics.jsonl`` or ``run.json`` of the recorded run, from the checkout or downloaded."""
        return recorded_run_file(self.run, name)

    def transforms(self):
        """The evaluation transform the recorded accuracy was measured with."""
        from gnet.data import eval_transform  # torchvision: imported only when asked for

        return eval_transform(self.meta["image_size"])


def recorded_run_file(run: str, name: str) -> Path:
    """A file of one of the book's recorded runs, ``book/recorded_runs/<run>/<name>``: the checkout's copy, else
    downloaded once from the book's repository into torch.hub's cache."""
    return repository_file(f"book/recorded_runs/{run}/{name}")


def repository_file(relative: str) -> Path:
    """Any committed file of the book's repository (``benchmarks/results/...``), as :func:`recorded_run_file`
    finds one. Raises :class:`WeightsUnavailableError` when it is neither here nor downloadable."""
    return _fetch(relative)


def _url(relative: str) -> str:
    return f"{REPOSITORY_URL}/raw/main/{relative}"


def _fetch(relative: str, sha256: str | None = None) -> Path:
    """``relative`` (a path in the repository) from this checkout, else downloaded once into torch.hub's cache."""
    local = _REPO_ROOT / relative
    if local.is_file():
        return local
    cached = Path(torch.hub.get_dir()) / "gnet" / relative
    if not cached.is_file():
        url = _url(relative)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(cached), progress=False)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            raise WeightsUnavailableError(
                f"{relative} is not in this checkout ({local}) and the download from {url} failed ({error}). "
                "Clone the repository, or download the file and use gnet.load_checkpoint(path)."
            ) from None
    if sha256 is not None and (digest := _sha256(cached)) != sha256:
        cached.unlink(missing_ok=True)
        raise WeightsUnavailableError(f"{relative}: the downloaded file's SHA-256 is {digest}, not {sha256}")
    return cached


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class GoogLeNetWeights(Enum):
    """GoogLeNet weights trained for the book. ``DEFAULT`` is the best one that exists."""

    #: Width 0.25, BatchNorm, no LRN, 128 px: 60 epochs on all of Imagenette, on 2 CPU cores (chapter 7).
    IMAGENETTE_CPU = Weights(
        run="imagenette-cpu",
        sha256="93272b4fca53b3be83e36bf2f7ca75988fb22b0248f08184bb637783370f0196",
        meta={
            "run": "imagenette-cpu",
            "command": (
                "python -m gnet.train --data-dir /work/shared/data/imagenette2-160 --out runs/imagenette-cpu "
                "--epochs 60 --batch-size 64 --image-size 128 --width 0.25 --batch-norm --no-lrn "
                "--label-smoothing 0.1 --lr 0.2 --workers 1 --no-progress"
            ),
            "git_commit": "cc1e864b2237ce3bdf323aca16cc92d0dddc876e",
            "device": "cpu: AMD EPYC (2 threads)",
            "dataset": "Imagenette v2, 160px",
            "train_images": 9469,
            "val_images": 3925,
            "epochs": 60,
            "image_size": 128,
            "dataset_size": "160px",
            "val_top1": 0.8621656050955414,
            "val_top5": 0.9890445859872612,
            "wall_seconds": 3012.8,
        },
    )
    DEFAULT = IMAGENETTE_CPU

    @property
    def meta(self) -> dict[str, Any]:
        return self.value.meta

    def transforms(self):
        return self.value.transforms()

    def path(self) -> Path:
        return self.value.path()

    def run_file(self, name: str) -> Path:
        return self.value.run_file(name)

    def load(self, *, device: str | torch.device = "cpu") -> Checkpoint:
        """The network with these weights (eval mode) and what the file records of it."""
        return load_checkpoint(self.path(), device=device)

    @classmethod
    def resolve(cls, weights: GoogLeNetWeights | str) -> GoogLeNetWeights:
        """An entry from itself or its name (``"IMAGENETTE_CPU"``, ``"DEFAULT"``); ValueError otherwise."""
        if isinstance(weights, cls):
            return weights
        if isinstance(weights, str) and weights in cls.__members__:
            return cls[weights]
        raise ValueError(f"weights must be one of {', '.join(cls.__members__)}, got {weights!r}")


def load_weights(
    spec: GoogLeNetWeights | str | os.PathLike | Checkpoint, *, device: str | torch.device = "cpu"
) -> Checkpoint:
    """A registered weight (``GoogLeNetWeights.DEFAULT``, or by name: ``"DEFAULT"``), or any checkpoint file."""
    if isinstance(spec, GoogLeNetWeights):
        return spec.load(device=device)
    if isinstance(spec, Checkpoint):
        return spec._replace(model=spec.model.to(device).eval())
    if isinstance(spec, str) and spec in GoogLeNetWeights.__members__:
        return GoogLeNetWeights[spec].load(device=device)
    return load_checkpoint(spec, device=device)
