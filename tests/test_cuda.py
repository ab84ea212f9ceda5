"""The CUDA paths: the decoded cache's augmentation, autocast in bf16 and fp16, training, checkpoint and resume.

They run on ``$GNET_CHECK_DEVICE`` (default ``cuda``) and skip where that device is missing, so on a CPU machine
they skip; ``scripts/gpu_check.py --dry-run`` runs them with ``GNET_CHECK_DEVICE=cpu`` so that they cannot rot
between GPU loans (fp16 needs CUDA and skips there).
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

import gnet
from gnet import augment
from gnet import cache as gcache
from gnet import train as gtrain
from gnet.data import IMAGENET_STD
from gnet.testing import make_fixture_dataset

DEVICE = torch.device(os.environ.get("GNET_CHECK_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="no CUDA GPU"),
]
PRECISIONS = ["bf16", pytest.param("fp16", marks=pytest.mark.skipif(DEVICE.type != "cuda", reason="fp16 needs CUDA"))]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_fixture_dataset(tmp_path_factory.mktemp("cuda-data"), num_classes=3, per_split=8, image_size=80)


def test_the_cache_augments_on_the_device_as_on_the_cpu(data, tmp_path):
    split = gcache.open_split(data / "train", 74, cache_root=tmp_path, log=lambda _: None)
    cpu = augment.DecodedLoader(split, 8, 64, torch.device("cpu"), train=True, seed=3)
    here = augment.DecodedLoader(split, 8, 64, DEVICE, train=True, seed=3)
    for (a, labels_a), (b, labels_b) in zip(cpu, here, strict=True):
        assert b.device.type == DEVICE.type and torch.equal(labels_a, labels_b.cpu())
        # The device resizes in float, the CPU in uint8 with its own rounding: at most one level of 255 apart.
        assert (a - b.cpu()).abs().max() <= 1 / 255 / min(IMAGENET_STD) + 1e-5


@pytest.mark.parametrize("precision", PRECISIONS)
def test_one_autocast_step_learns_and_keeps_fp32_weights(precision):
    torch.manual_seed(0)
    model = gnet.googlenet(num_classes=3, batch_norm=True, lrn=False, width=0.25).to(DEVICE).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler(DEVICE.type, enabled=precision == "fp16")
    images, target = torch.randn(6, 3, 96, 96, device=DEVICE), torch.tensor([0, 1, 2, 0, 1, 2], device=DEVICE)
    losses = []
    for _ in range(3):
        with gnet.device.autocast(DEVICE, precision):
            output = model(images)
            loss = gnet.googlenet_loss(output, target)
        assert output.logits.dtype == (torch.bfloat16 if precision == "bf16" else torch.float16)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(value) for value in losses) and losses[-1] < losses[0]


class _Stop(Exception):
    """Raised by a loss hook to end a run in its second epoch, after the first epoch's checkpoint."""


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_cached_run_trains_on_the_device_and_resumes(data, tmp_path, precision):
    args = ["--data-dir", str(data), "--batch-size", "6", "--image-size", "65", "--width", "0.25",
            "--batch-norm", "--no-lrn", "--workers", "0", "--device", DEVICE.type, "--precision", precision,
            "--cache", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--epochs", "2"]  # fmt: skip
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert gtrain.main([*args, "--out", str(straight)]) == 0

    def stop_in_epoch_two(epoch, step, loss):
        if epoch == 1:
            raise _Stop
        return loss

    config = gtrain.config_from_args(gtrain.build_parser().parse_args([*args, "--out", str(halves)]))
    with pytest.raises(_Stop):
        gtrain.train(config, _loss_hook=stop_in_epoch_two)
    assert gtrain.main([*args, "--out", str(halves), "--resume"]) == 0
    info = json.loads((halves / "run.json").read_text())
    assert info["device_type"] == DEVICE.type and info["precision"] == precision
    one, two = gtrain.read_metrics(straight), gtrain.read_metrics(halves)
    assert [m["epoch"] for m in two] == [1, 2]
    timing = ("images_per_s", "seconds")
    assert {k: v for k, v in one[0].items() if k not in timing} == {k: v for k, v in two[0].items() if k not in timing}
    # Epoch 2 of "halves" starts from the checkpoint. On the CPU that resume is exact (tests/test_train.py); on CUDA,
    # atomics in cuDNN's backward may change the last bits, so here only: the same length, a finite loss.
    assert math.isfinite(two[1]["train_loss"])
    if DEVICE.type == "cpu":
        assert two[1] | dict.fromkeys(timing) == one[1] | dict.fromkeys(timing)
    restored = gnet.load_checkpoint(halves / "last.pt", device="cpu")
    assert restored.model.config.width == 0.25 and len(restored.class_names) == 3
