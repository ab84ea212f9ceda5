"""gnet.train: the CLI, metrics and checkpoints, resume after SIGKILL / SIGINT, NaN handling, determinism.

Runs use the tiny fixture dataset (3 classes, 4 images per split), width 0.25 and 65 px (the smallest input
the paper's auxiliary heads accept), so an epoch takes about a second on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gnet
from gnet import data as gdata
from gnet import train as gtrain
from gnet.book import runs as book_runs
from gnet.checkpoint import read_checkpoint
from gnet.evaluate import confusion_matrix, predict, topk_correct
from gnet.testing import make_fixture_dataset

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = {"epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "images_per_s", "seconds"}
EPOCHS = 3


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixture_dataset(tmp_path_factory.mktemp("fixture"), num_classes=3, per_split=4)


def tiny_args(data_dir: Path, out: Path, *extra: str, epochs: int = EPOCHS) -> list[str]:
    return [
        "--data-dir", str(data_dir), "--out", str(out), "--epochs", str(epochs), "--batch-size", "4",
        "--image-size", "65", "--width", "0.25", "--workers", "0", "--device", "cpu", "--seed", "7",
        "--warmup-epochs", "1", "--no-progress", *extra,
    ]  # fmt: skip


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in gtrain.TIMING_KEYS} for m in metrics]


@pytest.fixture(scope="module")
def reference_run(fixture_root, tmp_path_factory) -> Path:
    """One uninterrupted run that the other tests compare against."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    assert gtrain.main(tiny_args(fixture_root, out)) == 0
    return out


# ---------------------------------------------------------------------------------------------------- CLI run
def test_a_cli_run_writes_one_metrics_line_per_epoch_run_json_and_a_weights_only_checkpoint(reference_run):
    metrics = gtrain.read_metrics(reference_run)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    for record in metrics:
        assert set(record) == METRIC_KEYS
        assert 0 <= record["val_top1"] <= record["val_top5"] <= 1
        assert math.isfinite(record["train_loss"]) and record["images_per_s"] > 0
    assert metrics[-1]["val_top5"] == 1.0  # 3 classes: the top 5 always hold the answer

    info = gtrain.read_run_info(reference_run)
    assert info["config"]["epochs"] == EPOCHS and info["config"]["width"] == 0.25
    assert {"torch", "torchvision", "gnet", "python"} <= set(info["versions"])
    assert info["versions"]["gnet"] == gnet.__version__
    assert info["device"].startswith("cpu") and info["started_at"].endswith("+00:00")
    assert info["class_names"] == ["tench", "English springer", "cassette player"]

    state = torch.load(reference_run / "last.pt", weights_only=True)
    assert state["epoch"] == EPOCHS and state["batch"] == 0
    assert state["train_config"] == info["config"] and state["history"] == metrics
    assert state["model_config"] == info["model_config"]
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    loaded = gnet.load_checkpoint(reference_run / "last.pt")
    assert isinstance(loaded.model, gnet.GoogLeNet) and not loaded.model.training
    assert loaded.model.config.width == 0.25 and loaded.train_config["width"] == 0.25
    assert loaded.classes == ["n01440764", "n02102040", "n02979186"]
    assert loaded.class_names == ["tench", "English springer", "cassette player"]
    assert not list(reference_run.glob(".*.tmp")), "atomic writes left a temp file behind"


def test_the_same_seed_gives_the_same_metrics(fixture_root, reference_run, tmp_path):
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "again")) == 0
    again = gtrain.read_metrics(tmp_path / "again")
    assert without_timing(again) == without_timing(gtrain.read_metrics(reference_run))


def test_another_seed_gives_other_metrics(fixture_root, reference_run, tmp_path):
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "seed8", "--seed", "8", epochs=1)) == 0
    first = gtrain.read_metrics(tmp_path / "seed8")[0]
    assert first["train_loss"] != gtrain.read_metrics(reference_run)[0]["train_loss"]


# ---------------------------------------------------------------------------------------------- gradient logs
def test_gradient_logging_records_every_nth_step_and_leaves_the_weights_bit_identical(
    fixture_root, reference_run, tmp_path
):
    # 12 images and batch 4: 3 steps per epoch, so steps 0, 2, 4, 6, 8 of 9 are logged.
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "logged", "--grad-norms-every", "2")) == 0
    logged, plain = gtrain.read_metrics(tmp_path / "logged"), gtrain.read_metrics(reference_run)
    assert [[entry["step"] for entry in m["grad_norms"]] for m in logged] == [[0, 2], [4], [6, 8]]
    assert without_timing([{k: v for k, v in m.items() if k != "grad_norms"} for m in logged]) == without_timing(plain)
    weights = torch.load(tmp_path / "logged" / "last.pt", weights_only=True)["model"]
    reference = torch.load(reference_run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(weights[name], reference[name]) for name in reference)

    entry = logged[0]["grad_norms"][0]
    assert list(entry["main"]) == list(gnet.table1.PAPER_DEPTH) == list(entry["aux"])
    assert all(value > 0 for value in entry["main"].values())
    # The auxiliary heads read 4a and 4d: their losses send nothing to 4e, 5a, 5b or fc.
    assert {name for name, value in entry["aux"].items() if value == 0} == {
        "inception4e", "inception5a", "inception5b", "fc"
    }  # fmt: skip
    assert entry["aux"]["conv1"] > 0 and math.isfinite(entry["main_loss"])


def test_the_logged_norms_add_up_to_the_gradient_of_the_training_loss(fixture_root):
    config = gtrain.TrainConfig(data_dir=str(fixture_root), image_size=65, width=0.25, batch_size=4, workers=0,
                                device="cpu", grad_norms_every=1, label_smoothing=0.1)  # fmt: skip
    run = gtrain.setup(dataclasses.replace(config, out=str(Path(fixture_root).parent / "sum-check")))
    images, targets = next(iter(torch.utils.data.DataLoader(run.train_ds, batch_size=4)))
    output = run.model(images)
    entry = gtrain._gradient_norms(run, output, targets, 0)
    loss = gnet.googlenet_loss(output, targets, aux_weight=0.3, label_smoothing=0.1)
    loss.backward()
    for stage in ("conv1", "inception4e"):  # below both taps, and above them (aux adds nothing there)
        total = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in run.model.get_submodule(stage).parameters()))
        main, aux = entry["main"][stage], entry["aux"][stage]
        assert abs(main - aux) - 1e-9 <= total <= main + aux + 1e-9  # the two parts add up to the step
    above = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in run.model.inception4e.parameters()))
    assert entry["main"]["inception4e"] == pytest.approx(above, rel=1e-6)
    assert entry["main_loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(output.logits.detach(), targets, label_smoothing=0.1)), rel=1e-6
    )


def test_a_run_without_aux_heads_logs_no_aux_norms(fixture_root, tmp_path):
    args = tiny_args(fixture_root, tmp_path / "no-aux", "--no-aux", "--grad-norms-every", "3", epochs=1)
    assert gtrain.main(args) == 0
    (entry,) = gtrain.read_metrics(tmp_path / "no-aux")[0]["grad_norms"]
    assert entry["aux"] is None and entry["step"] == 0


# ---------------------------------------------------------------------------------------------------- resume
def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gnet.train", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_epochs(process: subprocess.Popen, metrics: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"training exited early ({process.returncode}): {process.stderr.read()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no {count} epoch(s) in {metrics} after {timeout} s")


@pytest.mark.slow
def test_a_run_killed_with_sigkill_and_resumed_ends_with_the_uninterrupted_metrics(
    fixture_root, reference_run, tmp_path
):
    out = tmp_path / "killed"
    process = _spawn(tiny_args(fixture_root, out))
    _wait_for_epochs(process, out / "metrics.jsonl", 1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    state = torch.load(out / "last.pt", weights_only=True)
    assert 1 <= state["epoch"] < EPOCHS and state["batch"] == 0

    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 0
    resumed = gtrain.read_metrics(out)
    assert without_timing(resumed) == without_timing(gtrain.read_metrics(reference_run))
    assert len(gtrain.read_run_info(out)["resumed_at"]) == 1


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_mid_run_and_resume_matches_the_uninterrupted_run(
    fixture_root, reference_run, tmp_path
):
    out = tmp_path / "interrupted"
    process = _spawn(tiny_args(fixture_root, out))
    _wait_for_epochs(process, out / "metrics.jsonl", 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == gtrain.EXIT_INTERRUPTED, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    state = torch.load(out / "last.pt", weights_only=True)
    # Mid-epoch as a rule; at the end of epoch 1 if the signal lands before epoch 2's first step (both resume exactly).
    assert (state["epoch"], state["batch"]) >= (1, 0) and state["epoch"] < EPOCHS

    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 0
    resumed = gtrain.read_metrics(out)
    assert without_timing(resumed) == without_timing(gtrain.read_metrics(reference_run))


def test_resume_of_a_finished_run_changes_nothing(fixture_root, reference_run, tmp_path, capsys):
    out = tmp_path / "finished"
    shutil.copytree(reference_run, out)
    before = (out / "metrics.jsonl").read_text()
    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 0
    assert "done already" in capsys.readouterr().out
    assert (out / "metrics.jsonl").read_text() == before


def test_a_finished_run_extended_with_more_epochs_keeps_its_history_and_follows_the_longer_plan(
    fixture_root, reference_run, tmp_path, capsys
):
    out = tmp_path / "extended"
    shutil.copytree(reference_run, out)
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 2)) == 0
    metrics, reference = gtrain.read_metrics(out), gtrain.read_metrics(reference_run)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5]
    assert metrics[:EPOCHS] == reference

    # 12 images at batch 4 is 3 steps per epoch; the new plan is a 5-epoch cosine with 1 warm-up epoch.
    def longer(step: int) -> float:
        factor = gtrain.lr_factor("cosine", step, steps_per_epoch=3, total_steps=15, warmup_steps=3)
        return gtrain.default_lr(4) * factor  # no --lr: the default at batch 4

    assert [m["lr"] for m in metrics[EPOCHS:]] == pytest.approx([longer(11), longer(14)])
    assert metrics[EPOCHS]["lr"] > reference[-1]["lr"]  # a warm restart: the 3-epoch plan ended near zero
    assert "--epochs 3 -> 5" in capsys.readouterr().out
    info = gtrain.read_run_info(out)
    assert info["config"]["epochs"] == 5 and info["resumed_at"][-1]["epochs"] == [3, 5]
    assert torch.load(out / "last.pt", weights_only=True)["train_config"]["epochs"] == 5
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=5)) == 0  # the new plan is the run's now
    assert "all 5 epochs are done already" in capsys.readouterr().out


def test_resuming_with_fewer_epochs_than_are_done_is_refused(fixture_root, reference_run, tmp_path, capsys):
    out = tmp_path / "shrunk"
    shutil.copytree(reference_run, out)
    before = (out / "metrics.jsonl").read_text()
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=2)) == 2
    err = capsys.readouterr().err
    assert "has done 3 epochs, more than --epochs 2" in err and "Traceback" not in err
    assert (out / "metrics.jsonl").read_text() == before


def test_resume_with_other_settings_is_refused_naming_them(fixture_root, reference_run, tmp_path, capsys):
    out = tmp_path / "other"
    shutil.copytree(reference_run, out)
    code = gtrain.main(tiny_args(fixture_root, out, "--resume", "--lr", "0.1", "--batch-norm"))
    err = capsys.readouterr().err
    assert code == 2
    assert "lr: checkpoint 0.00125, requested 0.1" in err and "batch_norm: checkpoint False, requested True" in err
    assert "Traceback" not in err


def test_a_corrupt_checkpoint_is_a_clear_error_naming_the_file(fixture_root, reference_run, tmp_path, capsys):
    out = tmp_path / "corrupt"
    shutil.copytree(reference_run, out)
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 3])
    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {out / 'last.pt'} is corrupt" in err and "Traceback" not in err
    torch.save({"model": {}}, out / "other.pt")
    with pytest.raises(gtrain.CheckpointError, match="not a gnet training checkpoint"):
        read_checkpoint(out / "other.pt", training=True)


def test_starting_over_an_existing_run_or_resuming_nothing_is_refused(fixture_root, reference_run, tmp_path, capsys):
    assert gtrain.main(tiny_args(fixture_root, reference_run)) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "empty", "--resume")) == 2
    assert "no checkpoint" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- NaN
def test_a_nan_loss_stops_the_run_and_keeps_the_previous_epochs_checkpoint(fixture_root, tmp_path):
    out = tmp_path / "nan"
    args = gtrain.build_parser().parse_args(tiny_args(fixture_root, out))
    config = gtrain.config_from_args(args)

    def poison(epoch: int, step: int, loss: torch.Tensor) -> torch.Tensor:
        return loss * float("nan") if (epoch, step) == (1, 1) else loss

    with pytest.raises(gtrain.DivergedError, match=r"the loss is nan at epoch 2, step 2") as caught:
        gtrain.train(config, _loss_hook=poison)
    assert f"{out / 'last.pt'} (after epoch 1) was kept" in str(caught.value)
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert len(gtrain.read_metrics(out)) == 1


def test_an_absurd_learning_rate_exits_with_code_3_and_no_traceback(fixture_root, tmp_path, capsys):
    code = gtrain.main(tiny_args(fixture_root, tmp_path / "absurd", "--lr", "1e4", "--warmup-epochs", "0", epochs=1))
    err = capsys.readouterr().err
    assert code == gtrain.EXIT_DIVERGED
    assert "the loss is" in err and "no checkpoint had been saved yet" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------- data errors
def test_missing_data_prints_the_download_command_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(gdata.DATA_ENV_VAR, raising=False)
    code = gtrain.main(["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Imagenette (160px) not found" in err and "download=True" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_corrupt_image_stops_training_with_its_path_and_exit_code_2(fixture_root, tmp_path, capsys, workers):
    data = tmp_path / "data"
    shutil.copytree(fixture_root, data)
    broken = sorted((data / "train" / "n02102040").glob("*.JPEG"))[2]
    broken.write_bytes(broken.read_bytes()[:200])
    code = gtrain.main(tiny_args(data, tmp_path / "run", "--workers", workers, epochs=1))
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot decode image {broken}" in err and "Traceback" not in err


def test_awkward_greyscale_palette_and_cmyk_files_train_fine(fixture_root):
    train_ds, _ = gdata.build_datasets(fixture_root, 65)
    batch = torch.stack([train_ds[i][0] for i in (0, 4, 8)])  # the L, P and CMYK files
    assert batch.shape == (3, 3, 65, 65) and torch.isfinite(batch).all()


# ---------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "epochs must be an int >= 1, got 0"),
        (["--batch-size", "-2"], "batch_size must be an int >= 1, got -2"),
        (["--lr", "0"], "lr must be a finite number > 0.0, got 0.0"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--width", "0"], "width must be a finite number > 0.0"),
        (["--momentum", "1.5"], "momentum must be a finite number >= 0.0 and <= 1.0"),
        (["--subset-per-class", "0"], "subset_per_class must be an int >= 1 or None"),
        (["--warmup-epochs", "-1"], "warmup_epochs must be a finite number >= 0.0, got -1.0"),
        (["--schedule", "linear"], "invalid choice: 'linear'"),
        (["--image-size", "40"], "image_size 40 is too small: this GoogLeNet needs at least 65 px"),
        (["--sync-batch-norm"], "--sync-batch-norm needs --batch-norm"),
        (["--dropout", "1"], "dropout must be a finite number >= 0.0 and <= 0.99"),
        (["--dist-timeout", "0"], "dist_timeout must be a finite number > 0.0"),
    ],
)
def test_bad_settings_are_refused_with_a_message_and_exit_code_2(fixture_root, tmp_path, capsys, flags, message):
    code = gtrain.main(tiny_args(fixture_root, tmp_path / "run", *flags))
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_config_is_frozen_and_validates_in_python_too():
    config = gtrain.TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, mps; got 'tpu'"):
        gtrain.TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got True"):
        gtrain.TrainConfig(epochs=True)


def test_without_lr_the_learning_rate_scales_linearly_with_the_batch_and_an_explicit_one_wins():
    # 0.02 at batch 64 (Caffe's 0.01 at 32): a first run with --batch-size 8 must not take batch 128's 0.04.
    assert [gtrain.TrainConfig(batch_size=b).lr for b in (8, 64, 128, 256)] == [0.0025, 0.02, 0.04, 0.08]
    assert gtrain.TrainConfig(batch_size=8, lr=0.04).lr == 0.04
    args = gtrain.build_parser().parse_args(["--batch-size", "8"])
    assert gtrain.config_from_args(args).lr == gtrain.default_lr(8) == 0.0025


def test_the_help_names_every_exit_code(capsys):
    assert gtrain.main(["--help"]) == 0
    epilog = " ".join(capsys.readouterr().out.split("exit codes:")[1].split())
    for code in ("0 done", "2 bad settings", "3 the loss", "4 another process of a torchrun job", "130 Ctrl-C",
                 "143 SIGTERM", "129 SIGHUP"):  # fmt: skip
        assert code in epilog


def test_every_config_field_is_a_cli_flag_with_its_default():
    args = gtrain.build_parser().parse_args([])
    assert gtrain.config_from_args(args) == gtrain.TrainConfig()
    assert gtrain.main(["--help"]) == 0


# ---------------------------------------------------------------------------------------------------- pieces
def test_the_paper_schedule_multiplies_by_0_96_every_8_epochs():
    factors = [
        gtrain.lr_factor("paper", epoch * 10, steps_per_epoch=10, total_steps=1000, warmup_steps=5)
        for epoch in (0, 7, 8, 15, 16, 24)
    ]
    assert factors == [1.0, 1.0, 0.96, 0.96, 0.96**2, 0.96**3]


def test_cosine_warms_up_linearly_then_decays_to_zero():
    def f(step: int) -> float:
        return gtrain.lr_factor("cosine", step, steps_per_epoch=10, total_steps=100, warmup_steps=10)

    assert [f(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)


def test_onecycle_rises_from_a_25th_to_the_peak_at_30_percent_then_falls():
    def f(step: int) -> float:
        return gtrain.lr_factor("onecycle", step, steps_per_epoch=10, total_steps=100, warmup_steps=0)

    assert f(0) == pytest.approx(1 / 25) and f(30) == pytest.approx(1.0)
    assert f(99) < 0.001 and f(100) == pytest.approx(1 / 25_000)


def test_topk_correct_counts_exactly_and_caps_k_at_the_class_count():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5]])
    assert topk_correct(logits, torch.tensor([1, 2, 0]), (1, 2, 5)) == [1, 2, 3]


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    torch.save({"rng": gtrain._rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    gtrain._set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


# ---------------------------------------------------------------------------------------------------- reporting
def test_reporting_plots_have_labelled_axes_and_the_confusion_matrix_counts(reference_run, fixture_root):
    import matplotlib

    matplotlib.use("Agg")
    fig, (loss_ax, acc_ax, lr_ax) = book_runs.plot_curves(gtrain.read_metrics(reference_run), lr=True)
    assert loss_ax.get_xlabel() == "epoch" and "loss" in loss_ax.get_ylabel()
    assert acc_ax.get_ylabel() == "accuracy (%)" and "learning rate" in lr_ax.get_ylabel()
    assert list(lr_ax.lines[0].get_ydata()) == [m["lr"] for m in gtrain.read_metrics(reference_run)]
    matrix = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    _, ax = book_runs.plot_confusion_matrix(matrix, ["a", "b", "c"])
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"

    loaded = gnet.load_checkpoint(reference_run / "last.pt")
    _, val_ds = gdata.build_datasets(fixture_root, loaded.train_config["image_size"])
    result = predict(loaded.model, val_ds, batch_size=5)
    assert result.targets.tolist() == val_ds.targets
    assert np.allclose(result.probabilities.sum(axis=1), 1, atol=1e-5)
    val_top1 = gtrain.read_metrics(reference_run)[-1]["val_top1"]
    assert (result.predictions == result.targets).mean() == pytest.approx(val_top1)
    book_runs.show_predictions(val_ds, result, ["tench", "springer", "cassette"])
    _, ax = book_runs.plot_per_class({"a": {"top1": 0.5, "images": 4}, "b": {"top1": 1.0, "images": 2}})
    assert [bar.get_width() for bar in ax.patches] == [50.0, 100.0]
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------------------------------- --cache
@pytest.fixture(scope="module")
def cached_run(fixture_root, tmp_path_factory) -> Path:
    """An uninterrupted run with the decoded cache and augmentation on the training device."""
    out = tmp_path_factory.mktemp("runs") / "cached"
    assert gtrain.main(tiny_args(fixture_root, out, "--cache", "--cache-dir", str(out.parent / "cache"))) == 0
    return out


def test_a_cached_run_trains_records_its_cache_and_draws_other_crops_than_the_jpeg_path(cached_run, reference_run):
    info = gtrain.read_run_info(cached_run)
    assert info["config"]["cache"] is True and len(info["decoded_cache"]) == 2
    assert all(Path(path, "manifest.json").exists() for path in info["decoded_cache"])
    metrics = gtrain.read_metrics(cached_run)
    assert [m["epoch"] for m in metrics] == [1, 2, 3] and all(math.isfinite(m["val_loss"]) for m in metrics)
    # The same seed and recipe, other crops (drawn on the device, not by the workers): other metrics.
    assert without_timing(metrics) != without_timing(gtrain.read_metrics(reference_run))


@pytest.mark.slow
def test_a_cached_run_interrupted_mid_epoch_resumes_to_the_uninterrupted_metrics(fixture_root, cached_run, tmp_path):
    out = tmp_path / "cached-interrupted"
    cache = ["--cache", "--cache-dir", str(tmp_path / "other-cache")]  # where the cache lives may change
    process = _spawn(tiny_args(fixture_root, out, *cache))
    _wait_for_epochs(process, out / "metrics.jsonl", 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == gtrain.EXIT_INTERRUPTED, stderr
    moved = ["--cache", "--cache-dir", str(tmp_path / "moved-cache")]
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", *moved)) == 0
    assert without_timing(gtrain.read_metrics(out)) == without_timing(gtrain.read_metrics(cached_run))


def test_resume_may_not_switch_the_cache_on_or_off(fixture_root, cached_run, tmp_path, capsys):
    out = tmp_path / "switch"
    shutil.copytree(cached_run, out)
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 1)) == 2
    assert "cache: checkpoint True, requested False" in capsys.readouterr().err


def test_a_corrupt_cache_under_a_run_is_rebuilt_and_said_so(fixture_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = tiny_args(fixture_root, tmp_path / "a", "--cache", "--cache-dir", str(cache), epochs=1)
    assert gtrain.main(args) == 0
    images = next(cache.glob("train-*")) / "images.u8"
    images.write_bytes(images.read_bytes()[:-1])
    capsys.readouterr()
    assert gtrain.main([*args[:3], str(tmp_path / "b"), *args[4:]]) == 0
    assert "is truncated" in capsys.readouterr().out
