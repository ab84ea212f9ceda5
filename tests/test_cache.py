"""gnet.cache: the decoded-image cache is exact, rebuilds when its sources change, and never serves a bad file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnet import cache as gcache
from gnet import data as gdata
from gnet.augment import eval_views
from gnet.testing import make_fixture_dataset

REPO = Path(__file__).resolve().parents[1]
SIZE = 40  # the fixture's images are 48 px: a real resize happens


@pytest.fixture
def data(tmp_path) -> Path:
    return make_fixture_dataset(tmp_path / "data", num_classes=3, per_split=4)


def open_val(data: Path, root: Path, log: list[str] | None = None, **kwargs) -> gcache.DecodedSplit:
    sink = log if log is not None else []
    return gcache.open_split(data / "val", SIZE, cache_root=root, log=sink.append, **kwargs)


def test_a_built_cache_holds_each_image_as_decoded_and_labels_in_folder_order(data, tmp_path):
    log: list[str] = []
    split = open_val(data, tmp_path / "cache", log)
    dataset = gdata.ImageFolderDataset(data / "val")
    assert split.images.shape == (12, SIZE, SIZE, 3) and split.images.dtype == np.uint8
    assert split.labels.tolist() == dataset.targets == [0] * 4 + [1] * 4 + [2] * 4
    assert split.classes == dataset.classes
    for i in (0, 7, 11):
        assert np.array_equal(split.images[i], gcache._decode(dataset.samples[i][0], SIZE))
    assert any("decoding 12 images" in line for line in log) and str(split.path) in log[-1]


def test_a_second_open_uses_the_cache_without_decoding(data, tmp_path):
    open_val(data, tmp_path / "cache")
    log: list[str] = []
    split = open_val(data, tmp_path / "cache", log)
    assert [line for line in log if "decoding" in line] == []
    assert "using the decoded cache" in log[-1] and "12 images at 40 px" in log[-1]
    images, labels = split.batch([11, 0])
    assert images.shape == (2, SIZE, SIZE, 3) and labels.tolist() == [2, 0]


def test_the_evaluation_crop_of_the_cache_is_eval_transform_pixel_for_pixel(data, tmp_path):
    image_size = 35  # round(35 / 0.875) = 40 = SIZE: what gnet.train stores for --image-size 35
    assert gcache.default_cache_size(image_size) == SIZE
    split = open_val(data, tmp_path / "cache")
    dataset = gdata.ImageFolderDataset(data / "val", gdata.eval_transform(image_size))
    expected = torch.stack([dataset[i][0] for i in range(len(dataset))])
    assert torch.equal(eval_views(split.batch(range(len(split)))[0], image_size), expected)


@pytest.mark.skipif(not os.environ.get(gdata.DATA_ENV_VAR), reason="needs Imagenette ($GNET_DATA_DIR)")
def test_on_real_imagenette_the_cached_evaluation_batch_equals_the_jpeg_path(tmp_path):
    root = gdata.resolve_data_dir()
    dataset = gdata.ImageFolderDataset(root / "val", gdata.eval_transform(128), subset_per_class=20)
    split = gcache.open_split(root / "val", 146, cache_root=tmp_path, subset=dataset.samples, log=lambda _: None)
    expected = torch.stack([dataset[i][0] for i in range(len(dataset))])
    assert torch.equal(eval_views(split.batch(range(len(split)))[0], 128), expected)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("touch", "(0 added, 0 removed, 1 modified)"),
        ("add", "(1 added, 0 removed, 0 modified)"),
        ("remove", "(0 added, 1 removed, 0 modified)"),
    ],
)
def test_a_changed_dataset_rebuilds_the_cache_and_says_what_changed(data, tmp_path, change, reason):
    first = open_val(data, tmp_path / "cache")
    folder = data / "val" / first.classes[1]
    victim = sorted(folder.iterdir())[1]
    if change == "touch":
        os.utime(victim, ns=(0, victim.stat().st_mtime_ns + 10**9))
    elif change == "add":
        shutil.copy(victim, folder / "zz_extra.JPEG")
    else:
        victim.unlink()
    log: list[str] = []
    split = open_val(data, tmp_path / "cache", log)
    assert split.path == first.path and any(reason in line for line in log)
    assert len(split) == len(first) + {"touch": 0, "add": 1, "remove": -1}[change]


def test_a_subset_and_the_whole_split_are_cached_apart(data, tmp_path):
    whole = open_val(data, tmp_path / "cache")
    subset = gdata.ImageFolderDataset(data / "val", subset_per_class=2, seed=3).samples
    part = open_val(data, tmp_path / "cache", subset=subset)
    assert part.path != whole.path and len(part) == 6 and len(open_val(data, tmp_path / "cache")) == 12
    assert part.labels.tolist() == [label for _, label in subset]
    all_samples = gdata.ImageFolderDataset(data / "val").samples  # "all of them" is the whole split: one cache
    assert open_val(data, tmp_path / "cache", subset=all_samples).path == whole.path


def _corrupt(split: gcache.DecodedSplit, how: str) -> None:
    images = split.path / gcache.IMAGES_NAME
    raw = bytearray(images.read_bytes())
    if how == "truncate":
        images.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        raw[len(raw) // 3] ^= 0xFF
        images.write_bytes(raw)
    elif how == "manifest":
        (split.path / gcache.MANIFEST_NAME).write_text("{not json")
    elif how == "unfinished":
        (split.path / gcache.MANIFEST_NAME).unlink()


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("truncate", "is truncated (28,800 of 57,600 bytes)"),
        ("flip", "is corrupt (its sha256 differs from the manifest's)"),
        ("manifest", "manifest.json is unreadable"),
        ("unfinished", "an unfinished build (no manifest)"),
    ],
)
def test_a_damaged_cache_is_refused_or_rebuilt_never_used(data, tmp_path, how, reason):
    split = open_val(data, tmp_path / "cache")
    good = np.array(split.images)
    _corrupt(split, how)
    with pytest.raises(gcache.CacheError, match="cannot be used: .*" + reason.replace("(", r"\(").replace(")", r"\)")):
        open_val(data, tmp_path / "cache", rebuild=False)
    log: list[str] = []
    again = open_val(data, tmp_path / "cache", log)
    assert any(reason in line for line in log)
    assert np.array_equal(np.array(again.images), good)


def test_a_cache_root_that_is_a_file_and_a_full_disk_are_clear_errors(data, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(gcache.CacheError, match="is a file, not a folder"):
        open_val(data, tmp_path / "file")
    monkeypatch.setattr(gcache.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(gcache.CacheError, match=r"needs 0.00 GB but .* has 0.00 GB free: point --cache-dir"):
        open_val(data, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob(gcache.MANIFEST_NAME))


def test_a_corrupt_source_image_stops_the_build_naming_it_and_leaves_no_cache(data, tmp_path):
    broken = sorted((data / "val").rglob("*.JPEG"))[5]
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(gdata.CorruptImageError, match=f"cannot decode image {broken}"):
        open_val(data, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob(gcache.MANIFEST_NAME))


def test_the_cache_root_defaults_to_the_environment_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(gcache.CACHE_ENV_VAR, str(tmp_path / "here"))
    assert gcache.default_cache_root() == tmp_path / "here"
    monkeypatch.delenv(gcache.CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gcache.default_cache_root() == tmp_path / "xdg" / "gnet" / "decoded"


def test_two_processes_opening_one_cache_at_once_decode_it_once(data, tmp_path):
    code = (
        "import sys; from gnet import cache; "
        f"s = cache.open_split(sys.argv[1], {SIZE}, cache_root=sys.argv[2]); print('SUM', int(s.images.sum()))"
    )
    args = [sys.executable, "-c", code, str(data / "val"), str(tmp_path / "cache")]
    procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(out.count("decoding 12 images") for out in outputs) == 1
    sums = {line for out in outputs for line in out.splitlines() if line.startswith("SUM")}
    assert len(sums) == 1
    manifest = json.loads(next((tmp_path / "cache").rglob(gcache.MANIFEST_NAME)).read_text())
    assert manifest["shape"] == [12, SIZE, SIZE, 3] and len(manifest["files"]) == 12
