"""Per-layer gradient norms: what the auxiliary losses can and cannot reach, and that measuring changes nothing."""

from __future__ import annotations

import copy
import math

import matplotlib
import pytest
import torch
from torch import nn

import gnet
from gnet.book import gradients
from gnet.book.gradients import (
    MAIN_PATH,
    compare_aux_gradients,
    count_forward_calls,
    depth_order,
    layer_gradient_norms,
    plot_aux_ratio,
    plot_gradient_norms,
    track_aux_gradients,
)
from gnet.model import AUX_TAPS, init_weights_
from gnet.table1 import PAPER_DEPTH

matplotlib.use("Agg")

# Layers the auxiliary losses reach (at or below 4d) and layers they cannot (above 4d).
BELOW_UPPER_TAP = MAIN_PATH[: MAIN_PATH.index("inception4d") + 1]
ABOVE_UPPER_TAP = MAIN_PATH[MAIN_PATH.index("inception4e") :]
# Reached by aux2 only, not by aux1 (which reads 4a).
BETWEEN_TAPS = ("inception4b", "inception4c", "inception4d")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These models are tiny, so threads buy nothing; on a shared CPU, OpenMP threads waiting on each other made
    # this file several times slower. Restored afterwards, so other test files keep their setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(batch_norm: bool = False, **kwargs) -> gnet.GoogLeNet:
    torch.manual_seed(0)
    return gnet.googlenet(num_classes=10, batch_norm=batch_norm, width=0.125, **kwargs).train()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 65, 65, generator=generator)  # 65 px: the smallest the paper's aux heads take
    targets = torch.tensor([0, 3, 7, 9])
    return images, targets


# -- what the auxiliary losses can reach ----------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True], ids=["no_bn", "bn"])
@pytest.mark.parametrize("kind", ["params", "output"])
def test_layers_above_4d_get_exactly_the_same_gradient_with_and_without_aux_losses(batch, batch_norm, kind):
    model = tiny_model(batch_norm)
    without = layer_gradient_norms(model, *batch, aux_weight=0.0, kind=kind)
    with_aux = layer_gradient_norms(model, *batch, aux_weight=0.3, kind=kind)
    for name in ABOVE_UPPER_TAP:
        assert with_aux[name] == without[name], name  # bit-identical, not merely close
    for name in BELOW_UPPER_TAP:
        assert with_aux[name] != without[name], name


def test_aux_losses_leave_the_gradients_of_every_parameter_above_4d_bit_identical(batch):
    # The same fact with plain autograd and no gnet.book.gradients at all: two forward passes, same seed.
    model = tiny_model()
    grads = []
    for aux_weight in (0.0, 0.3):
        model.zero_grad()
        torch.manual_seed(5)
        gnet.googlenet_loss(model(batch[0]), batch[1], aux_weight=aux_weight).backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    without, with_aux = grads
    above = [n for n in without if n.split(".")[0] in ABOVE_UPPER_TAP]
    below = [n for n in without if n.split(".")[0] in BELOW_UPPER_TAP]
    assert above and below
    assert all(torch.equal(with_aux[n], without[n]) for n in above)
    for layer in BELOW_UPPER_TAP:  # (a tiny model has some dead units, so compare whole layers)
        assert not all(torch.equal(with_aux[n], without[n]) for n in below if n.split(".")[0] == layer), layer
    # With weight 0 the heads still run (0 × their loss), so their own gradients exist and are exactly zero.
    assert all(float(g.abs().max()) == 0 for n, g in without.items() if n.startswith(("aux1.", "aux2.")))


def test_aux_only_gradient_is_zero_above_4d_and_positive_below(batch):
    comparison = compare_aux_gradients(tiny_model(), *batch, aux_weight=0.3)
    for kind in ("params", "output"):
        aux_only = getattr(comparison.aux_only, kind)
        assert all(aux_only[name] == 0.0 for name in ABOVE_UPPER_TAP)
        assert all(aux_only[name] > 0.0 for name in BELOW_UPPER_TAP)
        ratio = comparison.ratio(kind)
        assert all(ratio[name] == 1.0 for name in ABOVE_UPPER_TAP)


def test_aux_only_gradient_is_linear_in_the_aux_weight(batch):
    model = tiny_model()
    low = compare_aux_gradients(model, *batch, aux_weight=0.3).aux_only.params
    high = compare_aux_gradients(model, *batch, aux_weight=0.9).aux_only.params
    for name in BELOW_UPPER_TAP:
        assert high[name] == pytest.approx(3 * low[name], rel=1e-4), name


def test_without_the_lower_head_layers_between_the_taps_still_get_aux_gradient_and_above_4d_none(batch):
    model = tiny_model()
    model.aux1 = None  # as if only the upper head existed
    aux_only = compare_aux_gradients(model, *batch).aux_only.params
    assert all(aux_only[name] > 0 for name in BETWEEN_TAPS)
    assert all(aux_only[name] == 0 for name in ABOVE_UPPER_TAP)


def test_with_dropout_off_deleting_the_lower_head_changes_only_the_layers_up_to_4a(batch):
    both = tiny_model()
    for module in both.modules():
        if isinstance(module, nn.Dropout):
            module.eval()  # no random masks, so deleting aux1 changes nothing else
    upper_only = copy.deepcopy(both)
    upper_only.aux1 = None
    with_both = compare_aux_gradients(both, *batch).with_aux.params
    with_upper = compare_aux_gradients(upper_only, *batch).with_aux.params
    for name in MAIN_PATH:
        reached_by_aux1 = PAPER_DEPTH[name] <= PAPER_DEPTH[AUX_TAPS["aux1"]]
        assert (with_both[name] != with_upper[name]) == reached_by_aux1, name


def test_compare_agrees_with_two_separate_measurements(batch):
    model = tiny_model(batch_norm=True)
    comparison = compare_aux_gradients(model, *batch, aux_weight=0.3, seed=3)
    for aux_weight, norms in ((0.0, comparison.without_aux), (0.3, comparison.with_aux)):
        for kind in ("params", "output"):
            alone = layer_gradient_norms(model, *batch, aux_weight=aux_weight, kind=kind, seed=3)
            assert alone == pytest.approx(getattr(norms, kind), rel=1e-6)


# -- what a measurement returns -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True], ids=["no_bn", "bn"])
def test_norms_are_positive_finite_and_ordered_stem_to_head(batch, batch_norm):
    norms = layer_gradient_norms(tiny_model(batch_norm), *batch, aux_weight=0.3)
    assert list(norms) == list(MAIN_PATH)
    assert all(math.isfinite(v) and v > 0 for v in norms.values())


def test_a_subset_of_layers_comes_back_stem_to_head_whatever_order_it_was_asked_in(batch):
    norms = layer_gradient_norms(tiny_model(), *batch, aux_weight=0.3, layers=["fc", "conv1", "inception4a"])
    assert list(norms) == ["conv1", "inception4a", "fc"]


def test_norm_is_the_l2_norm_of_the_concatenated_parameter_gradients(batch):
    model = tiny_model()
    norms = layer_gradient_norms(model, *batch, aux_weight=0.3, layers=["conv1", "inception3a"], seed=7)
    torch.manual_seed(7)
    gnet.googlenet_loss(model(batch[0]), batch[1], aux_weight=0.3).backward()
    for name in ("conv1", "inception3a"):
        grads = [p.grad for p in model.get_submodule(name).parameters()]
        expected = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
        assert norms[name] == pytest.approx(expected, rel=1e-6)


def test_output_norm_is_the_norm_of_the_gradient_with_respect_to_the_layer_output(batch):
    model = tiny_model()
    norms = layer_gradient_norms(model, *batch, aux_weight=0.3, kind="output", layers=["fc"], seed=7)
    torch.manual_seed(7)
    out = model(batch[0])
    (grad,) = torch.autograd.grad(gnet.googlenet_loss(out, batch[1], aux_weight=0.3), [out.logits])
    assert norms["fc"] == pytest.approx(float(grad.norm()), rel=1e-6)


def test_same_seed_gives_the_same_norms_and_another_seed_other_dropout_masks(batch):
    model = tiny_model()
    first = layer_gradient_norms(model, *batch, aux_weight=0.3, seed=0)
    assert layer_gradient_norms(model, *batch, aux_weight=0.3, seed=0) == first
    assert layer_gradient_norms(model, *batch, aux_weight=0.3, seed=1) != first


@pytest.mark.parametrize("batch_norm", [False, True], ids=["no_bn", "bn"])
def test_measuring_leaves_model_and_random_state_untouched(batch, batch_norm):
    model = tiny_model(batch_norm)
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    compare_aux_gradients(model, *batch)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # incl. BN running stats
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training


# -- during training ------------------------------------------------------------------------------------------


def random_batches(count: int, seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 65, 65, generator=generator), torch.randint(0, 10, (4,), generator=generator))] * count


def test_tracking_measures_at_the_requested_steps_and_the_run_is_the_one_it_would_be_unmeasured(batch):
    measured, unmeasured = tiny_model(), tiny_model()
    runs = []
    for model, measure_at in ((measured, (0, 1, 3)), (unmeasured, (3,))):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        torch.manual_seed(11)  # the same dropout masks for both runs, unless measuring disturbed the RNG
        runs.append(
            track_aux_gradients(model, random_batches(3), *batch, optimizer=optimizer, steps=3, measure_at=measure_at)
        )
    assert list(runs[0].comparisons) == [0, 1, 3] and list(runs[1].comparisons) == [3]
    assert runs[0].losses == runs[1].losses and len(runs[0].losses) == 3
    assert all(
        torch.equal(a, b) for a, b in zip(measured.state_dict().values(), unmeasured.state_dict().values(), strict=True)
    )
    assert runs[0].comparisons[3].with_aux == runs[1].comparisons[3].with_aux
    assert runs[0].comparisons[0].with_aux != runs[0].comparisons[3].with_aux  # the weights moved
    assert all(main < total for main, total in zip(runs[0].main_losses, runs[0].losses, strict=True))


def test_tracking_rejects_bad_schedules(batch):
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"measure_at must hold steps in \[0, 2\], got \[5\]"):
        track_aux_gradients(model, random_batches(2), *batch, optimizer=optimizer, steps=2, measure_at=(0, 5))
    with pytest.raises(ValueError, match="batches ran out after 1 of 2 steps"):
        track_aux_gradients(model, random_batches(1), *batch, optimizer=optimizer, steps=2, measure_at=(2,))
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        track_aux_gradients(model, random_batches(1), *batch, optimizer=optimizer, steps=-1, measure_at=(0,))


# -- depth ---------------------------------------------------------------------------------------------------


def test_depth_order_is_the_order_in_which_forward_runs_the_main_path(batch):
    model = tiny_model().eval()
    seen: list[str] = []
    handles = [
        module.register_forward_pre_hook(lambda *_, name=name: seen.append(name))
        for name, module in model.named_children()
    ]
    with torch.no_grad():
        model(batch[0])
    for handle in handles:
        handle.remove()
    assert [name for name in seen if name in MAIN_PATH] == depth_order(model) == list(MAIN_PATH)


def test_paper_depth_counts_22_layers_from_table1_with_the_aux_taps_at_4a_and_4d():
    assert list(PAPER_DEPTH.values()) == [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 22]
    assert AUX_TAPS == {"aux1": "inception4a", "aux2": "inception4d"}


# -- inference ------------------------------------------------------------------------------------------------


def test_eval_mode_never_calls_the_aux_heads_and_train_mode_calls_each_once(batch):
    model = tiny_model()
    with count_forward_calls(model.eval(), ["aux1", "aux2", "fc"]) as calls, torch.no_grad():
        logits = model(batch[0])
    assert calls == {"aux1": 0, "aux2": 0, "fc": 1}
    assert isinstance(logits, torch.Tensor) and not isinstance(logits, gnet.GoogLeNetOutput)
    with count_forward_calls(model.train(), ["aux1", "aux2", "fc"]) as calls:
        model(batch[0])
    assert calls == {"aux1": 1, "aux2": 1, "fc": 1}


def test_forward_call_counter_removes_its_hooks(batch):
    model = tiny_model()
    with count_forward_calls(model, ["aux1"]) as calls:
        pass
    model(batch[0])
    assert calls == {"aux1": 0}


# -- initialisation -------------------------------------------------------------------------------------------


def test_xavier_init_halves_the_weight_variance_of_hidden_layers_and_keeps_classifiers():
    # The chapter on auxiliary classifiers re-initialises a He-initialised network so, to compare gradient flow.
    torch.manual_seed(0)
    model = gnet.googlenet(num_classes=10, width=0.5)
    he_std = model.inception5b.branch1.conv.weight.std().item()
    assert init_weights_(model, "xavier") is model
    weight = model.inception5b.branch1.conv.weight
    fan_in = weight[0].numel()
    assert weight.std().item() == pytest.approx(math.sqrt(1 / fan_in), rel=0.05)
    assert he_std == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(
        float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )


# -- plots -----------------------------------------------------------------------------------------------------


def test_plots_use_a_log_axis_place_layers_at_paper_depth_and_skip_zero_norms(batch):
    comparison = compare_aux_gradients(tiny_model(), *batch)
    fig, ax = plot_gradient_norms({"main": comparison.without_aux.params, "aux only": comparison.aux_only.params})
    assert ax.get_yscale() == "log"
    main_line, aux_line = ax.get_lines()[:2]
    assert list(main_line.get_xdata()) == list(PAPER_DEPTH.values())
    assert list(aux_line.get_xdata()) == [PAPER_DEPTH[name] for name in BELOW_UPPER_TAP]
    fig2, ax2 = plot_aux_ratio({"init": comparison.ratio()})
    assert list(ax2.get_lines()[0].get_ydata())[-4:] == [1.0] * 4
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(fig2)


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aux_weight": -0.1}, "aux_weight must be a finite number >= 0"),
        ({"aux_weight": float("nan")}, "aux_weight must be a finite number >= 0"),
        ({"aux_weight": True}, "aux_weight must be a finite number >= 0"),
        ({"aux_weight": 0.3, "kind": "weights"}, "kind must be one of"),
        ({"aux_weight": 0.3, "layers": ["conv1", "aux1"]}, r"unknown layer name\(s\) \['aux1'\]"),
        ({"aux_weight": 0.3, "layers": "conv1"}, "layers must be a non-empty sequence"),
        ({"aux_weight": 0.3, "layers": []}, "layers must be a non-empty sequence"),
    ],
)
def test_bad_arguments_raise_value_error_saying_what_was_expected(batch, kwargs, message):
    with pytest.raises(ValueError, match=message):
        layer_gradient_norms(tiny_model(), *batch, **kwargs)


@pytest.mark.parametrize(
    ("images", "targets", "message"),
    [
        (torch.randn(4, 1, 65, 65), torch.tensor([0, 1, 2, 3]), r"N×3×H×W, got \(4, 1, 65, 65\)"),
        ("not a tensor", torch.tensor([0, 1, 2, 3]), "images must be a float tensor"),
        (torch.randn(4, 3, 65, 65), torch.tensor([0, 1, 2]), "1-D tensor of 4 class indices, got \\(3,\\)"),
        (torch.randn(4, 3, 65, 65), torch.tensor([0.0, 1.0, 2.0, 3.0]), "dtype torch.int64"),
        (torch.randn(4, 3, 65, 65), torch.tensor([0, 1, 2, 10]), r"\[0, 10\) for this 10-class model"),
        (torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3]), "at least 65×65"),
    ],
)
def test_bad_batches_raise_value_error(images, targets, message):
    with pytest.raises(ValueError, match=message):
        layer_gradient_norms(tiny_model(), images, targets, aux_weight=0.3)


def test_aux_weight_needs_aux_heads_in_training_mode(batch):
    with pytest.raises(ValueError, match="call model.train\\(\\) first"):
        layer_gradient_norms(tiny_model().eval(), *batch, aux_weight=0.3)
    with pytest.raises(ValueError, match="aux_logits=False"):
        layer_gradient_norms(tiny_model(aux_logits=False), *batch, aux_weight=0.3)
    # The main loss alone is fine in eval mode and without heads.
    assert len(layer_gradient_norms(tiny_model(aux_logits=False).eval(), *batch, aux_weight=0)) == len(MAIN_PATH)


def test_other_bad_input_raises_value_error(batch):
    with pytest.raises(ValueError, match="expected a gnet.GoogLeNet"):
        layer_gradient_norms(nn.Linear(3, 3), *batch, aux_weight=0.3)
    with pytest.raises(ValueError, match="aux_weight must be > 0"):
        compare_aux_gradients(tiny_model(), *batch, aux_weight=0)
    no_heads = tiny_model(aux_logits=False)
    with (
        pytest.raises(ValueError, match=r"no submodule\(s\) named \['aux1'\]"),
        count_forward_calls(no_heads, ["aux1"]),
    ):
        pass
    with pytest.raises(ValueError, match="unknown layer"):
        plot_gradient_norms({"x": {"aux1": 1.0}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_aux_ratio({})


# ---------------------------------------------------------------------------------- logs of a whole training run
def _logged(aux):
    main = dict.fromkeys(gradients.MAIN_PATH, 2.0)
    aux_norms = None if aux is None else {name: (aux if name in ("conv1", "inception4a") else 0.0) for name in main}
    return [{"epoch": 1, "grad_norms": [{"step": 0, "main": main, "aux": aux_norms},
                                        {"step": 21, "main": main, "aux": aux_norms}]}]  # fmt: skip


def test_logged_aux_share_divides_the_aux_norm_by_the_main_norm_at_each_logged_step():
    steps, shares = gradients.logged_aux_share(_logged(1.0), "conv1")
    assert steps == [0, 21] and shares == [0.5, 0.5]
    assert gradients.logged_aux_share(_logged(1.0), "inception4e")[1] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("metrics", "stage", "message"),
    [
        (_logged(1.0), "inception6a", "unknown stage"),
        ([{"epoch": 1}], "conv1", "not started with --grad-norms-every"),
        (_logged(None), "conv1", "trained without the auxiliary heads"),
    ],
)
def test_logged_aux_share_refuses_what_it_cannot_read(metrics, stage, message):
    with pytest.raises(ValueError, match=message):
        gradients.logged_aux_share(metrics, stage)


def test_the_logged_share_plot_draws_one_line_per_run_and_stage():
    runs = {"seed 0": _logged(1.0), "seed 1": _logged(0.5)}
    fig, ax = gradients.plot_logged_aux_share(runs, ["conv1", "inception4a"], steps_per_epoch=21)
    assert len(ax.lines) == 4 and ax.get_xlabel() == "epoch"
    assert ax.lines[0].get_xdata().tolist() == [0.0, 1.0]
