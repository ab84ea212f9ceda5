"""A decoded-image cache: each split decoded once into a uint8 array file, memory-mapped afterwards.

Decoding JPEGs costs far more than the network on a GPU (and than augmentation on any device), and Imagenette is
small: all 13,394 images are about 0.86 GB as uint8 at 146 × 146, so they fit in RAM or GPU memory. A cache
folder holds one split::

    CACHE_ROOT/<split>-<size>px-<key>/
        images.u8       N × size × size × 3 uint8 (RGB, row-major), read with numpy.memmap
        manifest.json   the source files (path, bytes, mtime), the labels, the decode settings, a sha256

What is stored: every image exactly as :func:`gnet.data.eval_transform` sees it before cropping, i.e. the short
side resized to ``size`` (PIL, antialiased) and the centre ``size × size`` square kept. With the default
``size = round(image_size / 0.875)`` the evaluation crop of the cache is the JPEG path's crop pixel for pixel.
Training crops (:mod:`gnet.augment`) are then drawn from that square: for square sources (this project's copy of
Imagenette is square) that is the whole image, for other sources the centre square, and for 160-px images at
``--image-size 128`` a 146-px version of the image instead of the 160-px original.

When it is used: the manifest must match the split folder file for file (a changed, added or removed image
rebuilds it), the image file must have the size the manifest says (else truncated) and its sha256 must match
(else corrupt). A cache that fails a check is rebuilt, saying why; with ``rebuild=False`` it is refused with
:class:`CacheError` instead. It is never used silently. A build reserves the whole file's space on disk first
(``posix_fallocate``, so a disk that fills is one clear error before any decoding, never a crash writing a
memory-mapped page past the disk's end), writes ``images.u8.partial`` front to back without a map, renames it and
writes the manifest last; an interrupted or failed build removes its partial file, and nothing it leaves passes
the checks. A manifest that is damaged or edited (not JSON, wrong types) reads as stale and the cache is rebuilt.
No file of the cache is written through a link placed in its folder. Two processes opening the
same cache (two ranks, two runs) take turns through a lock file: the second waits and then finds it built.

Where it lives: ``cache_root``, else ``$GNET_CACHE_DIR``, else ``~/.cache/gnet/decoded``. The folder and its size
are printed when a cache is built or opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms import functional as TF

from gnet import data as gdata
from gnet._process import RunFolderError, open_plain_file
from gnet._validate import int_at_least, positive_int

__all__ = [
    "CACHE_ENV_VAR",
    "CacheError",
    "DecodedSplit",
    "default_cache_root",
    "default_cache_size",
    "open_split",
]

CACHE_ENV_VAR = "GNET_CACHE_DIR"
FORMAT = 1  # bump when what is stored changes: old caches then rebuild
DECODE = "short side resized to size (PIL bilinear, antialiased), centre size x size crop, RGB uint8"
IMAGES_NAME, MANIFEST_NAME, LOCK_NAME = "images.u8", "manifest.json", ".lock"
_CHUNK = 1 << 24


class CacheError(RuntimeError):
    """A cache that cannot be built or used; the message says which file and why."""


def default_cache_root() -> Path:
    """``$GNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/gnet/decoded`` (``~/.cache/gnet/decoded``)."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return gdata.default_download_root().parent / "decoded"


def default_cache_size(image_size: int) -> int:
    """The evaluation resize of ``image_size`` (146 for 128, 256 for 224): the size a cache stores."""
    return round(positive_int("image_size", image_size) / gdata.EVAL_CROP_FRACTION)


@dataclass(frozen=True)
class DecodedSplit:
    """One split, decoded: ``images[i]`` is a ``size × size × 3`` uint8 array, ``labels[i]`` its class index."""

    path: Path
    images: np.ndarray  # numpy.memmap, read-only
    labels: np.ndarray  # int64
    classes: list[str]
    size: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_names(self) -> list[str]:
        return gdata.class_names(self.classes)

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` for ``indices``: an N × size × size × 3 uint8 tensor and an int64 tensor."""
        index = np.asarray(indices, dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(self.images[index])), torch.from_numpy(self.labels[index])

    def __repr__(self) -> str:
        return f"DecodedSplit({str(self.path)!r}, {len(self)} images at {self.size} px, {len(self.classes)} classes)"


# ------------------------------------------------------------ the sources and their fingerprint
def _sources(split_dir: Path, subset: Sequence[tuple[str, int]] | None) -> tuple[list[str], list[list[Any]], bool]:
    """The classes, one row per chosen image, and whether the choice is the whole split (then its cache is)."""
    classes, samples = gdata._list_images(split_dir)
    whole = subset is None or [tuple(s) for s in subset] == samples
    rows = []
    for path, label in subset if subset is not None else samples:
        stat = os.stat(path)
        rows.append([os.path.relpath(path, split_dir), stat.st_size, stat.st_mtime_ns, label])
    return classes, rows, whole


def _folder_name(split_dir: Path, size: int, subset_rows: list[list[Any]] | None) -> str:
    # One folder per (split folder, size, choice of files): a subset and the whole split never overwrite each
    # other, while a whole split whose files change is rebuilt in place.
    chosen = None if subset_rows is None else [row[0] for row in subset_rows]
    key = hashlib.sha256(json.dumps([str(split_dir.resolve()), size, FORMAT, chosen]).encode())
    return f"{split_dir.name}-{size}px-{key.hexdigest()[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------ checking
def _why_stale(folder: Path, size: int, classes: list[str], rows: list[list[Any]]) -> str | None:
    """None if the cache in ``folder`` may be used, else the reason it may not."""
    manifest_path = folder / MANIFEST_NAME
    if not os.path.lexists(manifest_path):
        return "no cache yet" if not os.path.lexists(folder / IMAGES_NAME) else "an unfinished build (no manifest)"
    manifest = _read_manifest(manifest_path)
    if manifest is None:
        return f"{manifest_path} is unreadable or damaged"
    saved_rows, expected = manifest["files"], manifest["bytes"]
    if manifest["format"] != FORMAT or manifest["size"] != size or manifest["classes"] != classes:
        return "it was built with other settings or classes"
    if saved_rows != rows:
        return _describe_changes(saved_rows, rows)
    images = folder / IMAGES_NAME
    if os.path.islink(images) or (images.exists() and not images.is_file()):
        return f"{images} is not a plain file"
    actual = images.stat().st_size if images.exists() else 0
    if actual != expected:
        return f"{images} is truncated ({actual:,} of {expected:,} bytes)"
    if _sha256(images) != manifest.get("sha256"):
        return f"{images} is corrupt (its sha256 differs from the manifest's)"
    return None


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, if it is one: a JSON object whose every field has the type a build writes (else None)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 1 << 30:
            return None
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    kinds = {"format": int, "size": int, "bytes": int, "sha256": str, "classes": list, "files": list}
    if not isinstance(manifest, dict) or not all(isinstance(manifest.get(k), kind) for k, kind in kinds.items()):
        return None
    row_ok = [
        isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and all(isinstance(v, int) for v in row[1:])
        for row in manifest["files"]
    ]
    return manifest if all(row_ok) else None


def _describe_changes(saved: list[list[Any]], now: list[list[Any]]) -> str:
    old, new = {r[0]: r for r in saved}, {r[0]: r for r in now}
    added, removed = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    changed = sum(1 for name in new.keys() & old.keys() if new[name] != old[name])
    return f"the images changed since it was built ({added} added, {removed} removed, {changed} modified)"


# ------------------------------------------------------------ building
def _decode(path: str, size: int) -> np.ndarray:
    image = gdata.load_rgb(path)
    image = TF.center_crop(TF.resize(image, size, antialias=True), size)
    return np.asarray(image, dtype=np.uint8)


def _check_space(root: Path, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if free < needed * 1.05:
        raise CacheError(
            f"the decoded cache needs {needed / 1e9:.2f} GB but {root} has {free / 1e9:.2f} GB free: "
            f"point --cache-dir (or ${CACHE_ENV_VAR}) at a disk with room"
        )


def _build(folder: Path, split_dir: Path, size: int, classes: list[str], rows: list[list[Any]], workers: int) -> None:
    shape = (len(rows), size, size, 3)
    nbytes = int(np.prod(shape))
    _check_space(folder.parent, nbytes)
    for stale in (folder / MANIFEST_NAME, folder / IMAGES_NAME):
        stale.unlink(missing_ok=True)  # the manifest first: a half-deleted cache never looks complete
    partial = folder / (IMAGES_NAME + ".partial")
    partial.unlink(missing_ok=True)  # an earlier build's, or a link placed there: removed, never written through
    try:
        _write_images(partial, nbytes, [str(split_dir / row[0]) for row in rows], size, workers)
        partial.replace(folder / IMAGES_NAME)
    except BaseException as error:
        partial.unlink(missing_ok=True)  # a failed or interrupted build leaves no half-written file behind
        if isinstance(error, OSError):
            raise CacheError(
                f"cannot write the decoded cache {partial}: {error.strerror or error}; it needs {nbytes / 1e9:.2f} GB: "
                f"point --cache-dir (or ${CACHE_ENV_VAR}) at a disk with room"
            ) from None
        raise
    manifest = {
        "format": FORMAT,
        "split_dir": str(split_dir.resolve()),
        "size": size,
        "decode": DECODE,
        "shape": list(shape),
        "bytes": nbytes,
        "sha256": _sha256(folder / IMAGES_NAME),
        "classes": classes,
        "files": rows,  # [path relative to split_dir, bytes, mtime_ns, label]
    }
    from gnet.checkpoint import write_json  # atomic; imported here to keep gnet.cache free of the model

    write_json(folder / MANIFEST_NAME, manifest)


def _write_images(partial: Path, nbytes: int, paths: list[str], size: int, workers: int) -> None:
    """Decode ``paths`` into a new file ``partial``, in order, with its whole size reserved on disk first.

    Written with ``os.write``, not through a memory map: a full disk is then an OSError (ENOSPC) at the reservation
    or at a write, where a map would kill the process with SIGBUS when a page could not be stored.
    """
    fd = open_plain_file(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        if hasattr(os, "posix_fallocate") and nbytes:
            os.posix_fallocate(fd, 0, nbytes)
        pool = ThreadPoolExecutor(max(1, workers))  # PIL decodes without the GIL: threads are enough
        try:
            for array in pool.map(lambda p: _decode(p, size), paths, chunksize=64):
                view = memoryview(np.ascontiguousarray(array, dtype=np.uint8)).cast("B")
                while view:
                    view = view[os.write(fd, view) :]
        finally:  # a failed image, a full disk or a stop: the images not decoded yet are not decoded at all
            pool.shutdown(wait=True, cancel_futures=True)
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(folder: Path, log: Callable[[str], None]) -> Iterator[None]:
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    fd = open_plain_file(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"gnet: waiting for another process that is building the cache in {folder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock, also when the process dies


# ------------------------------------------------------------ opening
def open_split(
    split_dir: str | os.PathLike,
    size: int,
    *,
    cache_root: str | os.PathLike | None = None,
    subset: Sequence[tuple[str, int]] | None = None,
    rebuild: bool = True,
    workers: int = 2,
    log: Callable[[str], None] = print,
) -> DecodedSplit:
    """The decoded cache of ``split_dir`` (``DIR/train`` or ``DIR/val``) at ``size`` px, built if needed.

    ``subset``: only these ``(path, label)`` samples (an :class:`~gnet.data.ImageFolderDataset`'s ``samples``), in
    this order. A stale, truncated or corrupt cache is rebuilt (``rebuild=True``) or refused with
    :class:`CacheError`. Decoding errors raise :class:`gnet.data.CorruptImageError` naming the image.
    """
    split_dir = Path(split_dir)
    positive_int("size", size)
    int_at_least("workers", workers, 1)
    if cache_root is not None and not str(cache_root).strip():
        raise CacheError("the cache folder is an empty string: name a folder, or leave it unset for the default")
    if not split_dir.is_dir():
        raise gdata.DataNotFoundError(f"{split_dir} is not a folder")
    classes, rows, whole = _sources(split_dir, subset)
    root = Path(cache_root).expanduser() if cache_root is not None else default_cache_root()
    if root.exists() and not root.is_dir():
        raise CacheError(f"the cache root {root} is a file, not a folder")
    folder = root / _folder_name(split_dir, size, None if whole else rows)
    try:
        return _open_built(folder, split_dir, size, classes, rows, rebuild, workers, log)
    except RunFolderError as error:
        raise CacheError(f"the decoded cache cannot be used: {error}") from None
    except OSError as error:  # not the run folder's problem: say it is the cache's
        where = f" ({error.filename})" if error.filename else ""
        raise CacheError(
            f"cannot use the decoded cache in {folder}: {error.strerror or error}{where}; "
            f"point --cache-dir (or ${CACHE_ENV_VAR}) elsewhere"
        ) from None


def _open_built(
    folder: Path,
    split_dir: Path,
    size: int,
    classes: list[str],
    rows: list[list[Any]],
    rebuild: bool,
    workers: int,
    log: Callable[[str], None],
) -> DecodedSplit:
    with _locked(folder, log):
        reason = _why_stale(folder, size, classes, rows)
        if reason is not None:
            if reason != "no cache yet" and not rebuild:
                raise CacheError(f"the decoded cache in {folder} cannot be used: {reason}")
            started = time.perf_counter()
            log(f"gnet: decoding {len(rows)} images of {split_dir} into {folder} ({reason})")
            _build(folder, split_dir, size, classes, rows, workers)
            log(f"gnet: decoded in {time.perf_counter() - started:.0f} s")
    images = np.memmap(folder / IMAGES_NAME, dtype=np.uint8, mode="r", shape=(len(rows), size, size, 3))
    labels = np.array([row[3] for row in rows], dtype=np.int64)
    log(f"gnet: using the decoded cache {folder} ({images.nbytes / 1e9:.2f} GB, {len(rows)} images at {size} px)")
    return DecodedSplit(folder, images, labels, classes, size)
