"""Rivals at equal cost (gnet.rivals): each spends the recorded network's MACs within ±3 %, measured with fvcore."""

from __future__ import annotations

import pytest
import torch

import gnet
from gnet import train
from gnet.analysis import count_layers, count_macs, count_params
from gnet.checkpoint import load_checkpoint, model_state, save_checkpoint
from gnet.rivals import BUDGET_INPUT, MAC_TOLERANCE, RECORDED_NETWORK, RIVALS, match_block_width, rival, switches

# Measured on this project's machine with fvcore (conv + linear, eval mode, one 128 px image). MAC and parameter
# counts are integers that depend on the layer shapes only, not on the CPU, so they compare exactly.
REFERENCE_MACS = 39_506_432
REFERENCE_PARAMS = 657_110  # book/recorded_runs/imagenette-cpu/run.json "parameters"
CLASSES = [f"c{i}" for i in range(10)]

# Layers with weights on the longest path (gnet.analysis.count_layers). The naive module has no 1×1 layer in
# front of its 3×3 and 5×5, so each of its nine blocks is one layer deep instead of two: 22 - 9 = 13.
DEPTH = {"googlenet": 22, "no-reductions": 13, "one-scale": 22, "plain-deep": 22, "dense-tail": 23}


@pytest.fixture(scope="module")
def reference_macs() -> int:
    return count_macs(rival("googlenet", init="torch"), BUDGET_INPUT).total


def test_reference_is_the_recorded_network_unchanged(reference_macs):
    model = rival("googlenet")
    assert count_params(model) == REFERENCE_PARAMS
    assert reference_macs == REFERENCE_MACS
    # The new switches at their defaults build the same modules as before: same names, same shapes.
    plain = gnet.googlenet(**RECORDED_NETWORK)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    assert model.config == gnet.GoogLeNetConfig(**RECORDED_NETWORK)


def test_default_paper_network_keeps_its_modules():
    config = gnet.GoogLeNetConfig()
    assert (config.block, config.block_width, config.head) == ("inception", 1.0, "gap")
    model = gnet.GoogLeNet(config)
    assert isinstance(model.inception3a, gnet.Inception) and model.dense is None
    assert "dense" not in {name.split(".")[0] for name in model.state_dict()}


@pytest.mark.parametrize("shape", [s for s in RIVALS if s != "googlenet"])
def test_rival_spends_the_same_budget(shape, reference_macs):
    model = rival(shape, init="torch")
    macs = count_macs(model, BUDGET_INPUT).total
    assert abs(macs / reference_macs - 1) <= MAC_TOLERANCE, (shape, macs, reference_macs)
    assert count_layers(model, BUDGET_INPUT).with_params == DEPTH[shape]
    params = count_params(model)
    if shape == "dense-tail":  # GAP's point: the flattened 4×4 map into a hidden layer costs parameters, not MACs
        assert params > 2 * REFERENCE_PARAMS
    else:  # the narrowed rivals hold about as many weights as the reference (within 15 %)
        assert abs(params / REFERENCE_PARAMS - 1) < 0.15, (shape, params)


def test_reference_depth():
    assert count_layers(rival("googlenet", init="torch"), BUDGET_INPUT).with_params == DEPTH["googlenet"]


@pytest.mark.parametrize(
    ("shape", "block_type"),
    [
        ("no-reductions", gnet.NaiveInception),
        ("one-scale", gnet.model.OneScaleBlock),
        ("plain-deep", gnet.model.PlainBlock),
        ("dense-tail", gnet.Inception),
    ],
)
def test_rival_is_built_from_its_blocks(shape, block_type):
    model = rival(shape, init="torch")
    assert all(isinstance(getattr(model, name), block_type) for name in gnet.INCEPTION_SPECS)
    assert (model.dense is not None) == (shape == "dense-tail")
    assert model.conv3.conv.weight.shape == rival("googlenet", init="torch").conv3.conv.weight.shape  # same stem


@pytest.mark.parametrize("shape", list(RIVALS))
def test_rival_trains_a_step(shape):
    torch.manual_seed(0)
    model = rival(shape).train()
    x, y = torch.randn(2, 3, 128, 128), torch.tensor([1, 7])
    out = model(x)
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 10)
    gnet.googlenet_loss(out, y).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 10)


@pytest.mark.parametrize("shape", ["no-reductions", "dense-tail"])
def test_rival_checkpoint_round_trip(shape, tmp_path):
    model = rival(shape).eval()
    path = tmp_path / "rival.pt"
    save_checkpoint(path, model_state(model, CLASSES, CLASSES))
    loaded = load_checkpoint(path).model
    assert loaded.config == model.config
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        # The same weights in the same float32 layers on the same CPU: the logits are bit-identical.
        assert torch.equal(loaded(x), model(x))


def test_checkpoint_without_rival_switches_loads_as_googlenet(tmp_path):
    model = gnet.googlenet(num_classes=10, width=0.125, aux_logits=False).eval()
    state = model_state(model, CLASSES, CLASSES)
    for key in ("block", "block_width", "head"):  # a checkpoint saved before these switches existed
        del state["model_config"][key]
    save_checkpoint(tmp_path / "old.pt", state)
    loaded = load_checkpoint(tmp_path / "old.pt").model
    assert loaded.config == model.config


@pytest.mark.parametrize(
    ("switch", "value"), [("block", "vgg"), ("head", "fc"), ("block_width", 0), ("block_width", float("nan"))]
)
def test_bad_switch_is_one_value_error(switch, value):
    with pytest.raises(ValueError, match=switch):
        gnet.GoogLeNetConfig(**{switch: value})


def test_fuse_1x1_needs_inception_blocks():
    with pytest.raises(ValueError, match="fuse_1x1"):
        gnet.GoogLeNetConfig(block="plain", fuse_1x1=True)


def test_unknown_shape_is_refused():
    with pytest.raises(ValueError, match="shape must be one of"):
        switches("resnet")
    with pytest.raises(ValueError, match="shape"):
        train.TrainConfig(shape="resnet")


def test_trainer_builds_the_shape():
    args = train.build_parser().parse_args(["--shape", "plain-deep", "--width", "0.25", "--batch-norm", "--no-lrn"])
    config = train.config_from_args(args)
    assert config.shape == "plain-deep"
    model = train.build_model(config, num_classes=10)
    assert model.config.block == "plain" and model.config.block_width == RIVALS["plain-deep"]["block_width"]
    assert train.build_model(train.TrainConfig(), num_classes=10).config.block == "inception"


@pytest.mark.slow
def test_search_finds_the_recorded_block_width():
    assert match_block_width("plain", REFERENCE_MACS) == RIVALS["plain-deep"]["block_width"]


def test_trainer_refuses_fuse_1x1_without_inception_blocks(capsys):
    assert train.main(["--shape", "plain-deep", "--fuse-1x1", "--out", "unused"]) == train.EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fuse-1x1" in err[0] and "plain-deep" in err[0]
