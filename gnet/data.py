"""Imagenette (or any folder of images in the same layout) for training GoogLeNet.

Layout, the same as fastai's archives, ``torchvision.datasets.Imagenette`` and ILSVRC-2012 (ImageNet-1k) once its
validation images are sorted into class folders::

    DIR/train/<class>/*.JPEG
    DIR/val/<class>/*.JPEG

Labels are the class folders in sorted order, as ``torchvision.datasets.ImageFolder`` numbers them, so for ImageNet
(folders named by WordNet id) class ``i`` is torchvision's ImageNet class ``i``.

Where the data lives, one order for every chapter and command (:func:`resolve_data_dir`):

1. an explicit ``data_dir`` (``--data-dir``): used alone, never swapped for another folder;
2. else the folder in the environment variable ``GNET_DATA_DIR``;
3. else gnet's download folder, ``~/.cache/gnet/data`` (``$XDG_CACHE_HOME/gnet/data``);
4. where none holds the data and a download is asked for (``--download``, the chapters): Imagenette is fetched
   through ``torchvision.datasets.Imagenette`` into the first of those three that is given.

Each folder is taken as the dataset itself (``train/`` and ``val/`` inside) or as one holding
``imagenette2-160/`` (``-320``, ``imagenette2/``), the layout torchvision's download leaves.

Awkward files: greyscale, palette (with or without transparency), CMYK and 16-bit images are converted to RGB.
A corrupt or truncated file STOPS the run with :class:`CorruptImageError` naming the file. Skipping would
silently change the dataset (and so every number the book reports) and would make batch sizes depend on
which files happen to be broken; a stopped run with the path in the message is easy to fix (delete or
re-download the file), and :func:`find_corrupt_images` lists every bad file in one pass. The check is lazy
(at load time), so it costs nothing up front, and the error is a plain one-argument exception, so DataLoader
worker processes re-raise it in the main process with the message intact.
"""

from __future__ import annotations

import os
import random
import re
import stat
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError
from torchvision import transforms

from gnet._validate import int_at_least, positive_int

__all__ = [
    "DATA_ENV_VAR",
    "IMAGENETTE_CLASSES",
    "IMAGENETTE_SIZES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CorruptImageError",
    "DataNotFoundError",
    "ImageFolderDataset",
    "build_datasets",
    "class_names",
    "data_search_path",
    "default_download_root",
    "download_command",
    "eval_transform",
    "find_corrupt_images",
    "load_rgb",
    "portable_path",
    "resolve_data_dir",
    "train_transform",
]

DATA_ENV_VAR = "GNET_DATA_DIR"

# (WordNet id, readable name) in sorted-wnid order, which is also the label order. Names as torchvision's
# Imagenette class gives them first.
IMAGENETTE_CLASSES: tuple[tuple[str, str], ...] = (
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
)

# torchvision's size argument -> the folder its archive unpacks to.
IMAGENETTE_SIZES: dict[str, str] = {
    "160px": "imagenette2-160",
    "320px": "imagenette2-320",
    "full": "imagenette2",
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Paper, section 6: "patches of the image whose size is distributed evenly between 8% and 100% of the image
# area with aspect ratio constrained to the interval [3/4, 4/3]".
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
# Standard ImageNet evaluation: resize the short side to image_size / 0.875 (256 for 224), centre crop.
EVAL_CROP_FRACTION = 0.875

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# What one image may cost, checked before it is decoded: bytes on disk (from stat, before reading), pixels and the
# ratio of the long side to the short one (from the header). The evaluation resize makes the short side the crop's
# size, so a 60000 × 1 image would become a strip of hundreds of millions of pixels; a photograph is rarely beyond
# 4:1. ImageNet's largest files are a few MB and under 20 megapixels.
MAX_IMAGE_BYTES = 256 * 2**20
MAX_IMAGE_PIXELS = 64_000_000
MAX_ASPECT_RATIO = 20


class DataNotFoundError(FileNotFoundError):
    """The training data is not where gnet looked; the message says where it looked and how to download."""


class CorruptImageError(RuntimeError):
    """An image file could not be decoded; the message names the file."""


# ------------------------------------------------------------ finding data
# Archive sizes (fastai/imagenette), for the messages that offer a download.
ARCHIVE_SIZES = {"160px": "99 MB", "320px": "342 MB", "full": "1.56 GB"}


def default_download_root() -> Path:
    """gnet's download folder, the last place :func:`resolve_data_dir` looks: ``$XDG_CACHE_HOME/gnet/data``,
    that is ``~/.cache/gnet/data``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gnet" / "data"


def download_command(size: str = "160px", root: str | os.PathLike | None = None) -> str:
    """The shell command that downloads Imagenette-``size`` into ``root`` (gnet's download folder by default)."""
    root = Path(root) if root is not None else default_download_root()
    return (
        f'python -c "import torchvision; torchvision.datasets.Imagenette('
        f"root='{root}', size='{size}', download=True)\""
    )


def data_search_path(data_dir: str | os.PathLike | None = None) -> tuple[list[Path], Path]:
    """The folders :func:`resolve_data_dir` looks in, in order, and the one a download goes to.

    An explicit ``data_dir`` is the only place; else ``$GNET_DATA_DIR`` (when set), then gnet's download folder.
    """
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        return [root], root
    download_root = default_download_root()
    from_env = os.environ.get(DATA_ENV_VAR) or None
    if from_env is None:
        return [download_root], download_root
    root = Path(from_env).expanduser()
    return [root, download_root], root


def portable_path(text: str) -> str:
    """``text`` (a path, or a command line holding paths) as a reader on another machine can use it: a path inside
    ``$GNET_DATA_DIR`` is written ``$GNET_DATA_DIR/...``, one inside gnet's download folder ``~/.cache/gnet/data/...``
    (``$XDG_CACHE_HOME/gnet/data/...`` where that is set). Recorded runs keep their commands this way."""
    places = [(os.environ.get(DATA_ENV_VAR) or None, f"${DATA_ENV_VAR}")]
    places.append(
        (
            str(default_download_root()),
            "$XDG_CACHE_HOME/gnet/data" if os.environ.get("XDG_CACHE_HOME") else "~/.cache/gnet/data",
        )
    )
    for root, name in places:
        if root is None or len(Path(root).resolve().parts) < 2:  # never rewrite "/" itself
            continue
        for spelling in {root.rstrip("/"), str(Path(root).resolve())}:
            text = re.sub(re.escape(spelling) + r"(?=/|$|\s|')", name, text)  # names hold no backslash
    return text


def _holds(path: Path, splits: Sequence[str]) -> bool:
    return all((path / split).is_dir() for split in splits)


def _check_size(size: str) -> None:
    if size not in IMAGENETTE_SIZES:
        raise ValueError(f"size must be one of {sorted(IMAGENETTE_SIZES)}, got {size!r}")


def resolve_data_dir(
    data_dir: str | os.PathLike | None = None,
    size: str = "160px",
    download: bool = False,
    *,
    splits: Sequence[str] = ("train", "val"),
) -> Path:
    """Return the folder that holds ``splits`` (``train/`` and ``val/``; evaluation asks for ``val/`` alone).

    Looks in :func:`data_search_path`'s folders in order (an explicit ``data_dir`` alone; else ``$GNET_DATA_DIR``,
    then gnet's download folder), each as the dataset itself or as the folder holding ``imagenette2-<size>/``.
    With ``download=True`` a missing Imagenette is downloaded into the first of them. Raises
    :class:`DataNotFoundError` saying where it looked and how to get the data otherwise.
    """
    _check_size(size)
    folder = IMAGENETTE_SIZES[size]
    roots, download_root = data_search_path(data_dir)
    looked: list[Path] = []
    for root in roots:
        for candidate in (root, root / folder):
            looked.append(candidate)
            if _holds(candidate, splits):
                return candidate
    for root in roots:  # a near miss says what is wrong with it, not only that it was not found
        _explain_near_miss(root, folder, splits)
    if download:
        return _download_imagenette(download_root, size)
    wanted = " and ".join(f"{split}/" for split in splits)
    alone = " (an explicit --data-dir is used alone)" if data_dir is not None else ""
    raise DataNotFoundError(
        f"Imagenette ({size}) not found: looked for {wanted} in {', '.join(str(p) for p in looked)}{alone}.\n"
        f"Download it ({ARCHIVE_SIZES[size]}) with:\n    {download_command(size, download_root)}\n"
        f"or pass --download to gnet-train, or point ${DATA_ENV_VAR} at a folder holding {folder}/."
    )


def _explain_near_miss(root: Path, folder: str, splits: Sequence[str]) -> None:
    if root.exists() and not root.is_dir():
        raise DataNotFoundError(f"{root} is a file, not a folder holding {' and '.join(s + '/' for s in splits)}")
    for candidate in (root, root / folder):
        halves = [split for split in ("train", "val") if (candidate / split).is_dir()]
        if len(halves) == 1 and len(splits) == 2:
            missing = "val" if halves == ["train"] else "train"
            raise DataNotFoundError(f"{candidate} has {halves[0]}/ but no {missing}/: both splits are needed")


def _download_imagenette(root: Path, size: str) -> Path:
    from torchvision.datasets import Imagenette

    path = root / IMAGENETTE_SIZES[size]
    if path.exists():  # torchvision < 0.21 refuses to download over it ("already exists"), later ones skip it
        raise DataNotFoundError(
            f"{path} exists but does not hold train/ and val/ (an interrupted download?): delete it and download again"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        Imagenette(root=str(root), split="train", size=size, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; torchvision raises RuntimeError on md5
        raise DataNotFoundError(
            f"Downloading Imagenette ({size}) into {root} failed: {error}.\n"
            f"With a network, retry with:\n    {download_command(size, root)}"
        ) from None
    if not _holds(path, ("train", "val")):
        raise DataNotFoundError(f"Download finished but {path} has no train/ and val/ folders.")
    return path


# ------------------------------------------------------------ images
def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open any image as 8-bit RGB; raise :class:`CorruptImageError` naming ``path`` if it can't be decoded.

    Greyscale (L, I;16, I, F), palette (P, with transparency too), CMYK, LA and RGBA all become RGB.
    Truncated files raise: Pillow's ``LOAD_TRUNCATED_IMAGES`` would pad them with grey and hide the damage.
    Memory is bounded before anything is decoded: a file must be a plain file of at most ``MAX_IMAGE_BYTES``, and
    its header must promise at most ``MAX_IMAGE_PIXELS`` pixels and sides within ``MAX_ASPECT_RATIO`` of each other.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped Pillow's global; don't inherit it silently
        warnings.warn("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated files will not be detected", stacklevel=2)
    try:
        _check_file_size(path)
        with open(path, "rb") as handle, warnings.catch_warnings():
            # Palette images with transparency warn about converting via RGBA, which we do explicitly below.
            warnings.simplefilter("ignore", UserWarning)
            try:
                image = Image.open(handle)  # reads the header only
            except UnidentifiedImageError:  # its own message names a BytesIO or a handle, not the file
                raise CorruptImageError(
                    f"cannot decode image {path}: not an image file Pillow can read (JPEG, PNG, ...). "
                    "Delete or replace this file"
                ) from None
            except Image.DecompressionBombError as error:  # Pillow's own limit, above gnet's: same answer
                raise CorruptImageError(
                    f"cannot decode image {path}: {error.args[0].split(' exceeds')[0]}; gnet takes at most "
                    f"{MAX_IMAGE_PIXELS:,} pixels (gnet.data.MAX_IMAGE_PIXELS)"
                ) from None
            _check_dimensions(path, image.size)
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.asarray(image, dtype=np.float64)
                top = array.max() if array.size and array.max() > 0 else 1.0
                image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), mode="L")
            if image.mode == "P" or image.mode == "LA":
                image = image.convert("RGBA")
            if image.mode == "RGBA":  # composite on white instead of dropping alpha onto black
                background = Image.new("RGB", image.size, (255, 255, 255))
                background.paste(image, mask=image.getchannel("A"))
                image = background
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # OSError covers "image file is truncated" and a file that cannot be opened.
        raise CorruptImageError(
            f"cannot decode image {path}: {error}. Delete or re-download this file "
            f"(gnet.data.find_corrupt_images(DIR) lists every bad file)."
        ) from None


def _check_file_size(path: str | os.PathLike) -> None:
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise CorruptImageError(f"cannot decode image {path}: it is not a plain file (a device, a pipe or a folder)")
    if info.st_size > MAX_IMAGE_BYTES:
        raise CorruptImageError(
            f"cannot decode image {path}: it is {info.st_size / 2**20:,.0f} MiB, more than the "
            f"{MAX_IMAGE_BYTES / 2**20:.0f} MiB gnet reads for one image (gnet.data.MAX_IMAGE_BYTES)"
        )


def _check_dimensions(path: str | os.PathLike, size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS or max(size) > MAX_ASPECT_RATIO * min(size):
        raise CorruptImageError(
            f"cannot decode image {path}: it is {width} × {height} pixels; gnet takes at most "
            f"{MAX_IMAGE_PIXELS:,} pixels with the long side at most {MAX_ASPECT_RATIO} times the short one "
            "(gnet.data.MAX_IMAGE_PIXELS, MAX_ASPECT_RATIO), so that one image cannot exhaust the memory"
        )


def _list_images(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
    if not classes:
        loose = any(entry.name.lower().endswith(IMAGE_EXTENSIONS) for entry in os.scandir(split_dir))
        raise DataNotFoundError(
            f"{split_dir} has no class folders (expected {split_dir}/<class>/*.JPEG)"
            + (
                ". Its images lie directly in it, as ILSVRC-2012's validation archive unpacks: sort them into "
                "<wnid>/ folders first (torchvision.datasets.ImageNet(root, split='val') does it with the devkit)"
                if loose
                else ""
            )
        )
    samples: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        files = sorted(
            entry.path
            for entry in os.scandir(split_dir / name)
            if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not files:
            # An empty folder would become a class no image can teach, and shift every label after it.
            raise DataNotFoundError(f"{split_dir / name} has no images ({', '.join(IMAGE_EXTENSIONS)}): remove it")
        samples.extend((path, label) for path in files)
    return classes, samples


class ImageFolderDataset(torch.utils.data.Dataset):
    """``split_dir/<class>/<image>`` as (image, label) pairs, labels in sorted class-folder order.

    ``subset_per_class`` keeps a random (``seed``) but fixed choice of that many images per class, so short
    runs still see every class.
    """

    def __init__(
        self,
        split_dir: str | os.PathLike,
        transform: Callable | None = None,
        *,
        subset_per_class: int | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(split_dir)
        if not self.root.is_dir():
            raise DataNotFoundError(f"{self.root} is not a folder")
        int_at_least("subset_per_class", subset_per_class, 1, optional=True)
        self.classes, samples = _list_images(self.root)
        if subset_per_class is not None:
            rng = random.Random(seed)
            kept: list[tuple[str, int]] = []
            for label in range(len(self.classes)):
                members = [s for s in samples if s[1] == label]
                kept.extend(sorted(rng.sample(members, min(subset_per_class, len(members)))))
            samples = kept
        self.samples = samples
        self.targets = [label for _, label in samples]
        self.transform = transform

    @property
    def class_names(self) -> list[str]:
        return class_names(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        image = load_rgb(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self) -> str:
        return f"ImageFolderDataset({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes)"


def class_names(folder_names: Sequence[str]) -> list[str]:
    """Readable names for Imagenette wnids; other folder names are returned unchanged."""
    readable = dict(IMAGENETTE_CLASSES)
    return [readable.get(name, name) for name in folder_names]


def find_corrupt_images(data_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """Decode every image under ``data_dir``; return ``(path, error)`` for each one that fails."""
    bad = []
    for path in sorted(Path(data_dir).rglob("*")):
        if path.is_file() and path.name.lower().endswith(IMAGE_EXTENSIONS):
            try:
                load_rgb(path)
            except CorruptImageError as error:
                bad.append((str(path), str(error)))
    return bad


# ------------------------------------------------------------ transforms
def train_transform(image_size: int) -> transforms.Compose:
    """Random 8-100 % area crop, aspect 3/4-4/3, resized to ``image_size``; horizontal flip; ImageNet norm."""
    positive_int("image_size", image_size)
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(image_size: int) -> transforms.Compose:
    """Resize the short side to ``round(image_size / 0.875)``, centre crop ``image_size``; ImageNet norm."""
    positive_int("image_size", image_size)
    return transforms.Compose(
        [
            transforms.Resize(round(image_size / EVAL_CROP_FRACTION), antialias=True),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def build_datasets(
    data_dir: str | os.PathLike,
    image_size: int,
    *,
    subset_per_class: int | None = None,
    seed: int = 0,
    val_subset_per_class: int | None = None,
) -> tuple[ImageFolderDataset, ImageFolderDataset]:
    """Train and val datasets from ``data_dir/train`` and ``data_dir/val`` with the book's transforms.

    ``subset_per_class`` limits both splits to that many images per class (``val_subset_per_class`` overrides
    it for val). Raises :class:`DataNotFoundError` if the folders are missing, ``ValueError`` if the two
    splits have different classes.
    """
    root = Path(data_dir)
    if not _holds(root, ("train", "val")):
        raise DataNotFoundError(f"{root} must hold train/ and val/ folders (DIR/train/<class>/*.JPEG)")
    val_subset = subset_per_class if val_subset_per_class is None else val_subset_per_class
    train_ds = ImageFolderDataset(
        root / "train", train_transform(image_size), subset_per_class=subset_per_class, seed=seed
    )
    val_ds = ImageFolderDataset(root / "val", eval_transform(image_size), subset_per_class=val_subset, seed=seed)
    if train_ds.classes != val_ds.classes:
        raise ValueError(f"train and val class folders differ: {train_ds.classes} vs {val_ds.classes}")
    return train_ds, val_ds
