"""Train GoogLeNet on Imagenette (or any ``train/<class>``, ``val/<class>`` folder): a resumable loop, a CLI.

    python -m gnet.train --data-dir DIR --epochs N --batch-size B --image-size S --out RUN_DIR [--resume] ...
    gnet-train --help

The recipe follows the paper where it says something (SGD with momentum 0.9, the learning rate times 0.96
every 8 epochs, auxiliary losses weighted 0.3, 8-100 % area crops) and says where it doesn't (the paper gives
no initial learning rate, batch size or epoch count; we use no Polyak averaging, no photometric distortions).

What a run writes into RUN_DIR:

* ``metrics.jsonl``: one JSON object per finished epoch (accuracies are fractions in [0, 1]);
* ``run.json``: config, device, library versions, start time (once per run; resumes are appended);
* ``last.pt``: everything needed to continue, saved atomically after every epoch and on Ctrl-C / SIGTERM.
  It holds only tensors and plain Python values, so ``torch.load(path, weights_only=True)`` reads it, and it
  rebuilds its own network: ``gnet.load_checkpoint("RUN_DIR/last.pt")`` (see :mod:`gnet.checkpoint`).

The code reads as torchvision's reference scripts do: :func:`setup` builds everything a run needs,
:func:`train_one_epoch` makes one pass over the training set, :func:`gnet.evaluate.evaluate` scores the
validation set, and :func:`train` is the outline that ties them together and checkpoints after each epoch.

Exit codes of :func:`main`: 0 done, 2 bad arguments / missing or corrupt data / unusable checkpoint,
3 the training or validation loss became NaN or infinite (the last good checkpoint is kept), 4 another process of
a torchrun job failed or stopped answering (the last checkpoint is kept), 130 interrupted by Ctrl-C, 143 by
SIGTERM and 129 by SIGHUP (a checkpoint was saved; ``--resume`` continues). A second stop signal aborts with the
same code, after any file write in progress; a stop during set-up ends the run at once (nothing to save yet).

Several processes: under ``torchrun --nproc-per-node N -m gnet.train ...`` (and its multi-node form) the same
command trains one model on N processes (:mod:`gnet.distributed`: DDP, ``nccl`` on CUDA, ``gloo`` on CPU).
``--batch-size`` stays the global batch, split evenly over the ranks, so a recipe means the same at any world
size and needs no learning-rate rescaling; the steps, the schedule and every batch's images are those of one
process. Rank 0 alone reads and writes the run folder and prints; the validation set is split so that every
image counts once. A resume on the same number of processes is exact wherever one process's is (below): rank 0's
random state travels in the checkpoint, and every other rank seeds its generator from (seed, rank, epoch, step)
before each step. A checkpoint does not record the world size, so a run may also resume on another number of
processes: it continues from the same state (weights, momentum, position, schedule, rank 0's random state), but
then follows neither size's uninterrupted run exactly. Each rank computes on its part of the batch, which rounds
otherwise (without dropout and BatchNorm the weights stay within a relative 1e-5 of one process's over the tests'
few steps), each rank draws its own dropout masks, and BatchNorm normalises each rank's part (its running
statistics are rank 0's).

The decoded cache (``--cache``, :mod:`gnet.cache`): every image decoded once into a memory-mapped uint8 file, and
the random crops, flips and normalisation applied to whole batches on the training device (:mod:`gnet.augment`).
It is opt-in: it writes about 0.86 GB for Imagenette-160 into the user's cache folder, and its crops are drawn by
another random stream than the workers' (same distribution), so a recorded run's command keeps its numbers.

Safety of the run folder: a run holds an exclusive lock on ``RUN_DIR/.lock`` while it writes, so a second run into
the same folder is refused, naming the first. The lock is held on the open file and checked before every write: a
run whose lock file was deleted or replaced stops without writing more (exit 2). Every file is replaced atomically
(``os.replace`` replaces a link placed there instead of following it) and the lock file is opened with
``O_NOFOLLOW``, so nothing is written outside the folder. A fresh run into a folder that holds files but no
checkpoint (a run that failed before its first epoch ended) moves them aside into ``RUN_DIR/abandoned-<time>/``.

Extending a run: ``--resume`` with a larger ``--epochs`` (the only recipe setting a resume may change) continues a
finished or unfinished run. The schedule is then the one a run planned at the new length follows, from the step
reached: the ``paper`` schedule goes on seamlessly; ``cosine`` and ``onecycle`` raise the learning rate back to
their value at that point of the longer plan (a warm restart, printed when the run resumes). The epochs already
done keep their metrics; run.json records the change under ``resumed_at``. Fewer epochs than are done is refused.

Reproducibility: every epoch's data order is a function of (seed, epoch) alone; the RNG states (torch, CUDA,
numpy, Python) travel in the checkpoint. On CPU with ``--workers 0`` a run that is killed and resumed ends
with exactly the metrics of an uninterrupted one (timing fields aside), also when it was interrupted
mid-epoch or during validation (the checkpoint then holds the random state from before validation, which draws
from torch's generator when it opens its loader). With workers, resuming from an epoch boundary is exact too; a
mid-epoch resume re-deals augmentations to the workers. A resume whose data (the images' names, sizes and labels),
kind of device, ``--workers`` (without ``--cache``), ``--compile`` or ``--fuse-1x1`` changed is refused unless
``--allow-changed-inputs``; run.json's ``resumed_at`` records every change a resume makes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import gnet
from gnet import cache as gcache
from gnet import data as gdata
from gnet import distributed
from gnet import rivals as grivals
from gnet._process import (
    RunFolderError,
    RunInUseError,
    RunLock,
    StopNow,
    StopRequest,
    WorkerDiedError,
    detach_worker,
    exit_code,
    one_line,
    printable_output,
    start_workers,
    worker_died,
    worker_failures,
)
from gnet._seed import derived_seed
from gnet._validate import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_IMAGE_SIZE,
    MAX_LR,
    MAX_SEED,
    MAX_WIDTH,
    MAX_WORKERS,
    finite_number,
    int_at_least,
    one_of,
)
from gnet.augment import DecodedLoader
from gnet.checkpoint import CheckpointError, atomic_write, model_state, read_checkpoint, save_checkpoint, write_json
from gnet.device import (
    DEVICES,
    PRECISIONS,
    DeviceError,
    autocast,
    device_name,
    precision_choice,
    resolve_device,
    to_device,
)
from gnet.distributed import SINGLE, DistributedError, World
from gnet.evaluate import EvaluationSums, evaluate, evaluation_sums, topk_correct
from gnet.provenance import command_line, git_commit, versions
from gnet.table1 import PAPER_DEPTH

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "ConfigMismatchError",
    "DivergedError",
    "EpochTally",
    "Run",
    "TrainConfig",
    "TrainError",
    "RunInUseError",
    "TrainingInterrupted",
    "build_model",
    "build_parser",
    "config_from_args",
    "default_lr",
    "lr_factor",
    "main",
    "read_metrics",
    "read_run_info",
    "setup",
    "train",
    "train_one_epoch",
]

SCHEDULES = ("paper", "cosine", "onecycle")
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"
RUN_NAME = "run.json"
EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_PEER_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 3, 4, 130, 143
EXIT_HANGUP = 129  # SIGHUP (the terminal or SSH session went away): a checkpoint was saved, as for SIGTERM
TIMING_KEYS = ("images_per_s", "seconds")  # the only metrics that may differ between identical runs

# Fields a --resume may change: where things are and how they run, not the recipe. Each change is recorded in
# run.json's resumed_at. Those in RESUME_BREAKS_EXACTNESS change the numbers a resumed run computes (another
# device or kernel, another random stream for the augmentation), so they are refused unless --allow-changed-inputs.
RESUME_MAY_CHANGE = frozenset(
    {
        "data_dir",
        "download",
        "out",
        "workers",
        "device",
        "compile",
        "progress",
        "grad_norms_every",
        "cache_dir",
        "fuse_1x1",
        "dist_timeout",
    }
)
RESUME_BREAKS_EXACTNESS = frozenset({"compile", "fuse_1x1", "workers"})
# What a run reads besides its settings (see _inputs); all but the folder's name change the numbers when they change.
INPUTS_BREAKING_EXACTNESS = frozenset({"train_images", "val_images", "train_files", "val_files", "device_type"})


def default_lr(batch_size: int) -> float:
    """The learning rate a run gets without ``--lr``: 0.02 at batch 64, scaled linearly with the batch size.

    BVLC's Caffe GoogLeNet trained with 0.01 at batch 32 (the paper gives no rate); the linear scaling rule (Goyal
    et al. 2017, chapter 8) keeps the step per image the same at any batch, so a first run with ``--batch-size 8``
    takes 0.0025, not a rate meant for 128 images.
    """
    return 0.02 * batch_size / 64


def _opt(default: Any, help: str) -> Any:  # noqa: A002 - "help" is what argparse calls it
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field is a CLI flag (``batch_size`` -> ``--batch-size``)."""

    data_dir: str | None = _opt(
        None,
        "folder with train/ and val/, or one holding imagenette2-<size>/; used alone when given "
        "[$GNET_DATA_DIR, then ~/.cache/gnet/data]",
    )
    dataset_size: str = _opt("160px", "which Imagenette archive to look for or download: 160px, 320px or full")
    download: bool = _opt(
        False,
        "download Imagenette (torchvision) if it is not found, into --data-dir, else $GNET_DATA_DIR, "
        "else ~/.cache/gnet/data",
    )
    out: str = _opt("runs/googlenet", "run folder for metrics.jsonl, run.json and last.pt")
    epochs: int = _opt(30, "number of epochs (the paper gives none); with --resume, a larger value extends the run")
    batch_size: int = _opt(
        128,
        "images per optimizer step, over all processes under torchrun (the global batch; the paper gives none; "
        "at most 8192)",
    )
    image_size: int = _opt(
        128, "training crop in pixels (at most 1024); eval resizes to round(size/0.875) and centre-crops"
    )
    subset_per_class: int | None = _opt(None, "use only this many images per class (train and val) [all]")
    val_subset_per_class: int | None = _opt(None, "override subset_per_class for val [same as train]")
    seed: int = _opt(0, "seed for initialisation, data order and augmentation (0 to 2**32 - 1)")
    workers: int = _opt(
        min(4, max(0, (os.cpu_count() or 1) - 1)),
        "DataLoader worker processes (0: load in the main process) [one core is left for the model: "
        "on 2 cores, more workers than 1 only compete with it]",
    )
    device: str = _opt("auto", "auto (cuda, then mps, then cpu), cpu, cuda or mps")
    precision: str = _opt(
        "auto",
        "auto: bf16 autocast on CUDA (fp16 + GradScaler where bf16 is slow) and on CPUs with AMX or AVX512-BF16, "
        "else fp32",
    )
    compile: bool = _opt(False, "torch.compile the model (CUDA; first epoch is slower)")
    fuse_1x1: bool = _opt(
        False,
        "compute each block's three input 1×1 convolutions as one (same weights, results equal to float rounding; "
        "on this project's 2-core CPU it was slower, see benchmarks/results; untried on GPUs)",
    )
    # A boolean that is on by default is a --no-<name> flag, and its help says what that flag does.
    aux: bool = _opt(True, "train without the two auxiliary classifiers (the paper trains with them)")
    aux_weight: float = _opt(0.3, "weight of each auxiliary loss (paper: 0.3)")
    label_smoothing: float = _opt(0.0, "label smoothing on every head (not in the paper; Inception v3 used 0.1)")
    batch_norm: bool = _opt(False, "BatchNorm after every conv (not in the paper; Ioffe & Szegedy 2015)")
    lrn: bool = _opt(True, "drop the stem's LocalResponseNorm (the paper has it; BN-Inception dropped it)")
    width: float = _opt(1.0, "multiply every channel count by this (1.0 is the paper's network; at most 4)")
    shape: str = _opt(
        "googlenet",
        "the network's shape: googlenet, or a rival spending the recorded network's budget another way "
        "(gnet.rivals; equal MACs at --width 0.25 --batch-norm --no-lrn --image-size 128)",
    )
    dropout: float = _opt(0.4, "dropout before the classifier (paper: 0.4; the auxiliary heads keep their 0.7)")
    schedule: str = _opt("cosine", "paper (x0.96 every 8 epochs), cosine (with warmup) or onecycle")
    lr: float | None = _opt(
        None,
        "peak learning rate [0.02 × batch size / 64: BVLC Caffe GoogLeNet's 0.01 at batch 32, scaled linearly with "
        "the batch (Goyal et al. 2017); 0.04 at the default batch 128]",
    )
    momentum: float = _opt(0.9, "SGD momentum (paper: 0.9)")
    weight_decay: float = _opt(2e-4, "L2 weight decay on all parameters (BVLC Caffe GoogLeNet: 2e-4)")
    warmup_epochs: float = _opt(2.0, "linear warmup for the cosine schedule, in epochs (paper schedule: none)")
    cache: bool = _opt(
        False,
        "decode every image once into a uint8 cache file (memory-mapped; about 0.86 GB for Imagenette at "
        "--image-size 128) and crop, flip and normalise batches on the training device instead of in workers",
    )
    cache_dir: str | None = _opt(
        None, f"where --cache keeps decoded images [${gcache.CACHE_ENV_VAR}, else ~/.cache/gnet/decoded]"
    )
    sync_batch_norm: bool = _opt(
        False, "under torchrun with --batch-norm: normalise over the global batch (SyncBatchNorm), not each rank's"
    )
    dist_timeout: float = _opt(120.0, "under torchrun: seconds a process waits for the others before the job fails")
    progress: bool = _opt(True, "hide the progress bars (shown by default when attached to a terminal)")
    grad_norms_every: int = _opt(
        0,
        "every N optimizer steps, log each stage's gradient norm under the main loss and under the auxiliary "
        "losses into metrics.jsonl (0: off). Training is unchanged; each logged step costs two extra backward passes",
    )

    def __post_init__(self) -> None:
        # Every bound is documented in gnet._validate: a hostile value is one line, never an overflow or OOM kill.
        int_at_least("epochs", self.epochs, 1, maximum=MAX_EPOCHS)
        int_at_least("batch_size", self.batch_size, 1, maximum=MAX_BATCH_SIZE)
        int_at_least("image_size", self.image_size, 1, maximum=MAX_IMAGE_SIZE)
        int_at_least("workers", self.workers, 0, maximum=MAX_WORKERS)
        int_at_least("seed", self.seed, 0, maximum=MAX_SEED)
        int_at_least("grad_norms_every", self.grad_norms_every, 0)
        int_at_least("subset_per_class", self.subset_per_class, 1, optional=True)
        int_at_least("val_subset_per_class", self.val_subset_per_class, 1, optional=True)
        if self.lr is None:  # the default follows the batch: a small batch must not take a large batch's rate
            object.__setattr__(self, "lr", default_lr(self.batch_size))
        finite_number("lr", self.lr, low_open=True, maximum=MAX_LR)
        finite_number("width", self.width, low_open=True, maximum=MAX_WIDTH)
        finite_number("momentum", self.momentum, high=1.0)
        finite_number("weight_decay", self.weight_decay, maximum=1.0)
        finite_number("aux_weight", self.aux_weight, maximum=100.0)
        finite_number("label_smoothing", self.label_smoothing, high=0.99)
        finite_number("warmup_epochs", self.warmup_epochs, maximum=MAX_EPOCHS)
        finite_number("dropout", self.dropout, high=0.99)
        finite_number("dist_timeout", self.dist_timeout, low_open=True, maximum=86_400)
        if self.cache_dir is not None and not self.cache_dir.strip():
            raise ValueError("cache_dir must name a folder, got an empty string (omit it for the default)")
        object.__setattr__(self, "out", os.path.expanduser(self.out))  # "~/runs/x" as a shell would expand it
        one_of("schedule", self.schedule, SCHEDULES)
        one_of("shape", self.shape, tuple(grivals.RIVALS))
        if self.fuse_1x1 and grivals.switches(self.shape).get("block", "inception") != "inception":
            raise ValueError(f"--fuse-1x1 fuses Inception blocks' 1×1 convolutions; --shape {self.shape} has none")
        one_of("device", self.device, DEVICES)
        one_of("precision", self.precision, PRECISIONS)
        one_of("dataset_size", self.dataset_size, tuple(gdata.IMAGENETTE_SIZES))
        if not self.out:
            raise ValueError("out must name a run folder, got an empty string")


# ------------------------------------------------------------ errors
class TrainError(Exception):
    """A run that cannot start or continue; the message says why and what to do."""


class ConfigMismatchError(TrainError, ValueError):
    """--resume with settings that differ from the checkpoint's, or a setting the data or model can't take."""


class DivergedError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class TrainingInterrupted(TrainError):
    """Ctrl-C or SIGTERM: a checkpoint was saved, ``--resume`` continues."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum


# ------------------------------------------------------------ schedule
def lr_factor(schedule: str, step: int, *, steps_per_epoch: int, total_steps: int, warmup_steps: int) -> float:
    """The multiplier on the base learning rate for optimizer step ``step`` (0-based).

    1. ``paper``: x0.96 after every 8 epochs, no warmup (paper, section 6).
    2. ``cosine``: linear warmup over ``warmup_steps`` from 1/warmup to 1, then half a cosine down to 0.
    3. ``onecycle``: up from 1/25 to 1 over the first 30 % of steps, then cosine down to 1/25 000 (Smith &
       Topin 2017; the learning rate only, momentum stays fixed).
    """
    if schedule == "paper":
        return 0.96 ** ((step // steps_per_epoch) // 8)
    if schedule == "cosine":
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if schedule == "onecycle":
        start, end, rise = 1 / 25, 1 / 25_000, max(1, round(0.3 * total_steps))
        if step < rise:
            return start + (1.0 - start) * step / rise
        progress = (step - rise) / max(1, total_steps - rise)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


# ------------------------------------------------------------ model
def build_model(config: TrainConfig, num_classes: int) -> gnet.GoogLeNet:
    """The paper's GoogLeNet with the config's switches (aux heads, BatchNorm, LRN, width, shape)."""
    return gnet.googlenet(
        num_classes=num_classes,
        aux_logits=config.aux,
        batch_norm=config.batch_norm,
        lrn=config.lrn,
        width=config.width,
        dropout=config.dropout,
        fuse_1x1=config.fuse_1x1,
        **grivals.switches(config.shape),
    )


# ------------------------------------------------------------ RNG
def _epoch_seed(seed: int, epoch: int) -> int:
    return derived_seed(seed, epoch)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": list(py_internal), "gauss": py_gauss},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))


# ------------------------------------------------------------ run folder
def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of ``run_dir/metrics.jsonl``, in order."""
    path = Path(run_dir) / METRICS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/run.json``: config, device, versions, command, start time, resumes."""
    path = Path(run_dir) / RUN_NAME
    if not path.is_file() or path.stat().st_size > 64 * 2**20:  # a device or a huge file is never read whole
        raise ValueError(f"{path} is damaged: not a plain JSON file of at most 64 MiB")

    def no_constants(name: str) -> Any:  # json.loads takes NaN and Infinity, which strict JSON (and gnet) never write
        raise ValueError(f"{path} is damaged: it holds {name}, which is not JSON")

    try:
        info = json.loads(path.read_text(), parse_constant=no_constants)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is damaged: not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is damaged: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise ValueError(f"{path} is damaged: expected a JSON object with a 'config' object, got {str(info)[:60]}")
    if not isinstance(info.get("resumed_at", []), list):
        raise ValueError(f"{path} is damaged: 'resumed_at' must be a list")
    return info


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(record, allow_nan=False) + "\n" for record in history)
    atomic_write(path, lambda handle: handle.write(text), mode="w")


# ------------------------------------------------------------ the state of a run
@dataclass
class EpochTally:
    """Running sums of the epoch in progress; they travel in a mid-epoch checkpoint."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0
    grad_norms: list[dict[str, Any]] = field(default_factory=list)  # see grad_norms_every


@dataclass
class Run:
    """Everything a run needs, built by :func:`setup`; ``epoch`` and ``batch`` say where it stands."""

    config: TrainConfig
    device: torch.device
    precision: str
    train_ds: gdata.ImageFolderDataset | gcache.DecodedSplit  # JPEG files, or the decoded cache (--cache)
    val_loader: torch.utils.data.DataLoader | DecodedLoader
    model: gnet.GoogLeNet
    forward: nn.Module  # the model, or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    steps_per_epoch: int
    world: World = SINGLE  # under torchrun: this process's rank (see gnet.distributed)
    precision_reason: str = ""  # why this precision: gnet.device.precision_choice
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0  # epochs finished
    batch: int = 0  # steps done in the epoch after that (0 at an epoch boundary)
    tally: EpochTally = field(default_factory=EpochTally)
    last_saved: str = ""  # where the newest checkpoint stands, for messages
    inputs: dict[str, Any] = field(default_factory=dict)  # what the run reads (see _inputs): a resume compares them
    lock: RunLock | None = None  # the run folder's lock (rank 0 of a CLI run): checked before every write

    def check_lock(self) -> None:
        """Raise :class:`gnet._process.LostLockError` if another run may have taken the folder over."""
        if self.lock is not None:
            self.lock.check()

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based, counted over the whole run)."""
        total = self.steps_per_epoch * self.config.epochs
        warmup = min(total, round(self.config.warmup_epochs * self.steps_per_epoch))
        factor = lr_factor(
            self.config.schedule, step, steps_per_epoch=self.steps_per_epoch, total_steps=total, warmup_steps=warmup
        )
        return self.config.lr * factor

    def checkpoint_state(self) -> dict[str, Any]:
        """What ``last.pt`` holds: the network (rebuildable from the file alone) and the training state."""
        return model_state(self.model, self.train_ds.classes, self.train_ds.class_names) | {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "tally": dataclasses.asdict(self.tally),
            "rng": _rng_state(),
            "train_config": dataclasses.asdict(self.config),
            "history": self.history,
            "inputs": self.inputs,
        }

    def save(self) -> None:
        if self.world.is_main:  # one writer; the other ranks hold the same state
            self.check_lock()
            save_checkpoint(self.checkpoint_path, self.checkpoint_state())
        self.last_saved = _describe_position(self.epoch, self.batch)


def _describe_position(epoch: int, batch: int) -> str:
    return f"after epoch {epoch}" + (f" and {batch} steps of epoch {epoch + 1}" if batch else "")


# ------------------------------------------------------------ set-up
def _resume_point(config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to continue from (None for a fresh run), after checking that the two agree."""
    run_dir = Path(config.out)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if not resume:
        if checkpoint_path.exists():
            raise CheckpointError(
                f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out"
            )
        _move_aside_leftovers(run_dir)
        return None
    if not checkpoint_path.exists():
        raise CheckpointError(
            f"--resume: there is no checkpoint {checkpoint_path} to continue from (run without --resume to start)"
        )
    try:
        checkpoint = read_checkpoint(checkpoint_path, training=True)
    except CheckpointError as error:
        raise CheckpointError(f"--resume: {error}. Delete it to start over, or choose another --out") from None
    if (run_dir / RUN_NAME).exists():
        try:
            read_run_info(run_dir)  # refused before anything is written, not halfway through set-up
        except (ValueError, OSError) as error:
            raise CheckpointError(
                f"--resume: {error}; restore it, or delete it to have --resume write a new one from the checkpoint"
            ) from None
    done = int(checkpoint["epoch"])
    if config.epochs < done:
        raise ConfigMismatchError(
            f"--resume: the run in {run_dir} has done {done} epochs, more than --epochs {config.epochs}; "
            f"pass --epochs {checkpoint['train_config']['epochs']} (its plan) or more to extend it"
        )
    differences = _config_differences(checkpoint["train_config"], config)
    if differences:
        raise ConfigMismatchError(
            f"--resume: the settings differ from those of the run in {run_dir}:\n  "
            + "\n  ".join(differences)
            + "\nRepeat the original command with --resume, or choose a new --out."
        )
    return checkpoint


def _move_aside_leftovers(run_dir: Path) -> None:
    """A run that failed before its first checkpoint left metrics.jsonl / run.json: keep them, out of the way."""
    leftovers = [run_dir / name for name in (METRICS_NAME, RUN_NAME) if os.path.lexists(run_dir / name)]
    if not leftovers:
        return
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = run_dir / f"abandoned-{stamp}"
    aside.mkdir()
    for path in leftovers:
        path.rename(aside / path.name)
    print(f"{run_dir} held no checkpoint, only the files of a run that never finished an epoch: moved to {aside}")


def _check_out(config: TrainConfig) -> None:
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigMismatchError(f"--out {out} is a file, not a run folder")


def _config_differences(saved: dict[str, Any], requested: TrainConfig) -> list[str]:
    # A field newer than the checkpoint is taken at its default, which is what the older code did.
    saved = dataclasses.asdict(TrainConfig()) | saved
    wanted = dataclasses.asdict(requested)
    return [
        f"{name}: checkpoint {saved[name]!r}, requested {wanted[name]!r}"
        for name in wanted
        if name not in RESUME_MAY_CHANGE | {"epochs"} and saved[name] != wanted[name]
    ]


Split = gdata.ImageFolderDataset | gcache.DecodedSplit


def _datasets(config: TrainConfig, world: World = SINGLE) -> tuple[Path, Split, Split, dict[str, Any]]:
    data_dir = gdata.resolve_data_dir(config.data_dir, config.dataset_size, config.download)
    try:
        train_ds, val_ds = gdata.build_datasets(
            data_dir,
            config.image_size,
            subset_per_class=config.subset_per_class,
            seed=config.seed,
            val_subset_per_class=config.val_subset_per_class,
        )
    except ValueError as error:  # train and val class folders differ
        raise ConfigMismatchError(f"{data_dir}: {error}") from None
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise gdata.DataNotFoundError(f"{data_dir}: no images in train/ or val/ ({len(train_ds)}, {len(val_ds)})")
    if len(train_ds.classes) < 2:
        raise ConfigMismatchError(f"{data_dir} has {len(train_ds.classes)} class: a classifier needs at least 2")
    if config.batch_size > len(train_ds):
        raise ConfigMismatchError(
            f"batch_size {config.batch_size} is larger than the training set ({len(train_ds)} images): "
            "no step would have a whole batch"
        )
    inputs = {
        "data_dir": str(data_dir),
        "train_images": len(train_ds),
        "val_images": len(val_ds),
        "train_files": _files_digest(train_ds),
        "val_files": _files_digest(val_ds),
    }
    if config.cache:
        return data_dir, *(_decoded(config, ds, world) for ds in (train_ds, val_ds)), inputs
    return data_dir, train_ds, val_ds, inputs


def _files_digest(dataset: gdata.ImageFolderDataset) -> str:
    """A digest of the images a split holds (names relative to the split, sizes, labels), not of where it lies:
    a dataset moved or copied elsewhere has the same digest, one with an image added, removed or changed does not."""
    rows = [(os.path.relpath(path, dataset.root), os.stat(path).st_size, label) for path, label in dataset.samples]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=True).encode()).hexdigest()[:16]


def _resume_changes(
    checkpoint: dict[str, Any], config: TrainConfig, inputs: dict[str, Any], allowed: bool
) -> dict[str, list[Any]]:
    """What this resume changes (``{name: [before, now]}``), after refusing, unless ``allowed``, the changes that
    would make the resumed run differ from an uninterrupted one (another device, data, kernel or random stream)."""
    saved_config = dataclasses.asdict(TrainConfig()) | checkpoint["train_config"]
    wanted = dataclasses.asdict(config)
    changes = {
        name: [saved_config[name], wanted[name]]
        for name in sorted(RESUME_MAY_CHANGE)
        if saved_config[name] != wanted[name]
    }
    saved_inputs = checkpoint.get("inputs") or {}  # older checkpoints recorded none: nothing to compare
    changes |= {
        name: [saved_inputs[name], value] for name, value in inputs.items() if saved_inputs.get(name, value) != value
    }
    breaking = [name for name in changes if name in RESUME_BREAKS_EXACTNESS | INPUTS_BREAKING_EXACTNESS]
    if config.cache and "workers" in breaking:  # the cache's augmentation is keyed on (seed, epoch, step) alone
        breaking.remove("workers")
    if breaking and not allowed:
        raise ConfigMismatchError(
            f"--resume: {', '.join(f'{name} {changes[name][0]!r} -> {changes[name][1]!r}' for name in breaking)} "
            "changed since the checkpoint was saved, so the run would not continue as it would have without the stop. "
            "Restore them, or pass --allow-changed-inputs to continue anyway (run.json records the change)"
        )
    return changes


def _decoded(config: TrainConfig, dataset: gdata.ImageFolderDataset, world: World) -> gcache.DecodedSplit:
    """The decoded cache of ``dataset``'s images (the same files, in the same order), built on first use.

    Under torchrun the ranks of one machine share it: the first builds it, the others wait (gnet.cache's lock).
    """
    return gcache.open_split(
        dataset.root,
        gcache.default_cache_size(config.image_size),
        cache_root=config.cache_dir,
        subset=dataset.samples,
        workers=max(1, config.workers),
        log=print if world.is_main else lambda _: None,
    )


def setup(
    config: TrainConfig,
    checkpoint: dict[str, Any] | None = None,
    *,
    world: World = SINGLE,
    device: torch.device | None = None,
    lock: RunLock | None = None,
    allow_changed_inputs: bool = False,
) -> Run:
    """Device, data, model and optimizer for ``config``; restored from ``checkpoint`` when resuming.

    Under torchrun (``world`` from :func:`gnet.distributed.join`) the model is wrapped in DDP, each rank loads
    its share of every batch and of the validation set, and only rank 0 writes. ``lock``: the run folder's
    :class:`~gnet._process.RunLock`, checked before every write. A resume whose data, device or kernels changed
    is refused unless ``allow_changed_inputs`` (:func:`_resume_changes`).
    """
    device = device if device is not None else resolve_device(config.device)
    _check_recipe(config, world, device)
    precision, precision_reason = precision_choice(config.precision, device)
    _seed_everything(config.seed)  # the same initial weights on every rank
    data_dir, train_ds, val_ds, inputs = _datasets(config, world)
    inputs["device_type"] = device.type
    model = build_model(config, num_classes=len(train_ds.classes))
    if config.image_size < model.min_input_size:
        raise ConfigMismatchError(
            f"image_size {config.image_size} is too small: this GoogLeNet needs at least {model.min_input_size} px"
            + _why_min_size(config, model)
        )
    if checkpoint is not None and list(checkpoint["classes"]) != list(train_ds.classes):
        raise ConfigMismatchError(
            f"--resume: {data_dir} has classes {train_ds.classes}, the checkpoint {checkpoint['classes']}"
        )
    changes = {} if checkpoint is None else _resume_changes(checkpoint, config, inputs, allow_changed_inputs)
    if config.sync_batch_norm and world.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same state_dict keys: checkpoints don't change
    model.to(device, memory_format=torch.channels_last)  # with to_device's channels-last batches; see there
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run = Run(
        config=config,
        device=device,
        precision=precision,
        precision_reason=precision_reason,
        train_ds=train_ds,
        val_loader=_val_loader(config, val_ds, device, world),
        model=model,
        forward=_forward(model, config, world, device),
        optimizer=torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        ),
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        # Whole batches only (the sampler below deals steps × batch images): BatchNorm never sees a batch of
        # one, and every step has the same size.
        steps_per_epoch=max(1, len(train_ds) // config.batch_size),
        world=world,
        inputs=inputs,
        lock=lock,
    )
    if checkpoint is not None:
        _restore(run, checkpoint)
    if world.is_main:
        _write_run_info(run, data_dir, len(val_ds), changes)
    return run


def _check_recipe(config: TrainConfig, world: World, device: torch.device) -> None:
    """Settings that only fail together: with BatchNorm, with the number of processes, with the device."""
    if config.batch_norm and config.batch_size < 2 * world.size:
        over = f" over {world.size} processes" if world.distributed else ""
        raise ConfigMismatchError(
            f"--batch-norm needs --batch-size >= {2 * world.size}{over}: BatchNorm cannot normalise a batch of one"
        )
    try:
        distributed.check_batch(world, config.batch_size)
    except ValueError as error:
        raise ConfigMismatchError(str(error)) from None
    if world.distributed and config.grad_norms_every:
        raise ConfigMismatchError("--grad-norms-every works in a single process only (not under torchrun)")
    if config.sync_batch_norm and not config.batch_norm:
        raise ConfigMismatchError("--sync-batch-norm needs --batch-norm: there is no BatchNorm to synchronise")
    if config.sync_batch_norm and world.distributed and device.type != "cuda":
        raise ConfigMismatchError("--sync-batch-norm works on CUDA only (PyTorch's DDP refuses it on CPU)")


def _forward(model: gnet.GoogLeNet, config: TrainConfig, world: World, device: torch.device) -> nn.Module:
    """What a training step calls: the model, wrapped in DDP under torchrun, compiled with --compile."""
    forward: nn.Module = model
    if world.distributed:
        forward = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(forward) if config.compile else forward


def _val_loader(config: TrainConfig, val_ds: Split, device: torch.device, world: World):
    # Under torchrun every rank scores every world.size-th image: each image once, no padding duplicates.
    share = list(range(world.rank, len(val_ds), world.size))
    if isinstance(val_ds, gcache.DecodedSplit):
        return DecodedLoader(val_ds, config.batch_size, config.image_size, device, order=share)
    dataset = val_ds if not world.distributed else torch.utils.data.Subset(val_ds, share)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=detach_worker,
    )


def _why_min_size(config: TrainConfig, model: gnet.GoogLeNet) -> str:
    if not config.aux:
        return ""
    without = dataclasses.replace(model.config, aux_logits=False, init="torch")
    return (
        " (the paper's auxiliary heads pool 5×5/3 on the 4a map, which is 1/16 of the input; "
        f"--no-aux needs only {gnet.GoogLeNet(without).min_input_size} px)"
    )


def _restore(run: Run, checkpoint: dict[str, Any]) -> None:
    """Load the training state; a part that does not fit (a damaged or edited file) is a CheckpointError."""
    part = "model"
    try:
        run.model.load_state_dict(checkpoint["model"])
        part = "optimizer"
        run.optimizer.load_state_dict(checkpoint["optimizer"])
        for param, state in run.optimizer.state.items():  # SGD would fail only at its first step
            for buffer in state.values():
                if isinstance(buffer, torch.Tensor) and buffer.dim() and buffer.shape != param.shape:
                    raise ValueError(f"a buffer of shape {tuple(buffer.shape)} for a parameter of {tuple(param.shape)}")
        part = "scaler"
        run.scaler.load_state_dict(checkpoint["scaler"])
        part = "history"
        run.history = [_checked_record(record) for record in checkpoint["history"]]
        part = "position"
        run.epoch, run.batch = int(checkpoint["epoch"]), int(checkpoint["batch"])
        if run.batch > run.steps_per_epoch:
            raise ValueError(f"step {run.batch} of an epoch of {run.steps_per_epoch}")
        part = "tally"
        run.tally = EpochTally(**checkpoint["tally"])
        sums = ("loss_sum", "correct", "count", "seconds")
        if not all(isinstance(getattr(run.tally, name), (int, float)) for name in sums):
            raise ValueError("sums that are not numbers")
        if run.batch and run.tally.count <= 0:
            raise ValueError(f"no images counted after {run.batch} steps")
        part = "random state"
        _set_rng_state(checkpoint["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise CheckpointError(
            f"--resume: the {part} in {run.checkpoint_path} is damaged ({first_line}). Delete the file to start over"
        ) from None
    run.last_saved = _describe_position(run.epoch, run.batch)


def _checked_record(record: dict[str, Any]) -> dict[str, Any]:
    """An epoch record as the summary and metrics.jsonl need it: the numbers present, strict JSON throughout."""
    missing = {"epoch", "val_top1", "val_top5", "images_per_s"} - set(record)
    if missing:
        raise ValueError(f"an epoch record without {sorted(missing)}")
    numbers = [record[key] for key in ("epoch", "val_top1", "val_top5")] + [record["images_per_s"] or 0]
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers):
        raise ValueError(f"an epoch record whose numbers are not numbers: {str(record)[:80]}")
    json.dumps(record, allow_nan=False)  # TypeError or ValueError (NaN) for anything metrics.jsonl could not hold
    return record


def _write_run_info(run: Run, data_dir: Path, val_images: int, changes: dict[str, list[Any]] | None = None) -> None:
    """metrics.jsonl as the checkpoint knows it (so the two never disagree), and run.json.

    A resume appends to run.json's ``resumed_at`` where it continued and every setting or input it changed
    (``changed``: ``{name: [before, now]}``), and run.json's own fields then hold the values now in use.
    """
    run.check_lock()
    run.run_dir.mkdir(parents=True, exist_ok=True)
    _write_metrics(run.run_dir / METRICS_NAME, run.history)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    path = run.run_dir / RUN_NAME
    if run.last_saved and path.exists():
        info = read_run_info(run.run_dir)  # checked before set-up began (_resume_point)
        resumed = {"time": now, "epoch": run.epoch, "batch": run.batch, "world_size": run.world.size}
        if info["config"].get("epochs") != run.config.epochs:  # an extended (or shortened) run: say so
            resumed["epochs"] = [info["config"].get("epochs"), run.config.epochs]
            info["config"]["epochs"] = run.config.epochs
        if changes:
            resumed["changed"] = changes
            for name, (_, now_value) in changes.items():
                info.setdefault("config" if name in RESUME_MAY_CHANGE else "inputs", {})[name] = now_value
            info["data_dir"] = gdata.portable_path(str(data_dir))
            info["train_images"], info["val_images"] = len(run.train_ds), val_images
        info.setdefault("resumed_at", []).append(resumed)
    else:
        info = {
            "config": dataclasses.asdict(run.config),
            "model_config": dataclasses.asdict(run.model.config),
            "device": device_name(run.device),
            "device_type": run.device.type,
            "world_size": run.world.size,  # processes under torchrun (1: a plain run); the device is rank 0's
            "backend": run.world.backend,
            "precision": run.precision,
            "precision_reason": run.precision_reason,
            "versions": versions(),
            "threads": torch.get_num_threads(),
            # Data paths as $GNET_DATA_DIR/... or ~/.cache/gnet/data/...: what a reader on another machine can use.
            "command": gdata.portable_path(
                command_line("python -m gnet.train" if sys.argv and sys.argv[0].endswith("train.py") else None)
            ),
            "git_commit": git_commit(),
            "started_at": now,
            "data_dir": gdata.portable_path(str(data_dir)),
            "train_images": len(run.train_ds),
            "val_images": val_images,
            "classes": list(run.train_ds.classes),
            "class_names": run.train_ds.class_names,
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "decoded_cache": [
                str(split.path)
                for split in (run.train_ds, run.val_loader.dataset)
                if isinstance(split, gcache.DecodedSplit)
            ],
            "inputs": run.inputs,
            "resumed_at": [],
        }
    write_json(path, info)


# ------------------------------------------------------------ one epoch
def _epoch_batches(run: Run, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This process's batches for the rest of ``epoch``.

    The global order is a function of (seed, epoch) only, so a resumed run deals the same batches, at any world
    size: under torchrun rank ``r`` takes the ``r``-th part of each global batch (:meth:`World.share`).
    """
    config, world = run.config, run.world
    generator = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
    order = torch.randperm(len(run.train_ds), generator=generator)[: run.steps_per_epoch * config.batch_size]
    order = order.tolist()[run.batch * config.batch_size :]
    if not order:
        return iter(())
    if isinstance(run.train_ds, gcache.DecodedSplit):
        loader = DecodedLoader(
            run.train_ds,
            config.batch_size,
            config.image_size,
            run.device,
            order=order,
            train=True,
            seed=config.seed,
            epoch=epoch,
            first_step=run.batch,
            part=(world.rank, world.size),  # crops drawn for the global batch: the same at any world size
        )
        return iter(loader)
    if world.distributed:
        step = config.batch_size
        order = [i for start in range(0, len(order), step) for i in world.share(order[start : start + step])]
        generator.manual_seed(derived_seed(config.seed, epoch, world.rank))  # workers' own streams
    return worker_failures(
        start_workers(
            torch.utils.data.DataLoader(
                run.train_ds,
                batch_size=config.batch_size // world.size,
                sampler=order,
                num_workers=config.workers,
                generator=generator,  # worker seeds come from here: also a function of (seed, epoch)
                pin_memory=run.device.type == "cuda",
                worker_init_fn=detach_worker,
            )
        )
    )


def _kept(run: Run) -> str:
    if run.last_saved:
        return f"the last good checkpoint {run.checkpoint_path} ({run.last_saved}) was kept"
    return "no checkpoint had been saved yet"


def _diverged(run: Run, loss_value: float, epoch: int, step: int, lr: float) -> DivergedError:
    return DivergedError(
        f"the loss is {loss_value} at epoch {epoch + 1}, step {step + 1} (learning rate {lr:.4g}); "
        f"training stopped and {_kept(run)}. Try a smaller --lr or --batch-norm."
    )


def train_one_epoch(
    run: Run,
    epoch: int,
    stop: StopRequest,
    loss_hook: Callable[[int, int, torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """One pass over the training set, from ``run.batch`` on; a stop request saves a mid-epoch checkpoint."""
    config, model = run.config, run.model
    model.train()
    progress = _progress(run.steps_per_epoch, run.batch, epoch, config, run.world)
    step_started = time.perf_counter()
    _seed_rank_stream(run, epoch, run.batch)  # before the first batch is drawn (--workers 0 crops draw from it)
    for images, targets in _epoch_batches(run, epoch):
        step = run.batch
        lr = run.lr_at(epoch * run.steps_per_epoch + step)
        for group in run.optimizer.param_groups:  # a pure function of the step: nothing to checkpoint
            group["lr"] = lr
        images, targets = to_device(images, targets, run.device)
        with autocast(run.device, run.precision):
            output = run.forward(images)
            loss = gnet.googlenet_loss(
                output, targets, aux_weight=config.aux_weight, label_smoothing=config.label_smoothing
            )
        if loss_hook is not None:
            loss = loss_hook(epoch, step, loss)
        correct = topk_correct(output.logits.detach().float(), targets, (1,))[0]
        loss_sum, correct, count, agreed_stop = _step_totals(run, float(loss.detach()), correct, len(targets), stop)
        loss_value = loss_sum / count  # under torchrun: the global batch's, so every rank decides alike
        if not math.isfinite(loss_value):
            progress.close()
            raise _diverged(run, loss_value, epoch, step, lr)
        global_step = epoch * run.steps_per_epoch + step
        if config.grad_norms_every and global_step % config.grad_norms_every == 0:
            run.tally.grad_norms.append(_gradient_norms(run, output, targets, global_step))
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()

        tally = run.tally
        tally.loss_sum += loss_sum
        tally.correct += correct
        tally.count += count
        now = time.perf_counter()
        tally.seconds += now - step_started
        step_started = now
        run.batch = step + 1
        _seed_rank_stream(run, epoch, run.batch)  # before the next batch is drawn
        progress.update(1)
        progress.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.3g}")
        if stop.requested if agreed_stop is None else agreed_stop:
            progress.close()
            raise _stopped(run, f"at step {run.batch}/{run.steps_per_epoch}", stop.signum)
    progress.close()


def _seed_rank_stream(run: Run, epoch: int, step: int) -> None:
    """On ranks above 0, seed torch's generator from (seed, rank, epoch, step) before each step draws from it.

    That generator draws the rank's dropout masks and, on the JPEG path with ``--workers 0``, its crops. Rank 0's
    stream is a single process's: one stream from the seed, carried in the checkpoint. The other ranks' states are
    in no checkpoint, so each step starts theirs afresh, and a resume at any step, after any kind of stop, deals
    every rank the numbers an uninterrupted run deals it.
    """
    if run.world.rank > 0:
        torch.manual_seed(derived_seed(run.config.seed, run.world.rank, epoch, step))


def _step_totals(
    run: Run, loss_value: float, correct: int, count: int, stop: StopRequest
) -> tuple[float, int, int, bool | None]:
    """The step's loss sum, hits and images: this process's, or under torchrun all ranks' (one all-reduce, which
    also carries the stop requests, so that every rank stops at the same step; None: decide locally)."""
    if not run.world.distributed:
        return loss_value * count, correct, count, None
    loss_sum, correct_sum, count_sum, stops = run.world.sum([loss_value * count, correct, count, stop.requested])
    return loss_sum, int(correct_sum), int(count_sum), stops > 0


def _gradient_norms(run: Run, output: Any, targets: torch.Tensor, global_step: int) -> dict[str, Any]:
    """Each main-path stage's gradient norm under the main loss, and under the weighted auxiliary losses.

    The two add up to the training loss, so their gradients add up to the step the optimizer takes. Computed
    with ``torch.autograd.grad`` on the graph of the training step (kept for its own backward), so no ``.grad``
    is written, no random number is drawn and the weights come out exactly as without logging.
    """
    config, model = run.config, run.model
    smoothing = config.label_smoothing
    main = F.cross_entropy(output.logits.float(), targets, label_smoothing=smoothing)
    heads = [head for head in (output.aux1, output.aux2) if head is not None]
    aux = sum(config.aux_weight * F.cross_entropy(h.float(), targets, label_smoothing=smoothing) for h in heads)
    stages = {name: [p for p in model.get_submodule(name).parameters() if p.requires_grad] for name in PAPER_DEPTH}
    flat = [p for params in stages.values() for p in params]

    def per_stage(loss: torch.Tensor) -> dict[str, float]:
        grads = iter(torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True))
        norms = {}
        for name, params in stages.items():
            squares = [next(grads) for _ in params]
            norms[name] = math.sqrt(sum(float(g.double().pow(2).sum()) for g in squares if g is not None))
        return norms

    return {
        "step": global_step,
        "main_loss": float(main.detach()),
        "main": per_stage(main),
        "aux": per_stage(aux) if heads and config.aux_weight else None,
    }


def _stopped(run: Run, where: str, signum: int) -> TrainingInterrupted:
    run.save()
    return TrainingInterrupted(
        f"interrupted {where} of epoch {run.epoch + 1}; saved {run.checkpoint_path}. "
        "Continue with the same command plus --resume.",
        signum,
    )


def _progress(total: int, initial: int, epoch: int, config: TrainConfig, world: World = SINGLE):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=None if config.progress and world.is_main else True,  # None: only on a terminal
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    )


# ------------------------------------------------------------ the outline
def _finish_epoch(run: Run, val: dict[str, float], started: float) -> dict[str, Any]:
    """Record the epoch that just ended, checkpoint at the boundary, append its metrics line."""
    tally = run.tally
    record = {
        "epoch": run.epoch + 1,
        "train_loss": tally.loss_sum / tally.count,
        "train_top1": tally.correct / tally.count,
        "val_loss": val["loss"],
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "lr": run.lr_at((run.epoch + 1) * run.steps_per_epoch - 1),  # the epoch's last step
        "images_per_s": tally.count / tally.seconds if tally.seconds > 0 else None,  # JSON has no NaN
        "seconds": time.perf_counter() - started,
    }
    if run.config.grad_norms_every:
        record["grad_norms"] = tally.grad_norms
    run.history.append(record)
    run.epoch, run.batch, run.tally = run.epoch + 1, 0, EpochTally()
    run.save()
    if run.world.is_main:  # rewritten whole and atomically, as last.pt: never appended through a link placed there
        run.check_lock()
        _write_metrics(run.run_dir / METRICS_NAME, run.history)
    return record


def _print_epoch(record: dict[str, Any], epochs: int) -> None:
    print(
        f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f}  "
        f"val loss {record['val_loss']:.4f}  val top-1 {100 * record['val_top1']:.1f} %  "
        f"top-5 {100 * record['val_top5']:.1f} %  lr {record['lr']:.4g}  "
        f"{record['images_per_s'] or float('nan'):.1f} img/s  {record['seconds']:.1f} s",
        flush=True,
    )


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    allow_changed_inputs: bool = False,
    _loss_hook: Callable[[int, int, torch.Tensor], torch.Tensor] | None = None,
) -> list[dict[str, Any]]:
    """Run (or with ``resume=True`` continue) training; return the per-epoch metrics, one dict per epoch.

    Raises :class:`gnet.data.DataNotFoundError`, :class:`gnet.data.CorruptImageError`, or a
    :class:`TrainError` / :class:`CheckpointError` subclass, each with a message meant for the user.
    A stop signal during set-up raises :class:`gnet._process.StopNow` at once (there is nothing to save yet).
    ``_loss_hook(epoch, step, loss)`` may replace the loss (tests use it to inject a NaN).
    """
    _check_out(config)
    with StopRequest(immediate=True) as stop:
        world, device = distributed.join(config.device, config.dist_timeout)
        try:
            with RunLock(Path(config.out)) if world.is_main else contextlib.nullcontext() as lock:  # one writer
                checkpoint = _shared_resume_point(config, resume, world, device)
                if checkpoint is not None and checkpoint["epoch"] >= config.epochs:
                    _say(world, f"{config.out}: all {config.epochs} epochs are done already.")
                    return list(checkpoint["history"])
                run = setup(
                    config, checkpoint, world=world, device=device, lock=lock, allow_changed_inputs=allow_changed_inputs
                )
                if world.is_main and checkpoint is not None and checkpoint["train_config"]["epochs"] != config.epochs:
                    _announce_new_length(run, checkpoint["train_config"]["epochs"])
                return _run(run, stop, _loss_hook)
        finally:
            distributed.leave(world)


def _say(world: World, message: str) -> None:
    if world.is_main:
        print(message, flush=True)


def _shared_resume_point(
    config: TrainConfig, resume: bool, world: World, device: torch.device
) -> dict[str, Any] | None:
    """Rank 0 reads and checks the checkpoint; the other ranks get it from rank 0, or the error that stops the
    run, so only rank 0 ever touches the run folder (which then need not be on a disk every machine sees)."""
    if not world.distributed:
        return _resume_point(config, resume)
    if world.is_main:
        try:
            _check_recipe(config, world, device)
            checkpoint = _resume_point(config, resume)
        except Exception as error:
            world.broadcast(("error", error))
            raise
        return world.broadcast(("ok", checkpoint))[1]
    kind, value = world.broadcast(None)
    if kind == "error":
        value.from_rank0 = True  # rank 0 says it; the others exit with the same code, quietly
        raise value
    return value


def _announce_new_length(run: Run, planned: int) -> None:
    """A resume with another --epochs: the schedule is now the one a run of the new length follows."""
    step = run.epoch * run.steps_per_epoch + run.batch
    before = dataclasses.replace(run, config=dataclasses.replace(run.config, epochs=planned))
    print(
        f"gnet-train: --epochs {planned} -> {run.config.epochs}: the {run.config.schedule} schedule is now that of a "
        f"{run.config.epochs}-epoch run; the learning rate goes on at {run.lr_at(step):.4g} "
        f"(the {planned}-epoch plan had {before.lr_at(max(0, step - 1)):.4g} at the last step)",
        flush=True,
    )


def _run(
    run: Run, stop: StopRequest, loss_hook: Callable[[int, int, torch.Tensor], torch.Tensor] | None
) -> list[dict[str, Any]]:
    """The epochs that remain, each checkpointed as it ends (the folder is locked by the caller).

    From here on the first stop signal is a request, honoured after the current step with a checkpoint. A stop
    during validation saves the random state validation started from (opening a DataLoader draws from torch's
    generator), so a resume re-runs that validation and goes on exactly as without the stop.
    """
    stop.immediate = False
    config, world, session_started = run.config, run.world, time.perf_counter()
    _say(
        world,
        f"gnet-train: {len(run.train_ds)} train / {_val_images(run)} val images, {len(run.train_ds.classes)} "
        f"classes, {run.steps_per_epoch} steps/epoch of {distributed.describe(world, config.batch_size)} on "
        f"{device_name(run.device)} ({run.precision}; {run.precision_reason}) -> {run.run_dir}",
    )
    for epoch in range(run.epoch, config.epochs):
        started = time.perf_counter()
        train_one_epoch(run, epoch, stop, loss_hook)
        rng_before_validation = _rng_state()
        val = _validate(run, stop)
        if val is None:
            _set_rng_state(rng_before_validation)
            raise _stopped(run, "during evaluation", stop.signum)
        if not math.isfinite(val["loss"]):
            raise DivergedError(
                f"the validation loss is {val['loss']} after epoch {epoch + 1}; training stopped and "
                f"{_kept(run)}. Try a smaller --lr or --batch-norm."
            )
        record = _finish_epoch(run, val, started)
        if world.is_main:
            _print_epoch(record, config.epochs)
        if _agree(world, stop.requested):
            raise TrainingInterrupted(
                f"interrupted after epoch {epoch + 1}; {run.checkpoint_path} is up to date. "
                "Continue with the same command plus --resume.",
                stop.signum,
            )
    if world.is_main:
        _print_summary(run, time.perf_counter() - session_started)
    return run.history


def _agree(world: World, flag: bool) -> bool:
    """True on every rank if it is True on any (a stop request that reached only some processes)."""
    return world.sum([flag])[0] > 0 if world.distributed else flag


def _val_images(run: Run) -> int:
    loader = run.val_loader
    shared = loader.dataset.dataset if isinstance(loader.dataset, torch.utils.data.Subset) else loader.dataset
    return len(shared)


def _validate(run: Run, stop: StopRequest) -> dict[str, float] | None:
    """Validation loss and accuracy (None if stopped). Under torchrun each rank scores its share with rank 0's
    weights and BatchNorm statistics, and the sums are added: every image counts once, as in one process."""
    if not run.world.distributed:
        return evaluate(run.forward, _evaluating(run), run.device, run.precision, stop=stop)
    distributed.broadcast_buffers(run.model, run.world)
    sums = evaluation_sums(run.model, _evaluating(run), run.device, run.precision, stop=stop)
    loss_sum, top1, top5, count, stopped = run.world.sum([*sums[:4], sums.stopped])
    return None if stopped else EvaluationSums(loss_sum, int(top1), int(top5), int(count)).means()


def _evaluating(run: Run):
    """The validation loader, with a progress bar on a terminal."""
    from tqdm import tqdm

    loader = run.val_loader
    return tqdm(
        worker_failures(start_workers(loader)) if isinstance(loader, torch.utils.data.DataLoader) else iter(loader),
        total=len(run.val_loader),
        desc="evaluating",
        disable=None if run.config.progress and run.world.is_main else True,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def _print_summary(run: Run, seconds: float) -> None:
    last = run.history[-1]
    best = max(run.history, key=lambda m: m["val_top1"])
    rates = [m["images_per_s"] for m in run.history if m["images_per_s"]]
    print(
        f"gnet-train: done. Last epoch {last['epoch']}: val top-1 {100 * last['val_top1']:.2f} %, "
        f"top-5 {100 * last['val_top5']:.2f} %. Best epoch {best['epoch']}: top-1 {100 * best['val_top1']:.2f} %. "
        f"{seconds:.0f} s in this session, {sum(rates) / max(1, len(rates)):.0f} images/s on average. "
        f"Files: {run.run_dir / METRICS_NAME}, {run.run_dir / RUN_NAME}, {run.checkpoint_path}",
        flush=True,
    )


# ------------------------------------------------------------ CLI
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for on/off flags, whose help already says what they change, and for options without
    a fixed default (None), whose help says in brackets what they default to."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) or action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`TrainConfig` field plus ``--resume``."""
    parser = argparse.ArgumentParser(
        prog="gnet-train",
        description="Train GoogLeNet (Szegedy et al. 2015) on Imagenette or any train/, val/ class folders.",
        formatter_class=_HelpFormatter,
        epilog="exit codes: 0 done; 2 bad settings or data (one line says why); 3 the loss became NaN or infinite "
        "(the last good checkpoint is kept); 4 another process of a torchrun job failed or stopped answering (the "
        "last checkpoint is kept: --resume continues); 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (a checkpoint was saved: "
        "--resume continues)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument(
        "--allow-changed-inputs",
        action="store_true",
        help="with --resume: continue although the data, the device kind, --workers, --compile or --fuse-1x1 "
        "changed since the checkpoint (the run then differs from an uninterrupted one; run.json records the change)",
    )
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        help_text = spec.metadata["help"]
        if spec.type in ("bool", bool):
            if spec.default:
                parser.add_argument(
                    "--no-" + spec.name.replace("_", "-"),
                    dest=spec.name,
                    action="store_false",
                    help=help_text,
                )
            else:
                parser.add_argument(flag, dest=spec.name, action="store_true", help=help_text)
            continue
        kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(spec.type), str)
        shapes = tuple(grivals.RIVALS)
        choices = {"schedule": SCHEDULES, "device": DEVICES, "precision": PRECISIONS, "shape": shapes}.get(spec.name)
        if spec.name == "dataset_size":
            choices = tuple(gdata.IMAGENETTE_SIZES)
        parser.add_argument(flag, dest=spec.name, type=kind, default=spec.default, choices=choices, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed arguments (raises ValueError for bad values)."""
    return TrainConfig(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)})


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gnet-train`` / ``python -m gnet.train`` entry point. Returns the exit code, never a traceback
    for a user error (see the module docstring for the codes)."""
    with printable_output():  # a non-UTF-8 folder or class name prints escaped, never fails the run
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, or argparse's own usage error (it printed why)
        return int(exit_request.code or 0)
    try:
        config = config_from_args(args)
    except ValueError as error:
        return _fail(f"error: {error}", EXIT_ERROR)
    if args.allow_changed_inputs and not args.resume:
        return _fail("error: --allow-changed-inputs goes with --resume (a fresh run has nothing to compare to)", 2)
    try:
        train(config, resume=args.resume, allow_changed_inputs=args.allow_changed_inputs)
    except (
        gdata.DataNotFoundError,
        gdata.CorruptImageError,
        CheckpointError,
        ConfigMismatchError,
        DeviceError,
        RunFolderError,
        gcache.CacheError,
        DistributedError,
    ) as error:
        return _fail(f"error: {one_line(error)}", EXIT_ERROR, error)
    except DivergedError as error:
        return _fail(f"error: {error}", EXIT_DIVERGED, error)
    except TrainingInterrupted as error:  # 143 SIGTERM, 129 SIGHUP, 130 Ctrl-C
        return _fail(str(error), exit_code(error.signum), error)
    except KeyboardInterrupt as stop:  # a stop during set-up, or a second stop signal: no time to save
        signum = stop.signum if isinstance(stop, StopNow) else signal.SIGINT
        saved = Path(config.out) / CHECKPOINT_NAME
        kept = f"{saved} is the last saved state" if saved.exists() else "nothing had been saved"
        by = "" if signum == signal.SIGINT else f"{signal.Signals(signum).name}: "
        return _fail(f"{by}aborted; {kept}", exit_code(signum))
    except WorkerDiedError as error:
        return _fail(f"error: {one_line(error)}; {_kept_after_failure(config)}", EXIT_ERROR)
    except RuntimeError as error:
        # A worker's death reaches the main process wherever it is (torch's SIGCHLD handler), maybe in the middle
        # of an optimizer step: nothing is saved then, and the last checkpoint stays as it was.
        if worker_died(error):
            reason = f"a data-loading worker process died ({one_line(error)})"
            return _fail(f"error: {reason}; {_kept_after_failure(config)}", EXIT_ERROR)
        if not distributed.is_peer_failure(error):
            raise  # a bug: its traceback is the useful report
        first = distributed.short_reason(error)
        return _fail(
            f"error: another process of the job failed or stopped answering ({first}); {_kept_after_failure(config)}",
            EXIT_PEER_FAILED,
        )
    except (EOFError, ConnectionError) as error:  # with workers: a worker's pipe that broke as it died
        if config.workers > 0:
            reason = f"a data-loading worker process died (its pipe closed: {type(error).__name__})"
            return _fail(f"error: {reason}; {_kept_after_failure(config)}", EXIT_ERROR)
        if not isinstance(error, OSError):
            raise
        return _cannot_write(error)
    except OSError as error:  # a full disk, a read-only folder, ...: what failed, and where
        return _cannot_write(error)
    return EXIT_OK


def _cannot_write(error: OSError) -> int:
    where = f" ({error.filename})" if error.filename else ""
    return _fail(f"error: cannot write the run: {error.strerror or error}{where}", EXIT_ERROR)


def _kept_after_failure(config: TrainConfig) -> str:
    saved = Path(config.out) / CHECKPOINT_NAME
    return f"{saved} is the last saved state: --resume continues" if saved.exists() else "nothing was saved"


def _fail(message: str, code: int, error: BaseException | None = None) -> int:
    """Print one line for the user and return ``code``. Under torchrun an error rank 0 reported is not
    repeated by the other ranks, and a rank other than 0 names itself."""
    rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1") else "0"
    if not getattr(error, "from_rank0", False):
        with contextlib.suppress(OSError, ValueError):  # a hung-up terminal: the exit code still says it
            print(f"gnet-train{f' (rank {rank})' if rank != '0' else ''}: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
