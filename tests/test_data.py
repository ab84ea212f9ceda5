"""gnet.data: finding Imagenette, the fixture, awkward and corrupt images, transforms."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from gnet import data as gdata
from gnet.testing import make_fixture_dataset


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixture_dataset(tmp_path_factory.mktemp("fixture"), num_classes=3, per_split=4)


def test_imagenette_classes_are_torchvisions_in_sorted_wnid_order():
    wnids = [wnid for wnid, _ in gdata.IMAGENETTE_CLASSES]
    assert wnids == sorted(wnids) and len(wnids) == 10
    names = torchvision.datasets.Imagenette._WNID_TO_CLASS
    assert [(wnid, names[wnid][0]) for wnid in wnids] == list(gdata.IMAGENETTE_CLASSES)
    assert gdata.DATA_ENV_VAR == "GNET_DATA_DIR"


def test_fixture_writes_real_image_files_in_the_imagenette_layout(fixture_root):
    for split in ("train", "val"):
        folders = sorted(p.name for p in (fixture_root / split).iterdir())
        assert folders == ["n01440764", "n02102040", "n02979186"]
        for folder in folders:
            assert len(list((fixture_root / split / folder).glob("*.JPEG"))) == 4
    first = sorted((fixture_root / "train").glob("*/*_0000.JPEG"))
    found = [(Image.open(p).format, Image.open(p).mode) for p in first]
    assert found == [("JPEG", "L"), ("PNG", "P"), ("JPEG", "CMYK")]
    assert Image.open(fixture_root / "val" / "n01440764" / "val_n01440764_0000.JPEG").mode == "RGB"


def test_fixture_is_deterministic(tmp_path):
    a = make_fixture_dataset(tmp_path / "a", num_classes=2, per_split=2, seed=3)
    b = make_fixture_dataset(tmp_path / "b", num_classes=2, per_split=2, seed=3)
    for path in sorted(a.rglob("*.JPEG")):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    ("mode", "file_format"),
    [("L", "JPEG"), ("CMYK", "JPEG"), ("P", "PNG"), ("PA", "PNG"), ("LA", "PNG"), ("RGBA", "PNG"), ("I;16", "PNG")],
)
def test_awkward_image_modes_load_as_8_bit_rgb(tmp_path, mode, file_format):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "P":
        image = rgb.quantize(colors=8)
    elif mode == "PA":  # palette with a transparent entry
        image = rgb.quantize(colors=8)
        image.info["transparency"] = 0
    elif mode == "I;16":
        image = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    else:
        image = rgb.convert(mode)
    path = _save(image, tmp_path / f"image.{file_format.lower()}", format=file_format)
    loaded = gdata.load_rgb(path)
    assert loaded.mode == "RGB" and loaded.size == (30, 20)
    if mode == "I;16":  # scaled to the full 8-bit range, not clipped to white
        assert np.asarray(loaded)[..., 0].max() == 255 and np.asarray(loaded)[..., 0].min() == 0


def _corrupt_copy(source: Path, target: Path) -> tuple[Path, Path]:
    """A copy of ``source`` with one truncated JPEG and one file of garbage bytes."""
    import shutil

    shutil.copytree(source, target)
    truncated = sorted((target / "train" / "n02979186").glob("*.JPEG"))[1]
    truncated.write_bytes(truncated.read_bytes()[: len(truncated.read_bytes()) // 2])
    garbage = target / "val" / "n01440764" / "garbage.JPEG"
    garbage.write_bytes(b"this is not an image" * 10)
    return truncated, garbage


def test_corrupt_and_truncated_files_raise_an_error_naming_the_file(fixture_root, tmp_path):
    truncated, garbage = _corrupt_copy(fixture_root, tmp_path / "data")
    for path in (truncated, garbage):
        with pytest.raises(gdata.CorruptImageError, match="cannot decode image") as caught:
            gdata.load_rgb(path)
        assert str(path) in str(caught.value)
    assert [bad for bad, _ in gdata.find_corrupt_images(tmp_path / "data")] == sorted([str(truncated), str(garbage)])


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_file_stops_the_data_loader_with_its_path_also_from_a_worker(fixture_root, tmp_path, workers):
    truncated, _ = _corrupt_copy(fixture_root, tmp_path / "data")
    train_ds, _ = gdata.build_datasets(tmp_path / "data", 32)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=4, num_workers=workers)
    with pytest.raises(gdata.CorruptImageError) as caught:
        for _ in loader:
            pass
    assert str(truncated) in str(caught.value)


def test_build_datasets_labels_transforms_and_subsets(fixture_root):
    train_ds, val_ds = gdata.build_datasets(fixture_root, 40)
    assert (len(train_ds), len(val_ds)) == (12, 12)
    assert train_ds.classes == ["n01440764", "n02102040", "n02979186"]
    assert train_ds.class_names == ["tench", "English springer", "cassette player"]
    assert train_ds.targets == [0] * 4 + [1] * 4 + [2] * 4
    image, label = train_ds[5]
    assert image.shape == (3, 40, 40) and image.dtype == torch.float32 and label == 1
    sub_train, sub_val = gdata.build_datasets(fixture_root, 40, subset_per_class=2, seed=1, val_subset_per_class=3)
    assert sub_train.targets == [0, 0, 1, 1, 2, 2] and sub_val.targets == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    again, _ = gdata.build_datasets(fixture_root, 40, subset_per_class=2, seed=1)
    assert again.samples == sub_train.samples
    with pytest.raises(ValueError, match="subset_per_class"):
        gdata.build_datasets(fixture_root, 40, subset_per_class=0)


def test_transforms_follow_the_paper_crops_and_the_standard_eval_resize():
    train = gdata.train_transform(224).transforms
    crop = train[0]
    assert isinstance(crop, transforms.RandomResizedCrop)
    assert crop.size == (224, 224) and crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert isinstance(train[1], transforms.RandomHorizontalFlip)
    evaluation = gdata.eval_transform(224).transforms
    assert evaluation[0].size == 256 and evaluation[1].size == (224, 224)
    assert gdata.eval_transform(72).transforms[0].size == 82  # round(72 / 0.875)
    normalize = evaluation[-1]
    assert tuple(normalize.mean) == (0.485, 0.456, 0.406) and tuple(normalize.std) == (0.229, 0.224, 0.225)
    with pytest.raises(ValueError, match="image_size"):
        gdata.train_transform(0)


def test_resolve_data_dir_accepts_the_folder_its_parent_and_the_environment(fixture_root, tmp_path, monkeypatch):
    monkeypatch.delenv(gdata.DATA_ENV_VAR, raising=False)
    assert gdata.resolve_data_dir(fixture_root) == fixture_root
    parent = tmp_path / "datasets"
    parent.mkdir()
    (parent / "imagenette2-320").symlink_to(fixture_root, target_is_directory=True)
    assert gdata.resolve_data_dir(parent, size="320px") == parent / "imagenette2-320"
    monkeypatch.setenv(gdata.DATA_ENV_VAR, str(parent))
    assert gdata.resolve_data_dir(size="320px") == parent / "imagenette2-320"


def test_missing_data_raises_a_message_with_the_download_command(tmp_path, monkeypatch):
    monkeypatch.delenv(gdata.DATA_ENV_VAR, raising=False)
    with pytest.raises(gdata.DataNotFoundError) as caught:
        gdata.resolve_data_dir(tmp_path / "nowhere")
    message = str(caught.value)
    assert str(tmp_path / "nowhere" / "imagenette2-160") in message and "used alone" in message
    assert f"torchvision.datasets.Imagenette(root='{tmp_path / 'nowhere'}', size='160px', download=True)" in message
    assert "(99 MB)" in message
    with pytest.raises(gdata.DataNotFoundError, match=r"\(1\.56 GB\)"):
        gdata.resolve_data_dir(tmp_path / "nowhere", size="full")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty $GNET_DATA_DIR folder and an empty download folder (``$XDG_CACHE_HOME/gnet/data``)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv(gdata.DATA_ENV_VAR, str(env))
    return env, tmp_path / "xdg" / "gnet" / "data"


def put_dataset(folder: Path, fixture_root: Path, name: str = "imagenette2-160") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(fixture_root, target_is_directory=True)
    return folder / name


def test_data_is_looked_for_in_one_order_flag_then_environment_then_the_download_folder(
    fixture_root, places, monkeypatch
):
    env, downloads = places
    assert gdata.default_download_root() == downloads
    in_downloads = put_dataset(downloads, fixture_root)
    assert gdata.resolve_data_dir() == in_downloads  # $GNET_DATA_DIR is set but empty: the download folder
    monkeypatch.delenv(gdata.DATA_ENV_VAR)
    assert gdata.resolve_data_dir() == in_downloads  # what a chapter downloaded, every command finds
    assert gdata.resolve_data_dir(splits=("val",)) == in_downloads
    monkeypatch.setenv(gdata.DATA_ENV_VAR, str(env))
    in_env = put_dataset(env, fixture_root)
    assert gdata.resolve_data_dir() == in_env  # the environment comes before the download folder
    elsewhere = fixture_root.parent / "elsewhere"
    with pytest.raises(gdata.DataNotFoundError, match="used alone"):
        gdata.resolve_data_dir(elsewhere)  # an explicit folder is never swapped for another
    assert gdata.data_search_path(elsewhere) == ([elsewhere], elsewhere)
    assert gdata.data_search_path() == ([env, downloads], env)


def test_the_error_lists_every_place_it_looked_and_offers_the_download_folder(places, monkeypatch):
    env, downloads = places
    with pytest.raises(gdata.DataNotFoundError) as caught:
        gdata.resolve_data_dir()
    message = str(caught.value)
    for place in (env, env / "imagenette2-160", downloads, downloads / "imagenette2-160"):
        assert f"{place}," in message or f"{place}." in message
    assert f"root='{env}'" in message  # a download goes to the first place given
    monkeypatch.delenv(gdata.DATA_ENV_VAR)
    with pytest.raises(gdata.DataNotFoundError, match=f"root='{downloads}'"):
        gdata.resolve_data_dir(splits=("val",))


def test_a_half_extracted_download_folder_is_named_instead_of_downloaded_over(places, monkeypatch):
    env, _ = places
    (env / "imagenette2-160").mkdir()
    monkeypatch.setattr(torchvision.datasets, "Imagenette", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(gdata.DataNotFoundError, match="exists but does not hold train/ and val/"):
        gdata.resolve_data_dir(download=True)


def test_a_failed_download_is_a_data_not_found_error_with_the_retry_command(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv(gdata.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(torchvision.datasets, "Imagenette", offline)
    with pytest.raises(gdata.DataNotFoundError, match="Downloading Imagenette .* failed") as caught:
        gdata.resolve_data_dir(tmp_path, download=True)
    assert "download=True" in str(caught.value)


@pytest.mark.skipif(not os.environ.get("GNET_DATA_DIR"), reason="real Imagenette not configured (GNET_DATA_DIR)")
def test_real_imagenette_160_has_the_published_split_sizes():
    root = gdata.resolve_data_dir(size="160px")
    assert root.name == "imagenette2-160"
    train_ds, val_ds = gdata.build_datasets(root, 64)
    assert (len(train_ds), len(val_ds)) == (9469, 3925)
    assert tuple(train_ds.classes) == tuple(wnid for wnid, _ in gdata.IMAGENETTE_CLASSES)


def test_imagenet_style_wnid_folders_get_torchvisions_class_indices(tmp_path):
    import torchvision

    # Folders created out of order: labels must follow the sorted WordNet ids, as ImageFolder (and ImageNet) do.
    wnids = ["n04592741", "n01440764", "n02102040", "n15075141"]
    for split in ("train", "val"):
        for wnid in wnids:
            (tmp_path / split / wnid).mkdir(parents=True)
            Image.new("RGB", (8, 8), (10, 20, ord(wnid[-1]))).save(tmp_path / split / wnid / f"{wnid}_1.JPEG")
    ours = gdata.ImageFolderDataset(tmp_path / "train")
    theirs = torchvision.datasets.ImageFolder(tmp_path / "train")
    assert ours.classes == theirs.classes == sorted(wnids)
    assert [label for _, label in ours.samples] == [label for _, label in theirs.samples] == [0, 1, 2, 3]
    assert ours.class_names[:2] == ["tench", "English springer"] and ours.class_names[3] == "n15075141"


def test_a_flat_validation_folder_as_ilsvrc_ships_it_says_how_to_sort_it(tmp_path):
    (tmp_path / "val").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(gdata.DataNotFoundError, match=r"images lie directly in it.*torchvision.datasets.ImageNet"):
        gdata.ImageFolderDataset(tmp_path / "val")


def test_recorded_paths_name_the_data_folder_not_this_machines_absolute_path(places, monkeypatch):
    env, downloads = places
    command = f"python -m gnet.train --data-dir {env}/imagenette2-160 --out {env}x/run"
    assert (
        gdata.portable_path(command)
        == f"python -m gnet.train --data-dir $GNET_DATA_DIR/imagenette2-160 --out {env}x/run"
    )
    assert gdata.portable_path(str(downloads / "imagenette2-160")) == "$XDG_CACHE_HOME/gnet/data/imagenette2-160"
    monkeypatch.delenv("XDG_CACHE_HOME")
    home_downloads = gdata.default_download_root() / "imagenette2-160"
    assert gdata.portable_path(str(home_downloads)) == "~/.cache/gnet/data/imagenette2-160"
    monkeypatch.setenv(gdata.DATA_ENV_VAR, "/")  # a root so short would rewrite every path: left alone
    assert gdata.portable_path("/data/imagenette2-160") == "/data/imagenette2-160"
