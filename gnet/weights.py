"""Weights trained by this project, registered the way torchvision registers its own.

    import gnet

    model = gnet.googlenet(weights="IMAGENETTE_CPU")  # or gnet.GoogLeNetWeights.IMAGENETTE_CPU
    weights = gnet.GoogLeNetWeights.DEFAULT
    weights.meta["val_top1"], weights.meta["command"]  # what it scored, and how it was made
    preprocess = weights.transforms()  # the evaluation transform at the training resolution

Each entry is a recorded run of the book (``book/recorded_runs/<run>/``: metrics, run.json, weights). Its ``meta``
has two parts, both written by ``scripts/record_run.py`` and checked by ``tests/test_weights.py``:

* what the run recorded of itself (:data:`RECORDED_FIELDS`: command, commit, device, data, accuracy), also stored
  in the weights file;
* the fields torchvision's own weights carry (:data:`SCHEMA_FIELDS`: ``categories``, ``num_params``, ``min_size``,
  ``recipe``, ``_metrics``, ``_ops``, ``_file_size``), measured from the file by :func:`schema_meta`, so that the
  ecosystem's tools read them as they read torchvision's; and ``_docs``, a sentence for people.

The book re-evaluates the weights on every build.

Adding an entry: train, then ``python scripts/record_run.py runs/<run> book/recorded_runs/<run>``, which writes the
recorded files and prints the SHA-256 and the whole ``meta``; paste them into a new member below, add ``_docs``.

Where the file comes from: in a checkout of the repository (an editable install included) it is read from
``book/recorded_runs/<run>/weights.pt``. A wheel installed from an index has no ``book/`` folder, so the file is
downloaded from the repository (:attr:`Weights.url`) into torch.hub's cache and its SHA-256 checked; where that
fails, :class:`WeightsUnavailableError` says which case it is and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from gnet.checkpoint import Checkpoint, load_checkpoint

__all__ = [
    "GoogLeNetWeights",
    "RECORDED_FIELDS",
    "REPOSITORY_URL",
    "SCHEMA_FIELDS",
    "Weights",
    "WeightsUnavailableError",
    "load_weights",
    "recorded_run_file",
    "repository_file",
    "schema_meta",
]

#: The repository the book is published from (``repository.url`` in _config.yml).
REPOSITORY_URL = "https://github.com/gnet-book/inception-from-first-principles"
_REPO_ROOT = Path(__file__).resolve().parent.parent

#: What a recorded run says of itself (scripts/record_run.py), in the registry and in the weights file alike.
RECORDED_FIELDS = (
    "run",
    "command",
    "git_commit",
    "device",
    "dataset",
    "train_images",
    "val_images",
    "epochs",
    "image_size",
    "dataset_size",
    "val_top1",
    "val_top5",
    "wall_seconds",
)
#: What torchvision's test/test_extended_models.py::test_schema_meta_validation requires of a classification
#: weight, besides ``_docs``; :func:`schema_meta` measures each of them.
SCHEMA_FIELDS = ("categories", "num_params", "min_size", "recipe", "_metrics", "_ops", "_file_size")


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

    def schema_meta(self) -> dict[str, Any]:
        """torchvision's meta fields, measured from this entry's files (:func:`schema_meta`)."""
        return schema_meta(self.run, self.path(), self.run_file("metrics.jsonl"))

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
            raise WeightsUnavailableError(_unavailable(relative, local, url, cached, error)) from None
    if sha256 is not None and (digest := _sha256(cached)) != sha256:
        cached.unlink(missing_ok=True)
        raise WeightsUnavailableError(
            f"{relative}: the file downloaded from {_url(relative)} has SHA-256 {digest}, not the {sha256} this gnet "
            "expects, so it was deleted. The repository's file changed since this gnet was released: upgrade gnet "
            "(pip install --upgrade with the same URL), or clone the repository and use the files it holds."
        )
    return cached


def _unavailable(relative: str, local: Path, url: str, cached: Path, error: BaseException) -> str:
    """Why a repository file could not be had, for the two ways gnet can be installed."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if (_REPO_ROOT / "book").is_dir():  # a checkout (or an editable install) that lacks this one file
        return (
            f"{relative} is missing from this checkout ({local}), and downloading it from {url} failed ({reason}). "
            f"Restore it with `git checkout -- {relative}` in {_REPO_ROOT}, or download it by hand to {cached}."
        )
    return (
        f"gnet is installed as a package, without the book's files, so it downloads {relative} from the book's "
        f"repository; that failed ({reason}) for {url}. Connect this machine to the internet and retry, or download "
        f"the file by hand to {cached}, or clone {REPOSITORY_URL} and work in the clone."
    )


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def schema_meta(
    run: str, weights_file: str | os.PathLike | None = None, metrics_file: str | os.PathLike | None = None
) -> dict[str, Any]:
    """torchvision's meta fields for the weights of recorded run ``run``, measured (:data:`SCHEMA_FIELDS`).

    * ``categories``: the file's class names, in label order; ``num_params``: the rebuilt network's parameters;
    * ``min_size``: the smallest (height, width) the network accepts (:attr:`gnet.GoogLeNet.min_input_size`);
    * ``_metrics``: the run's last validation top-1 and top-5, in percent, keyed by the dataset they were
      measured on (``"Imagenette-160px"``: its whole val split); ``recipe``: the recorded run's folder online;
    * ``_ops``: multiply-adds of one forward pass at the training size, in billions, as :func:`gnet.analysis.count_macs`
      measures them (convolutions and linear layers), rounded to 3 decimals as torchvision rounds its GFLOPS;
    * ``_file_size``: the weights file's size in MB (2**20 bytes, 3 decimals), as torchvision measures its files.

    The files default to the run's own (:func:`recorded_run_file`); ``scripts/record_run.py`` passes new ones.
    """
    from gnet.analysis import count_macs  # fvcore: imported only when asked for

    weights_file = Path(weights_file) if weights_file is not None else recorded_run_file(run, "weights.pt")
    metrics_file = Path(metrics_file) if metrics_file is not None else recorded_run_file(run, "metrics.jsonl")
    loaded = load_checkpoint(weights_file)
    model, size = loaded.model, int(loaded.trained_with("image_size"))
    last = json.loads(metrics_file.read_text().strip().splitlines()[-1])
    return {
        "categories": list(loaded.class_names),
        "num_params": sum(p.numel() for p in model.parameters()),
        "min_size": (model.min_input_size, model.min_input_size),
        "recipe": f"{REPOSITORY_URL}/tree/main/book/recorded_runs/{run}",
        "_metrics": {
            f"Imagenette-{loaded.trained_with('dataset_size', '160px')}": {
                "acc@1": round(100 * last["val_top1"], 3),
                "acc@5": round(100 * last["val_top5"], 3),
            }
        },
        "_ops": round(count_macs(model, (1, 3, size, size)).total / 1e9, 3),
        "_file_size": round(weights_file.stat().st_size / 2**20, 3),
    }


#: Imagenette's ten class names in label order: every registered entry's ``categories`` (measured again by the tests).
IMAGENETTE_CATEGORIES = [
    "tench",
    "English springer",
    "cassette player",
    "chain saw",
    "church",
    "French horn",
    "garbage truck",
    "gas pump",
    "golf ball",
    "parachute",
]


class GoogLeNetWeights(Enum):
    """GoogLeNet weights trained for the book. ``DEFAULT`` is the best one that exists."""

    #: Width 0.25, BatchNorm, no LRN, 128 px: 60 epochs on all of Imagenette, on 2 CPU cores (chapter 7).
    IMAGENETTE_CPU = Weights(
        run="imagenette-cpu",
        sha256="8807d6f3a6a8a1078db1fcb895eb95e5808e45a658951fad4addaa9c56b48dab",
        meta={
            "run": "imagenette-cpu",
            "command": (
                "python -m gnet.train --data-dir $GNET_DATA_DIR/imagenette2-160 --out runs/imagenette-cpu "
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
            # Measured by schema_meta("imagenette-cpu"); tests/test_weights.py measures them again.
            "categories": IMAGENETTE_CATEGORIES,
            "num_params": 657110,
            "min_size": (65, 65),
            "recipe": f"{REPOSITORY_URL}/tree/main/book/recorded_runs/imagenette-cpu",
            "_metrics": {"Imagenette-160px": {"acc@1": 86.217, "acc@5": 98.904}},
            "_ops": 0.04,
            "_file_size": 1.364,
            "_docs": (
                "A quarter-width GoogLeNet with BatchNorm and without LRN, trained in chapter 7 for 60 epochs on "
                "Imagenette's 9,469 training images at 128 px, on 2 CPU cores. It knows only Imagenette's ten "
                "classes: to it, every image is one of them."
            ),
        },
    )
    #: Full width, BatchNorm, no LRN, 128 px, bf16 autocast: 12 epochs on all of Imagenette, on one CPU thread of an
    #: AVX512-BF16 processor (chapter 7); stored in fp16 without the auxiliary heads.
    IMAGENETTE_CPU_FULL = Weights(
        run="imagenette-cpu-full",
        sha256="61677ff6bef907e5b568318320ade9074eee9ceac57cde0f54e0cb48b0b70661",
        meta={
            "run": "imagenette-cpu-full",
            "command": (
                "python -m gnet.train --data-dir $GNET_DATA_DIR/imagenette2-160 --out runs/imagenette-cpu-full "
                "--epochs 20 --batch-size 64 --image-size 128 --width 1.0 --batch-norm --no-lrn "
                "--label-smoothing 0.1 --lr 0.2 --workers 1 --no-progress --cache"
            ),
            "git_commit": "9d802162e3aca8dc6ce95430267566dabd4e9c67-dirty",
            "device": "cpu: AMD EPYC, AVX512-BF16 (1 threads)",
            "dataset": "Imagenette v2, 160px",
            "train_images": 9469,
            "val_images": 3925,
            "epochs": 12,
            "image_size": 128,
            "dataset_size": "160px",
            "val_top1": 0.769171974522293,
            "val_top5": 0.9671337579617835,
            "wall_seconds": 2781.3,
            # Measured by schema_meta("imagenette-cpu-full"); tests/test_weights.py measures them again.
            "categories": IMAGENETTE_CATEGORIES,
            "num_params": 5991082,
            "min_size": (1, 1),
            "recipe": f"{REPOSITORY_URL}/tree/main/book/recorded_runs/imagenette-cpu-full",
            "_metrics": {"Imagenette-160px": {"acc@1": 76.917, "acc@5": 96.713}},
            "_ops": 0.516,
            "_file_size": 11.556,
            "_docs": (
                "The paper's full-width GoogLeNet with BatchNorm and without LRN, trained in chapter 7 for 12 epochs "
                "on Imagenette's 9,469 training images at 128 px in bf16 autocast, on one CPU thread. It knows only "
                "Imagenette's ten classes: to it, every image is one of them."
            ),
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
