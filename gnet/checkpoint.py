"""Checkpoints that rebuild their own model.

A gnet checkpoint is a ``torch.save`` of plain Python values and tensors, so ``torch.load(path,
weights_only=True)`` reads it and no pickle of ours ever runs. Two kinds share one layout:

* a **training checkpoint** (``last.pt``, written by :mod:`gnet.train` after every epoch and on a stop): the
  weights, every network switch, the class names and the training config, plus what resuming needs (optimizer,
  grad scaler, RNG states, position in the run, the history of finished epochs);
* a **weights file** (:func:`export_weights`): the same first part, no training state, optionally in fp16.

:func:`load_checkpoint` reads either and returns the network with every switch restored, from the file alone.
Files are written atomically (a temp file in the same folder, fsync, ``os.replace``), so a reader sees the old
or the new file, never half of one; ``os.replace`` replaces a link placed at the path instead of writing through
it, and a stop signal that arrives meanwhile waits until the file is whole. A file whose contents have the wrong
types (a tensor where the weights should be, fewer class names than classes, a damaged optimizer state) or whose
weights are not finite is refused with :class:`CheckpointError`, never half-used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from gnet._process import signals_held
from gnet._validate import MAX_IMAGE_SIZE
from gnet.model import GoogLeNet, GoogLeNetConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointError",
    "atomic_write",
    "export_weights",
    "load_checkpoint",
    "model_state",
    "read_checkpoint",
    "save_checkpoint",
    "write_json",
]

#: Version of the layout; a file with another version is refused with a message, never half-read.
CHECKPOINT_FORMAT = 2

#: What every gnet checkpoint holds (see :func:`model_state`).
MODEL_KEYS = frozenset({"format", "model", "model_config", "classes", "class_names"})

#: What a training checkpoint holds on top, to resume.
TRAINING_KEYS = frozenset({"optimizer", "scaler", "epoch", "batch", "tally", "rng", "train_config", "history"})


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or not a gnet checkpoint; the message names the file."""


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns: the rebuilt network (eval mode) and what the file says of it."""

    model: GoogLeNet
    classes: list[str]  # folder names (WordNet ids for Imagenette), in label order
    class_names: list[str]  # readable names, same order
    train_config: dict[str, Any] | None  # the TrainConfig that made it, as a dict (None if not recorded)
    metadata: dict[str, Any]  # anything else stored (epoch, history, recipe, measured accuracy, ...)

    def trained_with(self, key: str, default: Any = None) -> Any:
        """A setting of the run that made these weights (``"image_size"``, ``"dataset_size"``), where known."""
        for source in (self.train_config or {}, self.metadata.get("metadata", {})):
            if key in source:
                return source[key]
        return default


# ------------------------------------------------------------ files
def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temp file beside ``path``, fsync it, then rename it onto ``path``.

    The temp file is new (``O_EXCL``: never a link someone placed), and the rename replaces whatever ``path`` is,
    a symbolic link included, rather than following it. Stop signals wait until the rename is done.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with signals_held():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file should honour the umask
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


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented strict JSON (no NaN), atomically."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text), mode="w")


# ------------------------------------------------------------ writing
def model_state(model: GoogLeNet, classes: list[str], class_names: list[str]) -> dict[str, Any]:
    """The part of every checkpoint that rebuilds the network: weights, every switch, the classes."""
    if len(classes) != model.config.num_classes or len(class_names) != len(classes):
        raise ValueError(
            f"the model has {model.config.num_classes} classes, got {len(classes)} classes and {len(class_names)} names"
        )
    return {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "model_config": dataclasses.asdict(model.config),
        "classes": list(classes),
        "class_names": list(class_names),
    }


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (a :func:`model_state` dict, plus anything else) to ``path`` atomically."""
    missing = sorted(MODEL_KEYS - set(state))
    if missing:
        raise ValueError(f"a gnet checkpoint needs {sorted(MODEL_KEYS)}; missing {missing}")
    atomic_write(path, lambda handle: torch.save(state, handle))


def export_weights(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    half: bool = True,
    aux_heads: bool = True,
    **metadata: Any,
) -> Path:
    """Write the weights of ``checkpoint`` (training or weights file) to ``out``, without training state.

    ``half=True`` stores floating-point tensors as fp16 (half the size; :func:`load_checkpoint` casts them
    back to float32). ``aux_heads=False`` leaves out the auxiliary heads, which only training uses (a third of a
    full-width network's parameters); the stored switches then say ``aux_logits=False``, so the network rebuilt
    from the file has none. ``metadata`` (JSON-like values: recipe, measured accuracy, ...) is stored beside them.
    """
    state = read_checkpoint(checkpoint)
    model_config = dict(state["model_config"])
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in state["model"].items()}
    if not aux_heads:
        weights = {k: v for k, v in weights.items() if not k.startswith(("aux1.", "aux2."))}
        model_config["aux_logits"] = False
    kept = {key: state[key] for key in MODEL_KEYS} | {
        "model": weights,
        "model_config": model_config,
        "storage": "fp16" if half else "fp32",
    }
    if state.get("train_config") is not None:
        kept["train_config"] = state["train_config"]
    save_checkpoint(out, kept | {"metadata": metadata})
    return Path(out)


# ------------------------------------------------------------ reading
def read_checkpoint(path: str | os.PathLike, *, training: bool = False) -> dict[str, Any]:
    """The raw contents of a gnet checkpoint, read with ``weights_only=True``.

    With ``training=True`` the file must also hold the training state (for ``--resume``). Raises
    :class:`CheckpointError` naming the file for anything else: missing, damaged, not gnet's, another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a plain torch file ({type(error).__name__}: {first_line[:160]}). "
            "Do not load it with weights_only=False: that runs whatever code the file holds."
        ) from None
    required = MODEL_KEYS | (TRAINING_KEYS if training else frozenset())
    if not isinstance(state, dict) or not required <= set(state):
        missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
        kind = "training checkpoint" if training else "checkpoint"
        raise CheckpointError(f"{path} is not a gnet {kind} (missing {missing})")
    if not isinstance(state["format"], int) or state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state['format']!r}, this gnet reads {CHECKPOINT_FORMAT}")
    problem = _wrong_contents(state, training)
    if problem:
        raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    return state


def _wrong_contents(state: dict[str, Any], training: bool) -> str | None:
    """What is wrong with the types and sizes of a checkpoint's contents (None: nothing)."""
    weights, config = state["model"], state["model_config"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        return f"'model' must map parameter names to tensors, got {type(weights).__name__}"
    if not isinstance(config, dict):
        return f"'model_config' must be a dict, got {type(config).__name__}"
    classes, names = state["classes"], state["class_names"]
    for key, value in (("classes", classes), ("class_names", names)):
        if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
            return f"{key!r} must be a non-empty list of names, got {_describe(value)}"
    if len(names) != len(classes) or config.get("num_classes", len(classes)) != len(classes):
        return (
            f"it names {len(classes)} classes and {len(names)} readable names for a network of "
            f"{config.get('num_classes')!r} classes: the three must agree"
        )
    not_finite = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if not_finite:
        return (
            f"it holds weights that are NaN or infinite ({len(not_finite)} tensors, first {not_finite[0]}): "
            "its predictions would mean nothing"
        )
    train_config = state.get("train_config")
    if train_config is not None and not isinstance(train_config, dict):
        return f"'train_config' must be a dict, got {type(train_config).__name__}"
    image_size = (train_config or {}).get("image_size", 224)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        return f"its training image_size must be an int from 1 to {MAX_IMAGE_SIZE}, got {image_size!r}"
    if not training:
        return None
    expected = {"optimizer": dict, "scaler": dict, "tally": dict, "rng": dict, "train_config": dict, "history": list}
    for key, kind in expected.items():
        if not isinstance(state[key], kind):
            return f"{key!r} must be a {kind.__name__}, got {_describe(state[key])}"
    for key in ("epoch", "batch"):
        if isinstance(state[key], bool) or not isinstance(state[key], int) or state[key] < 0:
            return f"{key!r} must be an int >= 0, got {state[key]!r}"
    if not all(isinstance(record, dict) for record in state["history"]) or len(state["history"]) != state["epoch"]:
        return f"'history' must hold one dict per finished epoch ({state['epoch']}), got {_describe(state['history'])}"
    return None


def _describe(value: Any) -> str:
    return f"a {type(value).__name__} of {len(value)}" if isinstance(value, (list, tuple, dict)) else repr(value)[:80]


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Checkpoint:
    """The network stored in ``path``, every switch and weight restored, in eval mode on ``device``.

    Works for a training checkpoint (``last.pt``) and for a weights file (:func:`export_weights`), from the
    file alone. fp16-stored weights come back as float32.
    """
    state = read_checkpoint(path)
    known = {f.name for f in dataclasses.fields(GoogLeNetConfig)}
    unknown = sorted(set(state["model_config"]) - known)
    if unknown:
        raise CheckpointError(f"checkpoint {path} has network switches this gnet does not know: {unknown}")
    try:
        model = GoogLeNet(GoogLeNetConfig(**state["model_config"]))
        weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state["model"].items()}
        model.load_state_dict(weights)
    except (ValueError, RuntimeError, TypeError) as error:  # bad switch values or types, weights of another shape
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"checkpoint {path} does not rebuild a GoogLeNet: {first_line[:200]}") from None
    metadata = {k: v for k, v in state.items() if k not in MODEL_KEYS | {"train_config", "optimizer", "scaler"}}
    metadata.pop("rng", None)
    return Checkpoint(
        model=model.to(device).eval(),
        classes=list(state["classes"]),
        class_names=list(state["class_names"]),
        train_config=state.get("train_config"),
        metadata=metadata,
    )
