"""gnet.augment: batched crops on the training device follow RandomResizedCrop's rule and pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as TF

from gnet import augment
from gnet import cache as gcache
from gnet.data import CROP_RATIO, CROP_SCALE, IMAGENET_MEAN, IMAGENET_STD
from gnet.testing import make_fixture_dataset

DRAWS = 20_000


def torchvision_boxes(n: int, height: int, width: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    image = torch.empty(1, height, width)  # get_params reads only the size
    return np.array([transforms.RandomResizedCrop.get_params(image, CROP_SCALE, CROP_RATIO) for _ in range(n)])


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov distance: the largest gap between the two empirical CDFs."""
    grid = np.sort(np.concatenate([a, b]))
    cdf = lambda x: np.searchsorted(np.sort(x), grid, side="right") / len(x)  # noqa: E731
    return float(np.abs(cdf(a) - cdf(b)).max())


@pytest.mark.parametrize(("height", "width"), [(146, 146), (120, 200)])
def test_crop_area_and_aspect_follow_the_distributions_of_random_resized_crop(height, width):
    ours = augment.crop_boxes(DRAWS, height, width, torch.Generator().manual_seed(1)).numpy()
    theirs = torchvision_boxes(DRAWS, height, width, seed=2)
    # 1.95 * sqrt(2 / n) is the KS distance two samples of one distribution exceed with probability 0.001.
    critical = 1.95 * np.sqrt(2 / DRAWS)
    for stat in (
        lambda b: b[:, 2] * b[:, 3] / (height * width),  # area fraction
        lambda b: np.log(b[:, 3] / b[:, 2]),  # log aspect (w / h)
        lambda b: (b[:, 0] + b[:, 2] / 2) / height,  # vertical centre
        lambda b: (b[:, 1] + b[:, 3] / 2) / width,  # horizontal centre
    ):
        assert ks_statistic(stat(ours), stat(theirs)) < critical
    area = ours[:, 2] * ours[:, 3] / (height * width)
    assert area.min() > 0.07 and area.max() <= 1.0  # 8 %, up to rounding of h and w to whole pixels


def test_every_box_lies_inside_the_image_and_the_fallback_is_torchvisions_centre_crop():
    boxes = augment.crop_boxes(DRAWS, 10, 100, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 10).all() and (left + w <= 100).all()
    # A 10 x 100 strip rarely fits a box of aspect <= 4/3 after ten tries: torchvision's fallback is 10 x 13.
    fallback = (h == 10) & (w == 13) & (top == 0) & (left == 43)
    theirs = torchvision_boxes(DRAWS, 10, 100, seed=3)
    their_fallback = np.mean((theirs[:, 2] == 10) & (theirs[:, 3] == 13) & (theirs[:, 1] == 43))
    assert float(fallback.float().mean()) > 0.3 and abs(float(fallback.float().mean()) - their_fallback) < 0.02


def test_a_crop_is_torchvisions_tensor_resized_crop_to_one_level_and_the_flip_mirrors_it():
    images = torch.randint(0, 256, (3, 60, 60, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[0, 0, 60, 60], [5, 7, 30, 41], [20, 1, 12, 9]])
    flips = torch.tensor([False, True, False])
    out = augment.train_views(images, boxes, flips, 32)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    levels = (out * std + mean) * 255  # back to 0-255
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        crop = TF.resized_crop(images[i].permute(2, 0, 1), top, left, h, w, [32, 32], antialias=True).float()
        gap = (levels[i] - (crop.flip(-1) if flips[i] else crop)).abs()
        # torchvision resizes uint8 in float and rounds; PyTorch's uint8 kernel rounds on its own schedule.
        assert gap.max() < 1.001 and gap.mean() < 0.2


def test_crops_on_the_float_path_cuda_takes_agree_with_the_uint8_path_to_one_level():
    images = torch.randint(0, 256, (4, 50, 50, 3), dtype=torch.uint8)
    boxes = augment.crop_boxes(4, 50, 50, torch.Generator().manual_seed(4))
    flips = torch.tensor([True, False, True, False])
    exact = augment.train_views(images, boxes, flips, 24)
    floats = augment.train_views(images, boxes, flips, 24, as_float=True)
    one_level = 1 / 255 / min(IMAGENET_STD)
    assert (exact - floats).abs().max() <= one_level + 1e-6


def test_a_crop_matches_the_pil_pipeline_of_the_jpeg_path_closely(tmp_path):
    root = make_fixture_dataset(tmp_path, num_classes=1, per_split=2, image_size=96, awkward=False)
    pil = Image.open(sorted((root / "val").rglob("*.JPEG"))[0]).convert("RGB")
    array = torch.from_numpy(np.asarray(pil).copy())[None]
    top, left, h, w = 10, 20, 70, 60
    ours = augment.train_views(array, torch.tensor([[top, left, h, w]]), torch.tensor([False]), 64)[0]
    theirs = TF.normalize(TF.to_tensor(TF.resized_crop(pil, top, left, h, w, [64, 64])), IMAGENET_MEAN, IMAGENET_STD)
    # PIL's and PyTorch's antialiased bilinear filters differ by rounding: under 1 level (of 255) on average.
    assert (ours - theirs).abs().mean() * min(IMAGENET_STD) * 255 < 1.0


@pytest.fixture
def split(tmp_path) -> gcache.DecodedSplit:
    root = make_fixture_dataset(tmp_path / "data", num_classes=2, per_split=5)
    return gcache.open_split(root / "train", 40, cache_root=tmp_path / "cache", log=lambda _: None)


def test_a_batch_is_a_function_of_seed_epoch_and_step_so_a_resumed_loader_deals_the_same_tail(split):
    def batches(**kwargs):
        loader = augment.DecodedLoader(split, 3, 32, "cpu", train=True, seed=5, epoch=2, **kwargs)
        return list(loader)

    whole = batches()
    assert len(whole) == 4 and [len(t) for _, t in whole] == [3, 3, 3, 1]
    tail = batches(order=list(range(6, 10)), first_step=2)
    for (a, ta), (b, tb) in zip(whole[2:], tail, strict=True):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    again = batches()
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(whole, again, strict=True))
    other_epoch = list(augment.DecodedLoader(split, 3, 32, "cpu", train=True, seed=5, epoch=3))
    assert not torch.equal(whole[0][0], other_epoch[0][0])


def test_an_evaluation_loader_centre_crops_every_image_once_in_order(split):
    loader = augment.DecodedLoader(split, 4, 32, "cpu")
    images, labels = zip(*loader, strict=True)
    assert len(loader) == 3 and torch.cat(labels).tolist() == split.labels.tolist()
    assert torch.cat(images).shape == (10, 3, 32, 32)
