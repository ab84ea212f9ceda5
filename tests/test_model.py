"""The network: paper numbers, output contract, switches, torchvision equivalence and bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

import gnet
from gnet.analysis import count_params
from gnet.model import GoogLeNetConfig


def aux_params(model: gnet.GoogLeNet) -> int:
    return sum(count_params(h) for h in (model.aux1, model.aux2) if h is not None)


# -- the paper's numbers -----------------------------------------------------------------------------------


def test_paper_model_has_6998552_parameters_without_aux_heads_and_13378280_with():
    model = gnet.googlenet()
    assert count_params(model) == 13_378_280
    assert count_params(model) - aux_params(model) == 6_998_552
    assert count_params(gnet.googlenet(aux_logits=False)) == 6_998_552


def test_torchvision_config_matches_torchvision_parameter_counts():
    assert count_params(gnet.googlenet(**gnet.TORCHVISION_CONFIG)) == 13_004_888
    assert count_params(gnet.googlenet(aux_logits=False, **gnet.TORCHVISION_CONFIG)) == 6_624_904


@pytest.mark.parametrize("name", list(gnet.INCEPTION_SPECS))
def test_each_inception_block_is_built_from_table1(name):
    spec = gnet.INCEPTION_SPECS[name]
    block = getattr(gnet.googlenet(), name)
    assert block.in_channels == spec.in_channels
    assert block.out_channels == spec.out_channels
    assert block.branch1.conv.out_channels == spec.n1x1
    assert (block.branch2[0].conv.out_channels, block.branch2[1].conv.out_channels) == (spec.n3x3_reduce, spec.n3x3)
    assert (block.branch3[0].conv.out_channels, block.branch3[1].conv.out_channels) == (spec.n5x5_reduce, spec.n5x5)
    assert block.branch3[1].conv.kernel_size == (5, 5)  # a real 5×5, unlike torchvision's
    assert block.branch4[1].conv.out_channels == spec.pool_proj


def test_feature_shapes_at_224_follow_table1():
    model = gnet.googlenet().eval()
    shapes = {}
    hooks = [
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape))
        for name in ("conv1", "maxpool1", "maxpool2", "inception3b", "maxpool3", "inception4e", "inception5b")
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert shapes["conv1"] == (1, 64, 112, 112)
    assert shapes["maxpool1"] == (1, 64, 56, 56)
    assert shapes["maxpool2"] == (1, 192, 28, 28)
    assert shapes["inception3b"] == (1, 480, 28, 28)
    assert shapes["maxpool3"] == (1, 480, 14, 14)
    assert shapes["inception4e"] == (1, 832, 14, 14)
    assert shapes["inception5b"] == (1, 1024, 7, 7)


def test_stem_has_two_lrn_layers_by_default_and_none_when_switched_off():
    assert isinstance(gnet.googlenet().lrn1, torch.nn.LocalResponseNorm)
    assert isinstance(gnet.googlenet().lrn2, torch.nn.LocalResponseNorm)
    assert isinstance(gnet.googlenet(lrn=False).lrn1, torch.nn.Identity)


def test_naive_module_on_28x28x192_concatenates_to_416_channels():
    naive = gnet.NaiveInception(192, 64, 128, 32)
    out = naive(torch.zeros(1, 192, 28, 28))
    assert naive.out_channels == 416
    assert out.shape == (1, 416, 28, 28)


def test_reduced_module_on_28x28x192_gives_256_channels():
    out = gnet.Inception(192, 64, (96, 128), (16, 32), 32)(torch.zeros(1, 192, 28, 28))
    assert out.shape == (1, 256, 28, 28)


# -- output contract ---------------------------------------------------------------------------------------


def test_train_mode_returns_named_output_in_network_order():
    model = gnet.googlenet(num_classes=10).train()
    out = model(torch.randn(2, 3, 96, 96))
    assert isinstance(out, gnet.GoogLeNetOutput)
    assert out._fields == ("logits", "aux1", "aux2")
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 10)


def test_aux1_comes_from_4a_and_aux2_from_4d():
    model = gnet.googlenet(num_classes=10).train()
    seen = []
    model.aux1.register_forward_hook(lambda m, i, o: seen.append(("aux1", i[0].shape[1])))
    model.aux2.register_forward_hook(lambda m, i, o: seen.append(("aux2", i[0].shape[1])))
    model(torch.randn(1, 3, 96, 96))
    assert seen == [("aux1", 512), ("aux2", 528)]


def test_eval_mode_returns_plain_logits_and_never_runs_aux_heads():
    model = gnet.googlenet(num_classes=10).eval()
    calls = []
    model.aux1.register_forward_hook(lambda *a: calls.append(1))
    model.aux2.register_forward_hook(lambda *a: calls.append(2))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert calls == []


def test_without_aux_heads_train_output_has_none_aux_fields():
    out = gnet.googlenet(num_classes=5, aux_logits=False).train()(torch.randn(1, 3, 64, 64))
    assert out.aux1 is None and out.aux2 is None and out.logits.shape == (1, 5)


def test_forward_features_and_head_compose_to_forward_in_eval():
    model = gnet.googlenet(num_classes=7).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (1, model.num_features, 4, 4)
        assert torch.equal(model.forward_head(features), model(x))


def test_pre_logits_are_the_pooled_features_the_classifier_reads():
    model = gnet.googlenet(num_classes=7, width=0.25).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (2, model.num_features)
        assert torch.allclose(pooled, features.mean(dim=(2, 3)), atol=1e-6)
        assert torch.equal(model.get_classifier()(pooled), model(x))
    assert model.get_classifier() is model.fc


def test_forward_features_hands_out_the_aux_taps_and_train_mode_reads_them():
    model = gnet.googlenet(num_classes=3, width=0.25, dropout=0.0, aux_dropout=0.0).train()
    x = torch.randn(2, 3, 96, 96)
    taps: dict[str, torch.Tensor] = {}
    torch.manual_seed(0)
    features = model.forward_features(x, taps)
    assert set(taps) == {"inception4a", "inception4d"}
    assert taps["inception4a"].shape[1] == model.inception4a.out_channels
    torch.manual_seed(0)
    out = model(x)
    assert torch.allclose(out.aux1, model.aux1(taps["inception4a"])) and torch.allclose(
        out.logits, model.forward_head(features)
    )


@pytest.mark.parametrize(("scheme", "gain"), [("he", 2.0), ("xavier", 1.0)])
def test_init_schemes_set_the_hidden_weight_variance_and_keep_classifiers_small(scheme, gain):
    torch.manual_seed(0)
    model = gnet.googlenet(init=scheme)
    conv = model.inception4e.branch2[1].conv.weight  # 160 · 3 · 3 inputs, 320 · 1440 weights
    fan_in = conv.shape[1] * conv.shape[2] * conv.shape[3]
    assert conv.var().item() * fan_in == pytest.approx(gain, rel=0.02)
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert not any(model.fc.bias)


def test_torch_init_leaves_pytorchs_defaults_and_init_weights_is_deterministic():
    torch.manual_seed(0)
    default = gnet.googlenet(init="torch", width=0.25)
    torch.manual_seed(0)
    again = gnet.googlenet(init="torch", width=0.25)
    assert torch.equal(default.conv1.conv.weight, again.conv1.conv.weight)
    bound = 1 / (3 * 7 * 7) ** 0.5  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert default.conv1.conv.weight.abs().max().item() <= bound
    gnet.model.init_weights_(default, "he")
    assert default.conv1.conv.weight.abs().max().item() > bound


def test_label_smoothing_reaches_every_head():
    output = gnet.GoogLeNetOutput(torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(4, 10))
    target = torch.arange(4)
    # Uniform logits: every head's cross-entropy is log(10), smoothed or not.
    assert gnet.googlenet_loss(output, target, label_smoothing=0.1).item() == pytest.approx(1.6 * math.log(10))
    confident = torch.full((4, 10), -20.0)
    confident[torch.arange(4), target] = 20.0
    sharp = gnet.GoogLeNetOutput(confident, confident, confident)
    plain = gnet.googlenet_loss(sharp, target).item()
    smoothed = gnet.googlenet_loss(sharp, target, label_smoothing=0.1).item()
    # Smoothing charges 0.1 · (mean over classes of -log p), about 0.1 · 40 · 9/10 nats per head.
    assert plain < 1e-6 and smoothed == pytest.approx(1.6 * 0.1 * 40 * 0.9, rel=1e-3)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\), got 1.0"):
        gnet.googlenet_loss(sharp, target, label_smoothing=1.0)


def test_reset_classifier_changes_all_three_heads():
    model = gnet.googlenet()
    model.reset_classifier(10)
    out = model.train()(torch.randn(1, 3, 96, 96))
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (1, 10)
    assert model.config.num_classes == 10


def test_aux_head_at_224_pools_14x14_to_4x4_without_the_adaptive_fallback():
    head = gnet.AuxHead(512, 10)
    assert head(torch.randn(2, 512, 14, 14)).shape == (2, 10)
    # At other sizes the adaptive pool makes the FC input 2048 all the same.
    assert head(torch.randn(2, 512, 6, 6)).shape == (2, 10)


# -- the loss ----------------------------------------------------------------------------------------------


def test_loss_adds_0_3_of_each_aux_cross_entropy():
    logits, aux1, aux2 = torch.randn(3, 4, 5).unbind(0)
    target = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy
    out = gnet.GoogLeNetOutput(logits, aux1, aux2)
    expected = ce(logits, target) + 0.3 * ce(aux1, target) + 0.3 * ce(aux2, target)
    assert torch.allclose(gnet.googlenet_loss(out, target), expected)
    assert torch.allclose(gnet.googlenet_loss(logits, target), ce(logits, target))
    assert torch.allclose(gnet.googlenet_loss(out, target, aux_weight=0), ce(logits, target))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aux_weight": -1}, "aux_weight must be a non-negative finite number"),
        ({"aux_weight": float("nan")}, "aux_weight must be a non-negative finite number"),
        ({"aux_weight": float("inf")}, "aux_weight must be a non-negative finite number, got inf"),
        ({"target": [0, 1, 2, 3]}, "target must be a torch.int64 tensor of class indices, got list"),
        ({"target": torch.zeros(4, dtype=torch.int32)}, "got a tensor of torch.int32"),
        ({"target": torch.tensor([0, 1, 5, 2])}, r"target holds class 5, outside 0..4 \(the model has 5 classes\)"),
        ({"target": torch.tensor([0, -1, 2, 2])}, r"target holds class -1, outside 0..4"),
        ({"target": torch.zeros(3, dtype=torch.long)}, "target must be a 1-D tensor of 4 class indices"),
        ({"output": [1, 2]}, "output must be a GoogLeNetOutput or a logits tensor"),
    ],
)
def test_loss_rejects_bad_input(kwargs, message):
    args = {"output": torch.randn(4, 5), "target": torch.zeros(4, dtype=torch.long), **kwargs}
    with pytest.raises(ValueError, match=message):
        gnet.googlenet_loss(**args)


# -- switches ----------------------------------------------------------------------------------------------


def test_every_default_is_the_paper():
    cfg = GoogLeNetConfig()
    assert (cfg.num_classes, cfg.aux_logits, cfg.batch_norm, cfg.lrn) == (1000, True, False, True)
    assert (cfg.branch3_kernel, cfg.dropout, cfg.aux_dropout, cfg.width) == (5, 0.4, 0.7, 1.0)
    assert (cfg.pool_style, cfg.aux_pool) == ("paper", "paper")


def test_batch_norm_switch_removes_conv_biases_and_adds_batchnorm():
    model = gnet.googlenet(batch_norm=True)
    assert model.conv1.conv.bias is None and isinstance(model.conv1.bn, torch.nn.BatchNorm2d)
    assert model.inception5b.branch3[1].bn.eps == 1e-3


def test_branch3_kernel_switch_gives_torchvisions_3x3():
    assert gnet.googlenet(branch3_kernel=3).inception3a.branch3[1].conv.kernel_size == (3, 3)


def test_dropout_switches_reach_the_modules():
    model = gnet.googlenet(dropout=0.2, aux_dropout=0.5)
    assert model.dropout.p == 0.2 and model.aux1.dropout.p == 0.5


@pytest.mark.parametrize("width", [0.25, 0.5, 2.0])
def test_width_scales_every_channel_count(width):
    model = gnet.googlenet(width=width, num_classes=10)
    assert model.conv1.conv.out_channels == round(64 * width)
    assert model.inception3a.out_channels == sum(round(c * width) for c in (64, 128, 32, 32))
    assert model.aux1.conv.conv.out_channels == round(128 * width)
    assert model.fc.in_features == model.num_features == model.inception5b.out_channels
    assert model.train()(torch.randn(1, 3, 65, 65)).logits.shape == (1, 10)


def test_half_width_has_about_a_quarter_of_the_parameters():
    full, half = (
        count_params(gnet.googlenet(aux_logits=False)),
        count_params(gnet.googlenet(aux_logits=False, width=0.5)),
    )
    assert 0.2 < half / full < 0.3  # convolutions scale with width²; the 1000-way classifier only with width


def test_minimum_input_size_is_65_with_paper_aux_heads_and_smaller_without():
    assert gnet.googlenet().min_input_size == 65  # the 4a map (H/16, rounded up) must fit the 5×5 aux pool
    model = gnet.googlenet(num_classes=3).train()
    assert model(torch.randn(1, 3, 65, 65)).aux1.shape == (1, 3)
    assert gnet.googlenet(aux_logits=False).min_input_size < 65
    assert gnet.googlenet(**gnet.TORCHVISION_CONFIG).min_input_size == 31


def test_paper_model_runs_at_non_square_sizes():
    out = gnet.googlenet(num_classes=4).train()(torch.randn(1, 3, 80, 120))
    assert out.logits.shape == out.aux2.shape == (1, 4)


# -- torchvision equivalence -------------------------------------------------------------------------------


def _perturb_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


@pytest.mark.parametrize("transform_input", [False, True])
@pytest.mark.parametrize("size", [(224, 224), (97, 131)])
def test_from_torchvision_reproduces_torchvision_logits(transform_input, size):
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=True, transform_input=transform_input)
    _perturb_batchnorm(tv)
    tv.eval()
    ours = gnet.from_torchvision(tv)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected, got = tv(x), ours(x)
    assert expected.abs().max() > 1e-3  # a non-trivial comparison
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_from_torchvision_state_dict_with_aux_heads_matches_aux_outputs_in_train_mode():
    torch.manual_seed(1)
    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=True, dropout=0.0)
    tv.aux1.dropout.p = tv.aux2.dropout.p = 0.0
    ours = gnet.from_torchvision(tv.state_dict(), transform_input=False)
    ours.dropout.p = ours.aux1.dropout.p = ours.aux2.dropout.p = 0.0
    tv.train(), ours.train()
    x = torch.randn(4, 3, 112, 112)
    ref, out = tv(x), ours(x)
    # torchvision's namedtuple is (logits, aux_logits2, aux_logits1); read both by name.
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.aux1, ref.aux_logits1, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.aux2, ref.aux_logits2, atol=1e-4, rtol=0)


def test_from_torchvision_reads_class_count_and_missing_aux_heads():
    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=False, num_classes=10)
    ours = gnet.from_torchvision(tv)
    assert ours.aux1 is None and ours.config.num_classes == 10 and not ours.training


def test_from_torchvision_rejects_things_that_are_not_googlenet():
    with pytest.raises(ValueError, match="expected a torchvision GoogLeNet or its state dict, got int"):
        gnet.from_torchvision(3)
    with pytest.raises(ValueError, match="does not look like a torchvision googlenet"):
        gnet.from_torchvision(torchvision.models.alexnet(weights=None))


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((192, 0, (96, 128), (16, 32), 32), r"c1 must be a positive int, got 0"),
        ((192, 64, 96, (16, 32), 32), r"c2 must be a \(reduce, out\) pair of positive ints, got 96"),
        ((192, 64, (96, 128, 1), (16, 32), 32), r"c2 must be a \(reduce, out\) pair"),
        ((192, 64, (96, 128), (16, -32), 32), r"c3\[1\] \(out\) must be a positive int, got -32"),
        ((192, 64, (96, 128), (16, 32), 2.5), r"c4 must be a positive int, got 2.5"),
        ((0, 64, (96, 128), (16, 32), 32), r"in_channels must be a positive int, got 0"),
        ((True, 64, (96, 128), (16, 32), 32), r"in_channels must be a positive int, got True"),
    ],
)
def test_inception_rejects_malformed_channel_specs(args, message):
    with pytest.raises(ValueError, match=message):
        gnet.Inception(*args)


def test_inception_rejects_even_branch3_kernel():
    with pytest.raises(ValueError, match="branch3_kernel must be a positive odd int .* got 4"):
        gnet.Inception(192, 64, (96, 128), (16, 32), 32, branch3_kernel=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be a positive int, got 0"),
        ({"width": 0}, "width must be a positive finite number, got 0"),
        ({"width": -0.5}, "width must be a positive finite number, got -0.5"),
        ({"width": float("inf")}, "width must be a positive finite number, got inf"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\), got 1.0"),
        ({"pool_style": "caffe"}, "pool_style must be 'paper' or 'torchvision', got 'caffe'"),
        ({"aux_pool": "max"}, "aux_pool must be 'paper' or 'adaptive', got 'max'"),
        ({"init": "orthogonal"}, "init must be one of he, xavier, torch, got 'orthogonal'"),
        ({"depth": 3}, r"unknown GoogLeNet option\(s\) \['depth'\]"),
    ],
)
def test_googlenet_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gnet.googlenet(**kwargs)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(3, 224, 224), r"expected a tensor of shape N×3×H×W .*got \(3, 224, 224\)"),
        (torch.zeros(1, 1, 224, 224), r"expected a tensor of shape N×3×H×W .*got \(1, 1, 224, 224\)"),
        (
            torch.zeros(1, 3, 224, 224, dtype=torch.uint8),
            "expected a floating-point tensor, got dtype torch.uint8",
        ),
        (torch.zeros(1, 3, 64, 224), r"needs images of at least 65×65 pixels .*got 64×224"),
        ([[0.0]], "expected a torch.Tensor of shape N×3×H×W, got list"),
        (
            torch.zeros(1, 3, 224, 224, dtype=torch.float64),
            r"expected torch.float32 input like the model's weights, got torch.float64 \(convert one of them",
        ),
    ],
)
def test_forward_rejects_bad_input_with_a_clear_message(x, message):
    with pytest.raises(ValueError, match=message):
        gnet.googlenet(num_classes=2).eval()(x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_bfloat16_inference_runs_on_the_cpu_lrn_included(dtype):
    torch.manual_seed(0)
    model = gnet.googlenet(num_classes=10, width=0.25).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        reference = model(x)
        low = model.to(dtype)(x.to(dtype))
    assert low.dtype == dtype and torch.allclose(low.float(), reference, atol=0.05, rtol=0.05)


def test_a_bare_state_dict_says_which_transform_input_it_assumes():
    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=False)
    with pytest.warns(UserWarning, match="assuming True"):
        assert gnet.from_torchvision(tv.state_dict()).config.transform_input


# ---------------------------------------------------------------------------------------------------- speed switches
@pytest.mark.parametrize("arch", ["paper", "torchvision"])
def test_fused_1x1_blocks_change_no_parameter_and_no_output(arch):
    kwargs = gnet.TORCHVISION_CONFIG if arch == "torchvision" else {}
    torch.manual_seed(0)
    plain, fused = gnet.googlenet(**kwargs), gnet.googlenet(**kwargs, fuse_1x1=True)
    assert [(k, v.shape) for k, v in plain.state_dict().items()] == [
        (k, v.shape) for k, v in fused.state_dict().items()
    ]
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 96, 96)
    for mode in ("train", "eval"):
        getattr(plain, mode)(), getattr(fused, mode)()
        torch.manual_seed(1)
        a = plain(x)
        torch.manual_seed(1)  # the same dropout masks
        b = fused(x)
        for p, q in zip(a if mode == "train" else [a], b if mode == "train" else [b], strict=True):
            assert (p - q).abs().max() < 1e-5


@pytest.mark.parametrize("arch", ["paper", "torchvision"])
def test_fused_1x1_blocks_give_the_same_gradients_to_every_parameter(arch):
    # float64, so that BatchNorm on a batch of 4 does not amplify float32 rounding into the comparison
    kwargs = (gnet.TORCHVISION_CONFIG if arch == "torchvision" else {}) | {"num_classes": 10, "width": 0.25}
    torch.manual_seed(0)
    plain, fused = gnet.googlenet(**kwargs).double(), gnet.googlenet(**kwargs, fuse_1x1=True).double()
    fused.load_state_dict(plain.state_dict())
    x, target = torch.randn(4, 3, 96, 96, dtype=torch.float64), torch.tensor([1, 2, 3, 4])
    for model in (plain, fused):
        torch.manual_seed(1)
        gnet.googlenet_loss(model(x), target).backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-12), name


def test_fused_1x1_loads_torchvision_weights_and_the_shipped_weights_unchanged():
    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=True).eval()
    reference = gnet.from_torchvision(tv)
    fused = gnet.googlenet(**gnet.TORCHVISION_CONFIG, transform_input=False, fuse_1x1=True).eval()
    fused.load_state_dict(tv.state_dict())  # strict: every key and shape matches
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        assert (fused(x) - reference(x)).abs().max() < 1e-5
    shipped, shipped_fused = gnet.googlenet(weights="DEFAULT"), gnet.googlenet(weights="DEFAULT", fuse_1x1=True)
    assert shipped_fused.config.fuse_1x1 and not shipped_fused.training
    with torch.no_grad():
        assert (shipped(x) - shipped_fused(x)).abs().max() < 1e-5
    with pytest.raises(ValueError, match=r"got switches too: \['width'\]"):
        gnet.googlenet(weights="DEFAULT", fuse_1x1=True, width=0.5)


@pytest.mark.parametrize(("channels", "size"), [(64, 5), (192, 5), (7, 4), (3, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_banded_lrn_matches_pytorchs_local_response_norm_and_its_gradient(channels, size, channels_last):
    torch.manual_seed(0)
    x = torch.randn(2, channels, 9, 11, dtype=torch.float64) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, reference = (
        module(size, alpha=1e-2, beta=0.75, k=1.0)  # a large alpha, so the window sum matters
        for module in (gnet.model._LocalResponseNorm, torch.nn.LocalResponseNorm)
    )
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(a), reference(b)
    grad = torch.randn_like(ya)
    ya.backward(grad), yb.backward(grad)
    assert torch.allclose(ya, yb, rtol=1e-12, atol=1e-12) and torch.allclose(a.grad, b.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_under_tracing_the_lrn_takes_pytorchs_path_so_counted_macs_stay_the_papers():
    lrn = gnet.model._LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    graph = str(torch.jit.trace(lrn, torch.randn(1, 8, 4, 4)).graph)
    assert "avg_pool3d" in graph and "conv2d" not in graph and "_convolution" not in graph
