"""Test fixtures: tiny datasets of real image files, for the tests and the book's exercises.

Nothing here is data to report results on: a fixture is learnable but meaningless.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from gnet.data import IMAGENETTE_CLASSES

__all__ = ["make_fixture_dataset"]


def make_fixture_dataset(
    root: str | os.PathLike,
    *,
    num_classes: int = 3,
    per_split: int = 4,
    image_size: int = 48,
    seed: int = 0,
    awkward: bool = True,
) -> Path:
    """Write a tiny dataset of real JPEG files: ``root/train/<class>/*.JPEG`` and ``root/val/...``.

    TEST FIXTURE ONLY: each class is a coloured blob on noise, learnable but meaningless; never report
    results on it. With ``awkward=True`` the first image of each train class is stored greyscale (L),
    palette (P, a PNG named ``.JPEG``, as a few ImageNet files are) or CMYK in turn. Returns ``root``.
    """
    if num_classes < 1 or per_split < 1 or image_size < 8:
        raise ValueError(
            f"need num_classes >= 1, per_split >= 1, image_size >= 8; got {num_classes}, {per_split}, {image_size}"
        )
    root = Path(root)
    rng = np.random.default_rng(seed)
    wnids = [wnid for wnid, _ in IMAGENETTE_CLASSES]
    names = wnids[:num_classes] if num_classes <= len(wnids) else [f"class{i:03d}" for i in range(num_classes)]
    awkward_modes = ("L", "P", "CMYK")
    for split in ("train", "val"):
        for label, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            hue = np.array([label * 97 % 256, label * 173 % 256, label * 59 % 256], dtype=np.float64)
            for index in range(per_split):
                pixels = rng.normal(128, 40, size=(image_size, image_size, 3))
                yy, xx = np.mgrid[:image_size, :image_size]
                cy, cx = rng.uniform(0.3, 0.7, size=2) * image_size
                blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < (image_size / 4) ** 2
                pixels[blob] = hue + rng.normal(0, 10, size=(int(blob.sum()), 3))
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
                file_format = "JPEG"
                if awkward and split == "train" and index == 0:
                    mode = awkward_modes[label % len(awkward_modes)]
                    image = image.convert(mode) if mode != "P" else image.quantize(colors=16)
                    # JPEG has no palette mode; ImageNet itself ships PNGs named .JPEG, so do the same.
                    file_format = "PNG" if mode == "P" else "JPEG"
                image.save(folder / f"{split}_{name}_{index:04d}.JPEG", format=file_format)
    return root
