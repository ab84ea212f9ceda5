"""Fixtures shared by the test modules that need a trained checkpoint (evaluation, prediction)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnet import train as gtrain
from gnet.testing import make_fixture_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The fixture dataset: 3 classes, 4 images per split (learnable, meaningless)."""
    return make_fixture_dataset(tmp_path_factory.mktemp("tiny-data"), num_classes=3, per_split=4)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A real 2-epoch run on :func:`tiny_data` (width 0.25, 65 px): its folder holds a real last.pt."""
    out = tmp_path_factory.mktemp("tiny-runs") / "run"
    args = ["--data-dir", str(tiny_data), "--out", str(out), "--epochs", "2", "--batch-size", "4",
            "--image-size", "65", "--width", "0.25", "--workers", "0", "--device", "cpu", "--no-progress",
            "--precision", "fp32"]  # fmt: skip
    # fp32, not auto: the evaluation tests compare with the losses this run recorded, and gnet-evaluate computes
    # in fp32, while auto picks bf16 on CPUs with AMX or AVX512-BF16 (and fp32 on others).
    assert gtrain.main(args) == 0
    return out
