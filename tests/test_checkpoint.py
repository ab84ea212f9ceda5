"""gnet.checkpoint: a checkpoint rebuilds its own network (every switch, every weight) from the file alone."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

import gnet
from gnet.checkpoint import CheckpointError, export_weights, load_checkpoint, model_state, save_checkpoint

CLASSES = ["n01440764", "n02102040", "n02979186"]
NAMES = ["tench", "English springer", "cassette player"]

# Every switch away from its default, so a switch that is not stored cannot go unnoticed.
UNUSUAL = {
    "num_classes": 3,
    "aux_logits": True,
    "batch_norm": True,
    "lrn": False,
    "branch3_kernel": 3,
    "dropout": 0.2,
    "aux_dropout": 0.5,
    "width": 0.25,
    "pool_style": "torchvision",
    "aux_pool": "adaptive",
    "transform_input": True,
    "init": "xavier",
    "fuse_1x1": True,
    "block": "inception",  # the only block fuse_1x1 works on; tests/test_rivals.py round-trips the other blocks
    "block_width": 1.5,
    "head": "dense",
}


def test_the_unusual_config_really_changes_every_switch():
    defaults = dataclasses.asdict(gnet.GoogLeNetConfig())
    assert set(UNUSUAL) == set(defaults)
    assert all(UNUSUAL[name] != defaults[name] for name in defaults if name not in ("aux_logits", "block"))


@pytest.fixture()
def unusual_model() -> gnet.GoogLeNet:
    torch.manual_seed(0)
    model = gnet.googlenet(**UNUSUAL)
    with torch.no_grad():  # BatchNorm statistics that are not the defaults either
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_a_checkpoint_restores_every_switch_and_weight_and_the_same_logits(unusual_model, tmp_path):
    save_checkpoint(tmp_path / "m.pt", model_state(unusual_model, CLASSES, NAMES) | {"epoch": 4})
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.model.config == unusual_model.config
    assert not loaded.model.training
    for key, value in unusual_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    x = torch.randn(2, 3, 96, 96)
    assert torch.equal(loaded.model(x), unusual_model(x))
    assert (loaded.classes, loaded.class_names) == (CLASSES, NAMES)
    assert loaded.metadata == {"epoch": 4} and loaded.train_config is None


def test_exported_fp16_weights_are_half_the_size_and_load_as_their_fp16_rounding(unusual_model, tmp_path):
    save_checkpoint(tmp_path / "full.pt", model_state(unusual_model, CLASSES, NAMES))
    export_weights(tmp_path / "full.pt", tmp_path / "half.pt", recipe="test")
    full, half = (tmp_path / "full.pt").stat().st_size, (tmp_path / "half.pt").stat().st_size
    assert 0.45 < half / full < 0.6
    loaded = load_checkpoint(tmp_path / "half.pt")
    for key, value in unusual_model.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        assert torch.equal(loaded.model.state_dict()[key], expected), key
    assert loaded.metadata["metadata"] == {"recipe": "test"} and loaded.metadata["storage"] == "fp16"


def test_weights_exported_without_aux_heads_rebuild_a_network_without_them_that_predicts_the_same(tmp_path):
    torch.manual_seed(0)
    model = gnet.googlenet(num_classes=3, batch_norm=True, lrn=False, width=0.25).eval()
    save_checkpoint(tmp_path / "full.pt", model_state(model, CLASSES, NAMES))
    export_weights(tmp_path / "full.pt", tmp_path / "main.pt", half=False, aux_heads=False)
    loaded = load_checkpoint(tmp_path / "main.pt")
    assert loaded.model.config.aux_logits is False and loaded.model.aux1 is None and loaded.model.aux2 is None
    assert not any(key.startswith(("aux1.", "aux2.")) for key in loaded.model.state_dict())
    x = torch.randn(2, 3, 96, 96)
    assert torch.equal(loaded.model(x), model(x))  # fp32 storage, the same weights: the same numbers, bit for bit


def test_a_checkpoint_needs_as_many_class_names_as_the_network_has_classes(unusual_model):
    with pytest.raises(ValueError, match="the model has 3 classes, got 2 classes"):
        model_state(unusual_model, CLASSES[:2], NAMES[:2])


def _state(model: gnet.GoogLeNet) -> dict:
    return model_state(model, CLASSES, NAMES)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s | {"model_config": s["model_config"] | {"wings": 2}}, r"does not know: \['wings'\]"),
        (lambda s: s | {"model_config": s["model_config"] | {"width": 0.5}}, "does not rebuild a GoogLeNet: Error"),
        (lambda s: s | {"model_config": s["model_config"] | {"dropout": 2.0}}, "does not rebuild a GoogLeNet: dropout"),
        (lambda s: s | {"format": 1}, "has format 1, this gnet reads 2"),
        (lambda s: {k: v for k, v in s.items() if k != "classes"}, r"not a gnet checkpoint \(missing \['classes'\]\)"),
    ],
)  # fmt: skip
def test_a_checkpoint_that_cannot_rebuild_its_network_is_refused_naming_the_file(
    unusual_model, tmp_path, damage, message
):
    torch.save(damage(_state(unusual_model)), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(tmp_path / "bad.pt")
    assert str(tmp_path / "bad.pt") in str(caught.value)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_with_code_is_refused_and_the_message_says_not_to_unpickle_it(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"model": _Payload()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="Do not load it with weights_only=False") as caught:
        load_checkpoint(tmp_path / "evil.pt")
    assert "this must never run" not in capsys.readouterr().out
    assert "\n" not in str(caught.value)


def test_a_missing_checkpoint_is_named():
    with pytest.raises(CheckpointError, match="no checkpoint at /nonexistent/last.pt"):
        load_checkpoint("/nonexistent/last.pt")
