"""The book's augmentation on whole batches, on the training device, from a decoded cache (:mod:`gnet.cache`).

The same transforms as :func:`gnet.data.train_transform` and :func:`gnet.data.eval_transform`, applied to uint8
batches where the model runs instead of to PIL images in DataLoader workers:

* :func:`crop_boxes` draws the paper's random crops (8-100 % of the area, aspect 3/4 to 4/3) for a whole batch at
  once, by the rule of ``torchvision.transforms.RandomResizedCrop.get_params``: up to ten tries per image, then
  the centre crop clamped to the aspect range;
* :func:`train_views` cuts each box out, resizes it to the training size (bilinear, antialiased: the
  ``F.interpolate`` call torchvision's tensor ``resized_crop`` makes), flips half of them and normalises;
* :func:`eval_views` is the evaluation centre crop of the cached square and the same normalisation;
* :class:`DecodedLoader` deals a :class:`~gnet.cache.DecodedSplit` in batches, each batch's randomness a
  function of ``(seed, batch number)`` alone, so a resumed run draws the same crops.

The random numbers come from a CPU generator (a few per image) and only the boxes travel, so a batch is the same
on CPU and CUDA. The resize is one small call per image: on a GPU these are tiny kernels, on a CPU the uint8
antialiased kernel is the fastest path PyTorch has.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.nn import functional as F
from torchvision.transforms import functional as TF

from gnet._seed import derived_seed
from gnet._validate import int_at_least, positive_int
from gnet.cache import DecodedSplit
from gnet.data import CROP_RATIO, CROP_SCALE, IMAGENET_MEAN, IMAGENET_STD

__all__ = ["DecodedLoader", "batch_seed", "crop_boxes", "eval_views", "normalize", "train_views"]

_TRIES = 10  # RandomResizedCrop.get_params tries ten boxes before falling back to the centre


def crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> torch.Tensor:
    """``n`` random crops of a ``height × width`` image as an ``n × 4`` int64 tensor of (top, left, h, w)."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio, dtype=torch.float64))
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, _TRIES, generator=generator, dtype=torch.float64))
    aspect = torch.exp(
        log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand(n, _TRIES, generator=generator, dtype=torch.float64)
    )
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.int(), dim=1, keepdim=True)  # the first box that fits, as get_params takes it
    w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], ok.any(dim=1)
    fallback_h, fallback_w = _centre_fallback(height, width, ratio)
    h, w = torch.where(found, h, fallback_h), torch.where(found, w, fallback_w)
    offsets = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    top = torch.where(found, (offsets[:, 0] * (height - h + 1)).long(), (height - h) // 2)
    left = torch.where(found, (offsets[:, 1] * (width - w + 1)).long(), (width - w) // 2)
    return torch.stack([top, left, h, w], dim=1)


def _centre_fallback(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def normalize(images: torch.Tensor) -> torch.Tensor:
    """NCHW levels (uint8, or float in 0-255) -> float in [0, 1], normalised with the ImageNet mean and std.

    The operations of ``ToTensor`` and ``Normalize`` in their order, so the result is theirs bit for bit.
    """
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return images.float().div_(255).sub_(mean).div_(std)


def train_views(
    images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, size: int, *, as_float: bool | None = None
) -> torch.Tensor:
    """Random-resized-crop, flip and normalise a uint8 batch (N × H × W × 3, on any device) to N × 3 × size².

    ``as_float``: resize in float32 rather than uint8. The default is uint8 on CPU, where PyTorch has an
    antialiased bilinear kernel for it (rounding to whole levels, as the PIL path does), and float elsewhere.
    """
    as_float = images.device.type != "cpu" if as_float is None else as_float
    crops = []
    for image, (top, left, h, w) in zip(images.permute(0, 3, 1, 2), boxes.tolist(), strict=True):
        crop = image[None, :, top : top + h, left : left + w]  # a channels-last view: no copy
        crop = crop.float() if as_float else crop
        crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    out = torch.cat(crops)
    out = torch.where(flips.to(out.device).view(-1, 1, 1, 1), out.flip(-1), out)
    return normalize(out)


def eval_views(images: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size × size`` crop of a uint8 batch (N × S × S × 3), normalised: eval_transform's output."""
    return normalize(TF.center_crop(images.permute(0, 3, 1, 2), [size, size]))


def batch_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one training batch's crops and flips: a function of (seed, epoch, step) only."""
    return derived_seed(seed, epoch, step)


class DecodedLoader:
    """Batches of a :class:`~gnet.cache.DecodedSplit` on ``device``: augmented for training, or centre-cropped.

    ``order`` (default: all images in order) is dealt in batches of ``batch_size``; the last may be smaller.
    With ``train=True`` batch ``k`` is augmented with :func:`batch_seed` ``(seed, epoch, first_step + k)``.
    ``part=(i, n)`` yields only the ``i``-th of ``n`` equal parts of each batch (a rank's share of a global
    batch, ``batch_size`` divisible by ``n``), with the crops and flips drawn for the whole batch: the ``n`` parts
    together are exactly the batch of ``part=(0, 1)``. ``image_size`` may not exceed the cached square's size (a
    larger crop would need padding the images never had): such settings raise ``ValueError``.
    """

    def __init__(
        self,
        split: DecodedSplit,
        batch_size: int,
        image_size: int,
        device: torch.device,
        *,
        order: Sequence[int] | None = None,
        train: bool = False,
        seed: int = 0,
        epoch: int = 0,
        first_step: int = 0,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        positive_int("batch_size", batch_size)
        positive_int("image_size", image_size)
        if image_size > split.size:
            raise ValueError(
                f"image_size must be at most the cached images' size {split.size} (a larger crop would be padded "
                f"with black), got {image_size}: build the cache at a larger size"
            )
        index, parts = part
        int_at_least("part count", parts, 1)
        int_at_least("part index", index, 0, maximum=parts - 1)
        if batch_size % parts:
            raise ValueError(f"batch_size must divide into {parts} equal parts, got {batch_size}")
        self.dataset = split
        self.batch_size, self.image_size, self.device = batch_size, image_size, torch.device(device)
        self.order = list(range(len(split))) if order is None else list(order)
        self.train, self.seed, self.epoch, self.first_step = train, seed, epoch, first_step
        self.part = part

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index, parts = self.part
        for k, start in enumerate(range(0, len(self.order), self.batch_size)):
            batch = self.order[start : start + self.batch_size]
            share = len(batch) // parts
            mine = slice(index * share, (index + 1) * share)
            images, labels = self._load(batch[mine])
            if not self.train:
                yield eval_views(images, self.image_size), labels
                continue
            generator = torch.Generator().manual_seed(batch_seed(self.seed, self.epoch, self.first_step + k))
            boxes = crop_boxes(len(batch), images.shape[1], images.shape[2], generator)
            flips = torch.rand(len(batch), generator=generator) < 0.5
            yield train_views(images, boxes[mine], flips[mine], self.image_size), labels

    def _load(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.dataset.batch(indices)
        pin = self.device.type == "cuda"  # pinned memory lets the copy overlap the previous step
        if pin:
            images, labels = images.pin_memory(), labels.pin_memory()
        return images.to(self.device, non_blocking=pin), labels.to(self.device, non_blocking=pin)
