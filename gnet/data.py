"""Imagenette (or any folder of images in the same layout) for training GoogLeNet.

Layout, the same as fastai's archives, ``torchvision.datasets.Imagenette`` and ILSVRC-2012 (ImageNet-1k) once its
validation images are sorted into class folders::

    DIR/train/<class>/*.JPEG
    DIR/val/<class>/*.JPEG

Labels are the class folders in sorted order, as ``torchvision.datasets.ImageFolder`` numbers them, so for ImageNet
(folders named by WordNet id) class ``i`` is torchvision's ImageNet class ``i``.

Where the data lives: an explicit ``data_dir``, else the environment variable ``GNET_DATA_DIR`` (a folder that
holds ``imagenette2-160`` and friends, or a ``train``/``val`` folder itself). With ``download=True`` a missing
archive is fetched through ``torchvision.datasets.Imagenette``.

Awkward files: greyscale, palette (with or without transparency), CMYK and 16-bit images are converted to RGB.
A corrupt or truncated file STOPS the run with :class:`CorruptImageError` naming the file. Skipping would
silently change the dataset (and so every number the book reports) and would make batch sizes depend on
which files happen to be broken; a stopped run with the path in the message is easy to fix (delete or
re-download the file), and :func:`find_corrupt_images` lists every bad file in one pass. The check is lazy
(at load time), so it costs nothing up front, and the error is a plain one-argument exception, so DataLoader
worker processes re-raise it in the main process with the message intact.
"""

from __future__ import annotations

import io
import os
import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile
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
    "default_download_root",
    "download_command",
    "eval_transform",
    "find_corrupt_images",
    "load_rgb",
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


class DataNotFoundError(FileNotFoundError):
    """The training data is not where gnet looked; the message says where it looked and how to download."""


class CorruptImageError(RuntimeError):
    """An image file could not be decoded; the message names the file."""


# ------------------------------------------------------------ finding data
def default_download_root() -> Path:
    """Where ``download=True`` puts Imagenette when neither ``data_dir`` nor ``$GNET_DATA_DIR`` is set."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gnet" / "data"


def download_command(size: str = "160px", root: str | os.PathLike | None = None) -> str:
    """The shell command that downloads Imagenette-``size`` into ``root``."""
    root = Path(root) if root is not None else default_download_root()
    return (
        f'python -c "import torchvision; torchvision.datasets.Imagenette('
        f"root='{root}', size='{size}', download=True)\""
    )


def _is_split_root(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "val").is_dir()


def _check_size(size: str) -> None:
    if size not in IMAGENETTE_SIZES:
        raise ValueError(f"size must be one of {sorted(IMAGENETTE_SIZES)}, got {size!r}")


def resolve_data_dir(data_dir: str | os.PathLike | None = None, size: str = "160px", download: bool = False) -> Path:
    """Return the folder that holds ``train/`` and ``val/``.

    Looks at ``data_dir`` (the folder itself, or ``data_dir/imagenette2-<size>``); only when no ``data_dir`` is
    given, at ``$GNET_DATA_DIR`` in the same two ways, so an explicit folder is never silently swapped for
    another dataset. With ``download=True`` a missing Imagenette is downloaded into ``data_dir``, else
    ``$GNET_DATA_DIR``, else :func:`default_download_root`. Raises :class:`DataNotFoundError` with the
    download command otherwise.
    """
    _check_size(size)
    folder = IMAGENETTE_SIZES[size]
    chosen = data_dir if data_dir is not None else (os.environ.get(DATA_ENV_VAR) or None)
    roots = [Path(chosen).expanduser()] if chosen is not None else []
    looked: list[Path] = []
    for root in roots:
        for candidate in (root, root / folder):
            looked.append(candidate)
            if _is_split_root(candidate):
                return candidate

    for root in roots:  # a near miss says what is wrong with it, not only that it was not found
        if root.exists() and not root.is_dir():
            raise DataNotFoundError(f"{root} is a file, not a folder holding train/ and val/")
        for candidate in (root, root / folder):
            halves = [split for split in ("train", "val") if (candidate / split).is_dir()]
            if len(halves) == 1:
                missing = "val" if halves == ["train"] else "train"
                raise DataNotFoundError(f"{candidate} has {halves[0]}/ but no {missing}/: both splits are needed")
    download_root = roots[0] if roots else default_download_root()
    if download:
        return _download_imagenette(download_root, size)

    where = ", ".join(str(p) for p in looked) if looked else f"nowhere (no data_dir and ${DATA_ENV_VAR} is unset)"
    raise DataNotFoundError(
        f"Imagenette ({size}) not found: looked for train/ and val/ in {where}.\n"
        f"Download it (99 MB for 160px) with:\n    {download_command(size, download_root)}\n"
        f"or pass --download to gnet-train, or point ${DATA_ENV_VAR} at a folder holding {folder}/."
    )


def _download_imagenette(root: Path, size: str) -> Path:
    from torchvision.datasets import Imagenette

    try:
        root.mkdir(parents=True, exist_ok=True)
        Imagenette(root=str(root), split="train", size=size, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; torchvision raises RuntimeError on md5
        raise DataNotFoundError(
            f"Downloading Imagenette ({size}) into {root} failed: {error}.\n"
            f"With a network, retry with:\n    {download_command(size, root)}"
        ) from None
    path = root / IMAGENETTE_SIZES[size]
    if not _is_split_root(path):
        raise DataNotFoundError(f"Download finished but {path} has no train/ and val/ folders.")
    return path


# ------------------------------------------------------------ images
def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open any image as 8-bit RGB; raise :class:`CorruptImageError` naming ``path`` if it can't be decoded.

    Greyscale (L, I;16, I, F), palette (P, with transparency too), CMYK, LA and RGBA all become RGB.
    Truncated files raise: Pillow's ``LOAD_TRUNCATED_IMAGES`` would pad them with grey and hide the damage.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped Pillow's global; don't inherit it silently
        warnings.warn("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated files will not be detected", stacklevel=2)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        with warnings.catch_warnings():
            # Palette images with transparency warn about converting via RGBA, which we do explicitly below.
            warnings.simplefilter("ignore", UserWarning)
            image = Image.open(io.BytesIO(data))
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
        # OSError covers UnidentifiedImageError and "image file is truncated".
        raise CorruptImageError(
            f"cannot decode image {path}: {error}. Delete or re-download this file "
            f"(gnet.data.find_corrupt_images(DIR) lists every bad file)."
        ) from None


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
    if not _is_split_root(root):
        raise DataNotFoundError(f"{root} must hold train/ and val/ folders (DIR/train/<class>/*.JPEG)")
    val_subset = subset_per_class if val_subset_per_class is None else val_subset_per_class
    train_ds = ImageFolderDataset(
        root / "train", train_transform(image_size), subset_per_class=subset_per_class, seed=seed
    )
    val_ds = ImageFolderDataset(root / "val", eval_transform(image_size), subset_per_class=val_subset, seed=seed)
    if train_ds.classes != val_ds.classes:
        raise ValueError(f"train and val class folders differ: {train_ds.classes} vs {val_ds.classes}")
    return train_ds, val_ds
