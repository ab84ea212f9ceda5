"""gnet.evaluate: the evaluation command on a real (tiny) trained run, and its errors.

The run trains 2 epochs on the fixture dataset (3 classes, 4 images per split): meaningless accuracy, but a
real checkpoint, so that what the command prints can be compared exactly with what training recorded.
"""

from __future__ import annotations

import json

import pytest

from gnet import data as gdata
from gnet import evaluate as gevaluate
from gnet import train as gtrain
from gnet.checkpoint import export_weights
from gnet.testing import make_fixture_dataset


def _json_report(capsys, *argv: str) -> dict:
    assert gevaluate.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_command_reproduces_the_recorded_top1_and_counts_every_image(tiny_run, tiny_data, capsys):
    report = _json_report(capsys, str(tiny_run / "last.pt"), "--data-dir", str(tiny_data))
    recorded = gtrain.read_metrics(tiny_run)[-1]
    assert report["images"] == 12 and report["image_size"] == 65
    assert report["top1"] == pytest.approx(recorded["val_top1"], abs=1e-12)
    assert report["loss"] == pytest.approx(recorded["val_loss"], rel=1e-4)
    assert set(report["per_class"]) == {"tench", "English springer", "cassette player"}
    assert sum(row["images"] for row in report["per_class"].values()) == 12
    mean_per_class = sum(row["top1"] * row["images"] for row in report["per_class"].values()) / 12
    assert mean_per_class == pytest.approx(report["top1"])


def test_exported_weights_evaluate_like_the_checkpoint_they_came_from(tiny_run, tiny_data, tmp_path, capsys):
    export_weights(tiny_run / "last.pt", tmp_path / "weights.pt")
    full = _json_report(capsys, str(tiny_run / "last.pt"), "--data-dir", str(tiny_data))
    half = _json_report(capsys, str(tmp_path / "weights.pt"), "--data-dir", str(tiny_data))
    assert half["top1"] == full["top1"] and half["loss"] == pytest.approx(full["loss"], rel=1e-2)


def test_the_table_names_the_accuracy_and_every_class(tiny_run, tiny_data, capsys):
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "12 images" in out and "top-1" in out and "top-5" in out
    assert all(name in out for name in ("tench", "English springer", "cassette player"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/nonexistent/last.pt"], "no checkpoint at /nonexistent/last.pt"),
        (["{run}/last.pt", "--data-dir", "/nonexistent"], "Imagenette (160px) not found"),
        (["{run}/last.pt", "--data-dir", "{data}", "--image-size", "0"], "--image-size must be >= 1, got 0"),
        (["{run}/last.pt", "--data-dir", "{data}", "--image-size", "40"], "at least 65×65 pixels"),
        (["{run}/metrics.jsonl"], "is corrupt or not a plain torch file"),
        (["NO_SUCH_WEIGHTS"], "no checkpoint at NO_SUCH_WEIGHTS"),
    ],
)
def test_bad_input_is_one_clear_error_and_exit_code_2(tiny_run, tiny_data, capsys, monkeypatch, argv, message):
    monkeypatch.delenv(gdata.DATA_ENV_VAR, raising=False)
    argv = [a.format(run=tiny_run, data=tiny_data) for a in argv]
    assert gevaluate.main(argv) == gevaluate.EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and err.startswith("gnet-evaluate: error:") and "Traceback" not in err


def test_other_class_folders_are_refused(tiny_run, tmp_path, capsys):
    other = make_fixture_dataset(tmp_path / "other", num_classes=2, per_split=2)
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(other)]) == 2
    assert "has classes" in capsys.readouterr().err
