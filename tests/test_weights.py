"""gnet.weights: the registered weights agree with the recorded run they came from, and load from the file alone.

The book re-evaluates the weights on the whole validation split at every build (chapter 7 fails if the top-1 moves
by more than half a point); these tests check what needs no data.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
from pathlib import Path

import pytest
import torch
import yaml

import gnet
from gnet import train as gtrain
from gnet import weights as gweights

REPO = Path(__file__).resolve().parents[1]
ENTRY = gnet.GoogLeNetWeights.IMAGENETTE_CPU
RUN_DIR = REPO / "book" / "recorded_runs" / ENTRY.value.run


def test_default_is_the_cpu_run_and_names_resolve():
    assert gnet.GoogLeNetWeights.DEFAULT is ENTRY
    assert gnet.GoogLeNetWeights.resolve("IMAGENETTE_CPU") is ENTRY
    with pytest.raises(
        ValueError, match="weights must be one of IMAGENETTE_CPU, IMAGENETTE_CPU_FULL, DEFAULT, got 'IMAGENET'"
    ):
        gnet.GoogLeNetWeights.resolve("IMAGENET")


def test_the_registry_says_what_the_recorded_run_recorded():
    metrics = gtrain.read_metrics(RUN_DIR)
    info = gtrain.read_run_info(RUN_DIR)
    meta = ENTRY.meta
    assert meta["val_top1"] == metrics[-1]["val_top1"] and meta["val_top5"] == metrics[-1]["val_top5"]
    assert meta["epochs"] == len(metrics) == info["config"]["epochs"]
    assert meta["command"] == info["command"] and meta["git_commit"] == info["git_commit"]
    assert meta["device"] == info["device"] and meta["wall_seconds"] == info["recorded"]["wall_seconds"]
    assert (meta["train_images"], meta["val_images"]) == (info["train_images"], info["val_images"]) == (9469, 3925)
    assert meta["image_size"] == info["config"]["image_size"]
    assert [m["epoch"] for m in metrics] == list(range(1, len(metrics) + 1))


def test_the_weights_file_is_small_checksummed_and_loads_with_weights_only():
    path = ENTRY.path()
    assert path == RUN_DIR / "weights.pt" and path.stat().st_size < 10_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ENTRY.value.sha256
    state = torch.load(path, weights_only=True)
    assert state["metadata"] == {key: ENTRY.meta[key] for key in gweights.RECORDED_FIELDS}
    assert state["storage"] == "fp16"
    assert all(t.dtype == torch.float16 for t in state["model"].values() if t.is_floating_point())


def test_the_weights_rebuild_the_recorded_network_with_every_switch():
    info = gtrain.read_run_info(RUN_DIR)
    loaded = ENTRY.load()
    config = info["config"]
    assert loaded.model.config.width == config["width"] and loaded.model.config.batch_norm == config["batch_norm"]
    assert loaded.model.config.lrn == config["lrn"] and loaded.model.config.aux_logits == config["aux"]
    assert sum(p.numel() for p in loaded.model.parameters()) == info["parameters"]
    assert loaded.class_names == info["class_names"] and loaded.classes == info["classes"]
    for spec in (ENTRY, "IMAGENETTE_CPU", "DEFAULT", ENTRY.path()):  # every way load_weights accepts
        assert torch.equal(gweights.load_weights(spec).model.fc.weight, loaded.model.fc.weight)
    model = gnet.googlenet(weights="IMAGENETTE_CPU")
    assert not model.training and torch.equal(model.fc.weight, loaded.model.fc.weight)
    assert ENTRY.transforms().transforms[1].size == (config["image_size"], config["image_size"])


def test_weights_fix_the_switches():
    with pytest.raises(ValueError, match=r"weights fix every switch of the network; got switches too: \['width'\]"):
        gnet.googlenet(weights="DEFAULT", width=1.0)


def test_the_download_url_is_the_repository_of_the_book():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["repository"]["url"].rstrip("/") == gweights.REPOSITORY_URL
    assert ENTRY.value.url == f"{gweights.REPOSITORY_URL}/raw/main/book/recorded_runs/imagenette-cpu/weights.pt"


@pytest.fixture()
def installed_without_book(tmp_path, monkeypatch):
    """What a wheel sees: no book/ folder beside the package, and an empty torch.hub cache."""
    monkeypatch.setattr(gweights, "_REPO_ROOT", tmp_path / "site-packages")
    torch_home = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(torch_home))
    return torch_home


def offline(url, dst, **kwargs):
    raise urllib.error.URLError("no network")


def test_offline_as_a_package_the_error_says_what_happened_and_what_to_do(installed_without_book, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(gweights.WeightsUnavailableError) as caught:
        ENTRY.path()
    message = str(caught.value)
    assert "gnet is installed as a package, without the book's files" in message and "checkout" not in message
    assert "(<urlopen error no network>)" in message and ENTRY.value.url in message
    assert str(installed_without_book / "gnet" / ENTRY.value.relative_path) in message  # where to put it by hand


def test_a_checkout_missing_one_file_says_so_and_how_to_restore_it(tmp_path, monkeypatch):
    checkout = tmp_path / "clone"
    (checkout / "book").mkdir(parents=True)
    monkeypatch.setattr(gweights, "_REPO_ROOT", checkout)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(gweights.WeightsUnavailableError, match="is missing from this checkout") as caught:
        gweights.recorded_run_file("imagenette-cpu", "run.json")
    assert "git checkout -- book/recorded_runs/imagenette-cpu/run.json" in str(caught.value)


def test_a_download_is_checked_against_its_sha256_and_a_bad_one_is_removed(installed_without_book, monkeypatch):
    good = (RUN_DIR / "weights.pt").read_bytes()
    served = {"bytes": b"not the weights"}
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **kw: Path(dst).write_bytes(served["bytes"])
    )
    with pytest.raises(gweights.WeightsUnavailableError, match="SHA-256"):
        ENTRY.path()
    assert not list(installed_without_book.rglob("weights.pt"))
    served["bytes"] = good
    assert ENTRY.load().model.config.width == json.loads((RUN_DIR / "run.json").read_text())["config"]["width"]


def test_recorded_runs_load_from_the_checkout_with_their_metrics_and_settings():
    from gnet.book import runs as book_runs

    metrics, info = book_runs.load_recorded(ENTRY.value.run)
    assert metrics == gtrain.read_metrics(RUN_DIR) and info == gtrain.read_run_info(RUN_DIR)
    assert gweights.recorded_run_file(ENTRY.value.run, "run.json") == RUN_DIR / "run.json"


# ---------------------------------------------------------------------------------------------------- torchvision
# torchvision's test/test_extended_models.py::test_schema_meta_validation, adapted: the dataset is Imagenette, and
# the fields of a recorded run (RECORDED_FIELDS) are permitted besides torchvision's own.
PERMITTED = {"categories", "_metrics", "min_size", "num_params", "recipe", "_docs", "_ops", "_file_size"}
ENTRIES = [entry for name, entry in gnet.GoogLeNetWeights.__members__.items() if name == entry.name]  # no aliases


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_every_entry_has_the_fields_torchvision_requires_of_classification_weights(entry):
    dataset = f"Imagenette-{entry.meta['dataset_size']}"
    required = {"categories", "_metrics", "min_size", "num_params", "recipe", "_docs", "_ops", "_file_size"}
    present = set(entry.meta) | {("_metrics", d, k) for d, scores in entry.meta["_metrics"].items() for k in scores}
    assert required | {("_metrics", dataset, "acc@1"), ("_metrics", dataset, "acc@5")} <= present
    assert set(entry.meta) - PERMITTED - set(gweights.RECORDED_FIELDS) == set()
    assert entry.name.isupper()
    assert isinstance(entry.meta["_docs"], str) and entry.meta["_docs"].strip()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_every_measured_field_is_what_the_file_and_the_network_measure(entry):
    # torchvision's assertions: num_params equals the built model's, _ops what the model measures, _file_size the
    # file's; the others are measured by the same function, from the same files.
    measured = entry.value.schema_meta()
    as_json = json.dumps({key: entry.meta[key] for key in gweights.SCHEMA_FIELDS})  # tuples and lists alike
    assert json.loads(as_json) == json.loads(json.dumps(measured))
    model = gnet.googlenet(weights=entry)
    assert entry.meta["num_params"] == sum(p.numel() for p in model.parameters())
    assert entry.meta["_file_size"] == round(entry.path().stat().st_size / 1024 / 1024, 3)
    assert entry.meta["categories"] == entry.load().class_names and len(entry.meta["categories"]) == 10
    scores = entry.meta["_metrics"][f"Imagenette-{entry.meta['dataset_size']}"]
    recorded = (round(100 * entry.meta["val_top1"], 3), round(100 * entry.meta["val_top5"], 3))
    assert (scores["acc@1"], scores["acc@5"]) == recorded


def test_recorded_commands_name_the_data_folder_as_a_reader_elsewhere_can_use_it():
    for run_json in (REPO / "book" / "recorded_runs").rglob("run.json"):
        info = json.loads(run_json.read_text())
        for text in (info["command"], info["data_dir"], info["config"]["data_dir"]):
            assert text.startswith("$GNET_DATA_DIR/") or "--data-dir $GNET_DATA_DIR/" in text, (run_json, text)
    assert ENTRY.meta["command"].startswith("python -m gnet.train --data-dir $GNET_DATA_DIR/imagenette2-160 ")
