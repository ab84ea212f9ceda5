"""gnet.predict: top classes per image file; a bad file is named and the others are still classified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnet import predict as gpredict


def _images(tiny_data: Path) -> list[str]:
    return [str(p) for p in sorted((tiny_data / "val").rglob("*.JPEG"))[:2]]


def test_each_image_gets_its_top_classes_best_first(tiny_data, tiny_run, capsys):
    images = _images(tiny_data)
    assert gpredict.main([*images, "--checkpoint", str(tiny_run / "last.pt"), "--json", "--top", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["image"] for row in rows] == images
    for row in rows:
        probabilities = [c["probability"] for c in row["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1)
        assert {c["class"] for c in row["top"]} == {"tench", "English springer", "cassette player"}


def test_a_bad_image_is_named_and_the_others_are_still_classified(tiny_data, tiny_run, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    images = _images(tiny_data)
    code = gpredict.main(
        [
            images[0],
            str(broken),
            str(tmp_path / "missing.png"),
            str(tmp_path),
            images[1],
            "--checkpoint",
            str(tiny_run / "last.pt"),
        ]  # fmt: skip
    )
    captured = capsys.readouterr()
    assert code == gpredict.EXIT_ERROR
    assert [line.split(":")[0] for line in captured.out.splitlines()] == images
    note, *errors = captured.err.splitlines()
    assert note.startswith("gnet-predict: note: this network knows only 3 classes (tench, English springer, ")
    assert len(errors) == 3 and str(broken) in errors[0] and "missing.png" in errors[1]
    assert all(line.startswith("gnet-predict: error: cannot decode image") for line in errors[:2])
    assert errors[2] == f"gnet-predict: error: {tmp_path} is a folder, not an image (pass its files)"
    assert "Traceback" not in captured.err


def test_the_registered_weights_are_the_default_and_the_output_says_which_classes_they_know(tiny_data, capsys):
    assert gpredict.main(_images(tiny_data)[:1]) == 0
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    assert line.count("%") == 5 and any(name in line for name in ("tench", "golf ball", "church", "parachute"))
    assert captured.err == (
        "gnet-predict: note: this network knows only 10 classes (tench, English springer, cassette player, chain saw, "
        "church, French horn, garbage truck, gas pump, golf ball, parachute); it names one of them for any image, "
        "also one that shows none of them\n"
    )


def test_the_help_says_the_network_knows_only_imagenettes_ten_classes(capsys):
    assert gpredict.main(["--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "knows only the classes it was trained on (the registered weights: Imagenette's ten" in help_text
    assert "names one of them for every image, also for a photo of something else" in help_text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x.jpg", "--checkpoint", "/nonexistent.pt"], "no checkpoint at /nonexistent.pt"),
        (["x.jpg", "--top", "0"], "--top must be >= 1, got 0"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert gpredict.main(argv) == gpredict.EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ctrl_c_is_one_line_and_exit_130(tiny_data, monkeypatch, capsys):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpredict, "load_weights", interrupted)
    assert gpredict.main([_images(tiny_data)[0]]) == 130
    assert capsys.readouterr().err == "gnet-predict: interrupted\n"
