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
  It holds only tensors and plain Python values, so ``torch.load(path, weights_only=True)`` reads it.

Exit codes of :func:`main`: 0 done, 2 bad arguments / missing or corrupt data / unusable checkpoint,
3 the loss became NaN or infinite, 130 interrupted (a checkpoint was saved; ``--resume`` continues).

Reproducibility: every epoch's data order is a function of (seed, epoch) alone; the RNG states (torch, CUDA,
numpy, Python) travel in the checkpoint. On CPU with ``--workers 0`` a run that is killed and resumed ends
with exactly the metrics of an uninterrupted one (timing fields aside), also when it was interrupted
mid-epoch. With workers, resuming from an epoch boundary is exact too; a mid-epoch resume re-deals
augmentations to the workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import gnet
from gnet import data as gdata

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "ConfigMismatchError",
    "DivergedError",
    "TrainConfig",
    "TrainError",
    "TrainingInterrupted",
    "build_model",
    "build_parser",
    "config_from_args",
    "evaluate",
    "load_checkpoint",
    "lr_factor",
    "main",
    "save_checkpoint",
    "topk_correct",
    "train",
]

SCHEDULES = ("paper", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"
RUN_NAME = "run.json"
CHECKPOINT_FORMAT = 1
EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130
TIMING_KEYS = ("images_per_s", "seconds")  # the only metrics that may differ between identical runs

# Fields a --resume may change: where things are and how fast they run, not the recipe.
RESUME_MAY_CHANGE = frozenset({"data_dir", "download", "out", "workers", "device", "compile", "progress"})


def _opt(default: Any, help: str) -> Any:  # noqa: A002 - "help" is what argparse calls it
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field is a CLI flag (``batch_size`` -> ``--batch-size``)."""

    data_dir: str | None = _opt(
        None, "folder with train/ and val/, or one holding imagenette2-<size>/ [$GNET_DATA_DIR]"
    )
    dataset_size: str = _opt("160px", "which Imagenette archive to look for or download: 160px, 320px or full")
    download: bool = _opt(False, "download Imagenette (torchvision) if it is not found")
    out: str = _opt("runs/googlenet", "run folder for metrics.jsonl, run.json and last.pt")
    epochs: int = _opt(30, "number of epochs (the paper gives none)")
    batch_size: int = _opt(128, "images per optimizer step (the paper gives none)")
    image_size: int = _opt(128, "training crop in pixels; eval resizes to round(size/0.875) and centre-crops")
    subset_per_class: int | None = _opt(None, "use only this many images per class (train and val) [all]")
    val_subset_per_class: int | None = _opt(None, "override subset_per_class for val [same as train]")
    seed: int = _opt(0, "seed for initialisation, data order and augmentation")
    workers: int = _opt(4, "DataLoader worker processes (0: load in the main process)")
    device: str = _opt("auto", "auto (cuda, then mps, then cpu), cpu, cuda or mps")
    precision: str = _opt("auto", "auto: bf16 autocast on CUDA (fp16 + GradScaler where bf16 is slow), else fp32")
    compile: bool = _opt(False, "torch.compile the model (CUDA; first epoch is slower)")
    aux: bool = _opt(True, "train with the two auxiliary classifiers (--no-aux removes them)")
    aux_weight: float = _opt(0.3, "weight of each auxiliary loss (paper: 0.3)")
    label_smoothing: float = _opt(0.0, "label smoothing on every head (not in the paper; Inception v3 used 0.1)")
    batch_norm: bool = _opt(False, "BatchNorm after every conv (not in the paper; Ioffe & Szegedy 2015)")
    lrn: bool = _opt(True, "LocalResponseNorm in the stem, as in the paper (--no-lrn drops it, as BN-Inception did)")
    width: float = _opt(1.0, "multiply every channel count by this (1.0 is the paper's network)")
    schedule: str = _opt("cosine", "paper (x0.96 every 8 epochs), cosine (with warmup) or onecycle")
    lr: float = _opt(0.04, "peak learning rate (BVLC Caffe GoogLeNet: 0.01 at batch 32, scaled linearly)")
    momentum: float = _opt(0.9, "SGD momentum (paper: 0.9)")
    weight_decay: float = _opt(2e-4, "L2 weight decay on all parameters (BVLC Caffe GoogLeNet: 2e-4)")
    warmup_epochs: float = _opt(2.0, "linear warmup for the cosine schedule, in epochs (paper schedule: none)")
    progress: bool = _opt(True, "tqdm progress bars when attached to a terminal (--no-progress hides them)")

    def __post_init__(self) -> None:
        def positive_int(name: str, minimum: int = 1, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}")

        def number(name: str, *, low: float = 0.0, low_open: bool = False, high: float = math.inf) -> None:
            value = getattr(self, name)
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if ok:
                ok = (value > low if low_open else value >= low) and value <= high
            if not ok:
                bound = f"> {low}" if low_open else f">= {low}"
                if high != math.inf:
                    bound += f" and <= {high}"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")

        def choice(name: str, options: Sequence[str]) -> None:
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}; got {getattr(self, name)!r}")

        for name in ("epochs", "batch_size", "image_size"):
            positive_int(name)
        positive_int("workers", minimum=0)
        positive_int("seed", minimum=0)
        positive_int("subset_per_class", optional=True)
        positive_int("val_subset_per_class", optional=True)
        number("lr", low_open=True)
        number("width", low_open=True)
        number("momentum", high=1.0)
        number("weight_decay")
        number("aux_weight")
        number("label_smoothing", high=0.99)
        number("warmup_epochs")
        choice("schedule", SCHEDULES)
        choice("device", DEVICES)
        choice("precision", PRECISIONS)
        choice("dataset_size", tuple(gdata.IMAGENETTE_SIZES))
        if not self.out:
            raise ValueError("out must name a run folder, got an empty string")


# ------------------------------------------------------------ errors
class TrainError(Exception):
    """A run that cannot start or continue; the message says why and what to do."""


class CheckpointError(TrainError):
    """A checkpoint is missing, unreadable or not a gnet checkpoint."""


class ConfigMismatchError(TrainError, ValueError):
    """--resume with settings that differ from the checkpoint's, or a setting the data or model can't take."""


class DivergedError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class TrainingInterrupted(TrainError):
    """Ctrl-C or SIGTERM: a checkpoint was saved, ``--resume`` continues."""


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


# ------------------------------------------------------------ devices
def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigMismatchError("--device cuda was asked for, but torch sees no CUDA GPU (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigMismatchError("--device mps was asked for, but MPS is not available (try --device cpu)")
    return torch.device(name)


def _resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        # T4 and older GPUs emulate bf16 slowly; fp16 with a GradScaler is their fast path.
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise ConfigMismatchError(f"--precision fp16 needs CUDA, the device is {device.type}")
    if name == "bf16" and device.type == "mps":
        raise ConfigMismatchError("--precision bf16 is not supported on MPS here; use fp32")
    return name


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def device_name(device: torch.device) -> str:
    """A readable name of the device, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu: AMD EPYC ... (2 threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"mps: {platform.machine()}"
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {processor} ({torch.get_num_threads()} threads)"


# ------------------------------------------------------------ model
def build_model(config: TrainConfig, num_classes: int) -> gnet.GoogLeNet:
    """The paper's GoogLeNet with the config's switches (aux heads, BatchNorm, LRN, width)."""
    return gnet.googlenet(
        num_classes=num_classes,
        aux_logits=config.aux,
        batch_norm=config.batch_norm,
        lrn=config.lrn,
        width=config.width,
    )


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows have the target among their top k logits, for each k (k is capped at the class count)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == target[:, None]
    return [int(hits[:, : min(k, logits.shape[1])].any(dim=1).sum()) for k in ks]


# ------------------------------------------------------------ RNG
def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


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


# ------------------------------------------------------------ files
def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write a temp file in the same folder, fsync, then os.replace: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` to ``path`` atomically (temp file in the same folder, fsync, os.replace)."""
    _atomic_write(Path(path), lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a gnet checkpoint with ``weights_only=True``; else :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch file ({type(error).__name__}: {str(error)[:200]}). "
            f"Delete it to start over, or use another --out."
        ) from None
    required = {
        "format",
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "batch",
        "rng",
        "config",
        "history",
    }
    if not isinstance(state, dict) or not required <= set(state):
        missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
        raise CheckpointError(f"checkpoint {path} is not a gnet training checkpoint (missing {missing})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state['format']}, this gnet reads {CHECKPOINT_FORMAT}")
    return state


def _config_differences(saved: dict[str, Any], requested: TrainConfig) -> list[str]:
    wanted = dataclasses.asdict(requested)
    return [
        f"{name}: checkpoint {saved.get(name, '<missing>')!r}, requested {wanted[name]!r}"
        for name in wanted
        if name not in RESUME_MAY_CHANGE and saved.get(name, object()) != wanted[name]
    ]


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(record) + "\n" for record in history)
    _atomic_write(path, lambda handle: handle.write(text), mode="w")


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    _atomic_write(path, lambda handle: handle.write(json.dumps(obj, indent=2) + "\n"), mode="w")


def _command_line() -> str:
    """How this process was started, as a shell command (for run.json)."""
    import shlex

    program = "python -m gnet.train" if sys.argv and sys.argv[0].endswith("train.py") else Path(sys.argv[0]).name
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def _git_commit() -> str | None:
    """The commit of the gnet source tree, with ``-dirty`` if it has changes; None outside a git checkout."""
    import subprocess

    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _versions() -> dict[str, str]:
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "gnet": gnet.__version__,
        "numpy": np.__version__,
    }


# ------------------------------------------------------------ signals
class _StopRequest:
    """Turns the first Ctrl-C / SIGTERM into a flag the loop checks after each step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{signal.Signals(signum).name}: saving a checkpoint after this step (again to abort).",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------ loops
def _epoch_batches(
    dataset: torch.utils.data.Dataset,
    config: TrainConfig,
    epoch: int,
    steps: int,
    start_batch: int,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    # The order is a function of (seed, epoch) only, so a resumed run deals the same batches.
    generator = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
    order = torch.randperm(len(dataset), generator=generator)[: steps * config.batch_size].tolist()
    order = order[start_batch * config.batch_size :]
    if not order:
        return iter(())
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=config.workers,
        generator=generator,  # worker seeds come from here: also a function of (seed, epoch)
        pin_memory=device.type == "cuda",
    )
    return iter(loader)


def _to_device(images: torch.Tensor, targets: torch.Tensor, device: torch.device):
    """Move a batch to ``device``; on CUDA, images go channels-last, which tensor cores prefer."""
    images = images.to(device, non_blocking=True)
    targets = targets.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets


def evaluate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    precision: str = "fp32",
    *,
    stop: _StopRequest | None = None,
) -> dict[str, float] | None:
    """Mean cross-entropy and top-1 / top-5 accuracy (fractions) of the main classifier; None if stopped."""
    model.eval()
    loss_sum, correct1, correct5, count = 0.0, 0, 0, 0
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = _to_device(images, targets, device)
            with _autocast(device, precision):
                logits = model(images)
            logits = logits.float()
            loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
            top1, top5 = topk_correct(logits, targets)
            correct1, correct5, count = correct1 + top1, correct5 + top5, count + len(targets)
            if stop is not None and stop.requested:
                return None
    return {"loss": loss_sum / count, "top1": correct1 / count, "top5": correct5 / count}


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    _loss_hook: Callable[[int, int, torch.Tensor], torch.Tensor] | None = None,
) -> list[dict[str, Any]]:
    """Run (or with ``resume=True`` continue) training; return the per-epoch metrics, one dict per epoch.

    Raises :class:`gnet.data.DataNotFoundError`, :class:`gnet.data.CorruptImageError`, or a
    :class:`TrainError` subclass, each with a message meant for the user. ``_loss_hook(epoch, step, loss)``
    may replace the loss (tests use it to inject a NaN).
    """
    run_dir = Path(config.out)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    metrics_path = run_dir / METRICS_NAME
    checkpoint = None
    if resume:
        if not checkpoint_path.exists():
            raise CheckpointError(f"--resume: there is no checkpoint {checkpoint_path} to continue from")
        checkpoint = load_checkpoint(checkpoint_path)
        differences = _config_differences(checkpoint["config"], config)
        if differences:
            raise ConfigMismatchError(
                f"--resume: the settings differ from those of the run in {run_dir}:\n  "
                + "\n  ".join(differences)
                + "\nRepeat the original command with --resume, or choose a new --out."
            )
        if checkpoint["epoch"] >= config.epochs:
            print(f"{run_dir}: all {config.epochs} epochs are done already.")
            return list(checkpoint["history"])
    elif checkpoint_path.exists() or metrics_path.exists():
        raise CheckpointError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out")

    device = _resolve_device(config.device)
    precision = _resolve_precision(config.precision, device)
    _seed_everything(config.seed)

    data_dir = gdata.resolve_data_dir(config.data_dir, config.dataset_size, config.download)
    train_ds, val_ds = gdata.build_datasets(
        data_dir,
        config.image_size,
        subset_per_class=config.subset_per_class,
        seed=config.seed,
        val_subset_per_class=config.val_subset_per_class,
    )
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise gdata.DataNotFoundError(f"{data_dir}: no images in train/ or val/ ({len(train_ds)}, {len(val_ds)})")
    model = build_model(config, num_classes=len(train_ds.classes))
    if config.image_size < model.min_input_size:
        raise ConfigMismatchError(
            f"image_size {config.image_size} is too small: this GoogLeNet needs at least {model.min_input_size} px"
        )
    if checkpoint is not None and list(checkpoint["classes"]) != list(train_ds.classes):
        raise ConfigMismatchError(
            f"--resume: {data_dir} has classes {train_ds.classes}, the checkpoint {checkpoint['classes']}"
        )

    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    # drop_last keeps BatchNorm away from a batch of one and every step the same size.
    steps_per_epoch = max(1, len(train_ds) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = min(total_steps, round(config.warmup_epochs * steps_per_epoch))

    def schedule(step: int) -> float:
        return lr_factor(
            config.schedule,
            step,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    history: list[dict[str, Any]] = []
    start_epoch, start_batch = 0, 0
    partial = {"loss_sum": 0.0, "correct": 0, "count": 0, "seconds": 0.0}
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        history = list(checkpoint["history"])
        start_epoch, start_batch = int(checkpoint["epoch"]), int(checkpoint["batch"])
        partial = dict(checkpoint["partial"])
        _set_rng_state(checkpoint["rng"])

    run_dir.mkdir(parents=True, exist_ok=True)
    _write_metrics(metrics_path, history)  # what the checkpoint knows, so the two never disagree
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    run_info_path = run_dir / RUN_NAME
    if checkpoint is None or not run_info_path.exists():
        run_info = {
            "config": dataclasses.asdict(config),
            "device": device_name(device),
            "device_type": device.type,
            "precision": precision,
            "versions": _versions(),
            "threads": torch.get_num_threads(),
            "command": _command_line(),
            "git_commit": _git_commit(),
            "started_at": now,
            "data_dir": str(data_dir),
            "train_images": len(train_ds),
            "val_images": len(val_ds),
            "classes": list(train_ds.classes),
            "class_names": train_ds.class_names,
            "parameters": sum(p.numel() for p in model.parameters()),
            "resumed_at": [],
        }
    else:
        run_info = json.loads(run_info_path.read_text())
        run_info.setdefault("resumed_at", []).append({"time": now, "epoch": start_epoch, "batch": start_batch})
    _write_json(run_info_path, run_info)

    forward = torch.compile(model) if config.compile else model
    val_loader = torch.utils.data.DataLoader(
        val_ds,
        batch_size=config.batch_size,
        shuffle=False,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )

    def checkpoint_state(epoch: int, batch: int) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,  # epochs finished
            "batch": batch,  # steps done in the epoch after that (0 at an epoch boundary)
            "partial": dict(partial),
            "rng": _rng_state(),
            "config": dataclasses.asdict(config),
            "classes": list(train_ds.classes),
            "history": history,
        }

    last_saved = "" if checkpoint is None else _describe_position(start_epoch, start_batch)

    def stop_here(epoch: int, batch: int, where: str) -> TrainingInterrupted:
        save_checkpoint(checkpoint_path, checkpoint_state(epoch, batch))
        return TrainingInterrupted(
            f"interrupted {where} of epoch {epoch + 1}; saved {checkpoint_path}. "
            "Continue with the same command plus --resume."
        )

    print(
        f"gnet-train: {len(train_ds)} train / {len(val_ds)} val images, {len(train_ds.classes)} classes, "
        f"{steps_per_epoch} steps/epoch on {device_name(device)} ({precision}) -> {run_dir}",
        flush=True,
    )
    with _StopRequest() as stop:
        for epoch in range(start_epoch, config.epochs):
            epoch_started = time.perf_counter()
            model.train()
            batches = _epoch_batches(train_ds, config, epoch, steps_per_epoch, start_batch, device)
            progress = _progress(steps_per_epoch, start_batch, epoch, config)
            last_lr = optimizer.param_groups[0]["lr"]
            step_started = time.perf_counter()
            for batch_index, (images, targets) in enumerate(batches, start=start_batch):
                images, targets = _to_device(images, targets, device)
                with _autocast(device, precision):
                    output = forward(images)
                    loss = gnet.googlenet_loss(
                        output, targets, aux_weight=config.aux_weight, label_smoothing=config.label_smoothing
                    )
                if _loss_hook is not None:
                    loss = _loss_hook(epoch, batch_index, loss)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    progress.close()
                    good = (
                        f"the last good checkpoint {checkpoint_path} ({last_saved}) was kept"
                        if last_saved
                        else "no checkpoint had been saved yet"
                    )
                    raise DivergedError(
                        f"the loss is {loss_value} at epoch {epoch + 1}, step {batch_index + 1} "
                        f"(learning rate {optimizer.param_groups[0]['lr']:.4g}); "
                        f"training stopped and {good}. "
                        f"Try a smaller --lr or --batch-norm."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                last_lr = optimizer.param_groups[0]["lr"]
                scheduler.step()

                partial["loss_sum"] += loss_value * len(targets)
                partial["correct"] += topk_correct(output.logits.detach().float(), targets, (1,))[0]
                partial["count"] += len(targets)
                now_t = time.perf_counter()
                partial["seconds"] += now_t - step_started
                step_started = now_t
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.3f}", lr=f"{last_lr:.3g}")
                if stop.requested:
                    progress.close()
                    raise stop_here(epoch, batch_index + 1, f"at step {batch_index + 1}/{steps_per_epoch}")
            progress.close()

            val = evaluate(forward, val_loader, device, precision, stop=stop)
            if val is None:
                raise stop_here(epoch, steps_per_epoch, "during evaluation")
            train_seconds = partial["seconds"]
            record = {
                "epoch": epoch + 1,
                "train_loss": partial["loss_sum"] / partial["count"],
                "train_top1": partial["correct"] / partial["count"],
                "val_loss": val["loss"],
                "val_top1": val["top1"],
                "val_top5": val["top5"],
                "lr": last_lr,
                "images_per_s": partial["count"] / train_seconds if train_seconds > 0 else float("nan"),
                "seconds": time.perf_counter() - epoch_started,
            }
            history.append(record)
            start_batch = 0
            partial = {"loss_sum": 0.0, "correct": 0, "count": 0, "seconds": 0.0}
            save_checkpoint(checkpoint_path, checkpoint_state(epoch + 1, 0))
            last_saved = _describe_position(epoch + 1, 0)
            with open(metrics_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(
                f"epoch {epoch + 1}/{config.epochs}  train loss {record['train_loss']:.4f}  "
                f"val loss {record['val_loss']:.4f}  val top-1 {100 * record['val_top1']:.1f} %  "
                f"top-5 {100 * record['val_top5']:.1f} %  lr {last_lr:.4g}  "
                f"{record['images_per_s']:.1f} img/s  {record['seconds']:.1f} s",
                flush=True,
            )
            if stop.requested:
                raise TrainingInterrupted(f"interrupted after epoch {epoch + 1}; {checkpoint_path} is up to date.")
    return history


def _describe_position(epoch: int, batch: int) -> str:
    return f"after epoch {epoch}" + (f" and {batch} steps of epoch {epoch + 1}" if batch else "")


def _progress(total: int, initial: int, epoch: int, config: TrainConfig):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=None if config.progress else True,  # None: only on a terminal
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    )


# ------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`TrainConfig` field plus ``--resume``."""
    parser = argparse.ArgumentParser(
        prog="gnet-train",
        description="Train GoogLeNet (Szegedy et al. 2015) on Imagenette or any train/, val/ class folders.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
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
        kind = {"int": int, "float": float, "int | None": int}.get(str(spec.type), str)
        choices = {"schedule": SCHEDULES, "device": DEVICES, "precision": PRECISIONS}.get(spec.name)
        if spec.name == "dataset_size":
            choices = tuple(gdata.IMAGENETTE_SIZES)
        parser.add_argument(flag, dest=spec.name, type=kind, default=spec.default, choices=choices, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed arguments (raises ValueError for bad values)."""
    return TrainConfig(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)})


def _one_line(error: BaseException) -> str:
    # DataLoader workers re-raise with the worker's traceback in the message: keep only the original message.
    text = str(error)
    if "Original Traceback" in text:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        text = lines[-1].split(": ", 1)[-1] if lines else text
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gnet-train`` / ``python -m gnet.train`` entry point. Returns the exit code, never a traceback
    for a user error (see the module docstring for the codes)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, or argparse's own usage error (it printed why)
        return int(exit_request.code or 0)
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"gnet-train: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        train(config, resume=args.resume)
    except (gdata.DataNotFoundError, gdata.CorruptImageError, CheckpointError, ConfigMismatchError) as error:
        print(f"gnet-train: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    except DivergedError as error:
        print(f"gnet-train: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except TrainingInterrupted as error:
        print(f"gnet-train: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
