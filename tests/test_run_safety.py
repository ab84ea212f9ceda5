"""Nothing lost, nothing silent: the run folder is locked, leftovers are moved aside, every stop is clean.

Each case is a way a real run goes wrong (two runs into one folder, a full disk, a scheduler's SIGTERM, a dataset
with an odd folder); each must end with one clear line and the documented exit code, and lose nothing.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnet import data as gdata
from gnet import train as gtrain
from gnet._process import RunLock
from gnet.testing import make_fixture_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixture_dataset(tmp_path_factory.mktemp("fixture"), num_classes=3, per_split=4)


def tiny_args(data_dir: Path, out: Path, *extra: str, epochs: int = 2) -> list[str]:
    return [
        "--data-dir", str(data_dir), "--out", str(out), "--epochs", str(epochs), "--batch-size", "4",
        "--image-size", "65", "--width", "0.25", "--workers", "0", "--device", "cpu", "--seed", "7",
        "--warmup-epochs", "1", "--no-progress", *extra,
    ]  # fmt: skip


def _strict_json_lines(path: Path) -> list[dict]:
    def refuse(constant: str):
        raise ValueError(f"{path} holds {constant}, which strict JSON parsers reject")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------------------------------- the lock
def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"
    with RunLock(out):
        assert gtrain.main(tiny_args(fixture_root, out)) == gtrain.EXIT_ERROR
        assert f"{out} is in use by pid {os.getpid()}" in _error_line(capsys)
        assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == gtrain.EXIT_ERROR
        assert "is in use by pid" in _error_line(capsys)
    assert not (out / "metrics.jsonl").exists(), "a refused run wrote into the folder"
    assert gtrain.main(tiny_args(fixture_root, out, epochs=1)) == 0  # released: the folder works again


@pytest.mark.slow
def test_a_run_in_another_process_holds_the_lock_until_it_ends(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    first = subprocess.Popen([sys.executable, "-m", "gnet.train", *tiny_args(fixture_root, out, epochs=50)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.05)
        assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=50)) == gtrain.EXIT_ERROR
        assert f"is in use by pid {first.pid}" in _error_line(capsys)
    finally:
        first.kill()
        first.wait()
    # SIGKILL ends the holder; the kernel drops its lock with the process, so nothing stale is left behind.
    with RunLock(out):
        pass


# ---------------------------------------------------------------------------------------------------- leftovers
def test_a_fresh_run_moves_aside_what_a_run_that_never_finished_an_epoch_left(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"
    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))
    with pytest.raises(gtrain.DivergedError, match="no checkpoint had been saved yet"):
        gtrain.train(config, _loss_hook=lambda epoch, step, loss: loss * float("nan"))
    assert (out / "run.json").exists() and not (out / "last.pt").exists()
    assert gtrain.main(tiny_args(fixture_root, out)) == 0
    aside = list(out.glob("abandoned-*"))
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == ["metrics.jsonl", "run.json"]
    assert f"moved to {aside[0]}" in capsys.readouterr().out
    assert len(_strict_json_lines(out / "metrics.jsonl")) == 2


# ---------------------------------------------------------------------------------------------------- numbers
def test_a_nan_validation_loss_stops_with_code_3_and_keeps_the_previous_checkpoint(
    fixture_root, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    calls = {"n": 0}
    real_evaluate = gtrain.evaluate

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        result = real_evaluate(*args, **kwargs)
        return result if calls["n"] == 1 else {**result, "loss": float("nan")}

    monkeypatch.setattr(gtrain, "evaluate", evaluate)
    assert gtrain.main(tiny_args(fixture_root, out)) == gtrain.EXIT_DIVERGED
    assert "the validation loss is nan after epoch 2" in _error_line(capsys)
    assert [m["epoch"] for m in _strict_json_lines(out / "metrics.jsonl")] == [1]
    assert gtrain.read_checkpoint(out / "last.pt", training=True)["epoch"] == 1


# ---------------------------------------------------------------------------------------------------- bad input
def _odd_datasets(root: Path, fixture_root: Path) -> dict[str, Path]:
    empty_class = make_fixture_dataset(root / "empty", num_classes=3, per_split=2)
    (empty_class / "train" / "n09999999").mkdir()
    one_class = make_fixture_dataset(root / "one", num_classes=1, per_split=2)
    return {"empty": empty_class, "one": one_class, "fixture": fixture_root}


@pytest.mark.parametrize(
    ("data", "flags", "message"),
    [
        ("empty", [], "n09999999 has no images"),
        ("one", [], "has 1 class: a classifier needs at least 2"),
        ("fixture", ["--batch-size", "13"], "batch_size 13 is larger than the training set (12 images)"),
        ("fixture", ["--batch-size", "1", "--batch-norm"], "--batch-norm needs --batch-size >= 2"),
    ],
)
def test_odd_data_and_settings_are_refused_before_training(fixture_root, tmp_path, capsys, data, flags, message):
    root = _odd_datasets(tmp_path, fixture_root)[data]
    assert gtrain.main(tiny_args(root, tmp_path / "run", *flags)) == gtrain.EXIT_ERROR
    assert message in _error_line(capsys)


def test_an_explicit_data_dir_never_falls_back_to_the_environment(fixture_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(gdata.DATA_ENV_VAR, str(fixture_root))  # a valid dataset that must NOT be used
    no_val = tmp_path / "no-val"
    (no_val / "train" / "n01440764").mkdir(parents=True)
    assert gtrain.main(tiny_args(no_val, tmp_path / "run")) == gtrain.EXIT_ERROR
    err = _error_line(capsys)
    assert f"{no_val} has train/ but no val/: both splits are needed" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.write_text("not a folder"), "is a file, not a folder holding train/ and val/"),
        (lambda root: (root / "val").mkdir(parents=True), "has val/ but no train/"),
        (lambda root: root.mkdir(), "Imagenette (160px) not found: looked for train/ and val/ in"),
        (lambda root: None, "Imagenette (160px) not found: looked for train/ and val/ in"),
    ],
    ids=["a-file", "val-only", "empty-folder", "missing"],
)
def test_a_data_dir_that_is_not_a_dataset_says_what_is_wrong_with_it(tmp_path, capsys, make, message):
    root = tmp_path / "data"
    make(root)
    assert gtrain.main(tiny_args(root, tmp_path / "run")) == gtrain.EXIT_ERROR
    assert message in _error_line(capsys)


def test_ctrl_c_before_training_begins_exits_130_in_one_line(fixture_root, tmp_path, capsys, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gtrain, "setup", interrupted)  # Ctrl-C while the dataset is scanned
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run")) == gtrain.EXIT_INTERRUPTED
    assert "aborted; nothing had been saved" in _error_line(capsys)


def test_an_out_that_is_a_file_is_refused(fixture_root, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "notes.txt")) == gtrain.EXIT_ERROR
    assert "is a file, not a run folder" in _error_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_full_disk_is_one_line_and_exit_code_2(fixture_root, tmp_path, capsys, monkeypatch):
    def full(path, state):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(gtrain, "save_checkpoint", full)
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run", epochs=1)) == gtrain.EXIT_ERROR
    err = _error_line(capsys)
    assert "cannot write the run: No space left on device" in err and "last.pt" in err


def test_written_files_follow_the_umask(fixture_root, tmp_path):
    old = os.umask(0o022)
    try:
        assert gtrain.main(tiny_args(fixture_root, tmp_path / "run", epochs=1)) == 0
    finally:
        os.umask(old)
    for name in ("last.pt", "metrics.jsonl", "run.json"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_on_off_flags_say_what_they_do_without_a_confusing_default():
    text = " ".join(gtrain.build_parser().format_help().split())  # argparse wraps lines
    assert "train without the two auxiliary classifiers" in text
    assert "(default: True)" not in text and "(default: False)" not in text
    assert "143 SIGTERM" in text


# ---------------------------------------------------------------------------------------------------- signals
@pytest.mark.slow
def test_sigterm_to_the_process_group_with_workers_saves_and_exits_143_then_resume_completes(fixture_root, tmp_path):
    out = tmp_path / "run"
    args = tiny_args(fixture_root, out, "--workers", "2", epochs=8)
    process = subprocess.Popen(
        [sys.executable, "-m", "gnet.train", *args],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a batch scheduler starts a job
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline, "training did not reach an epoch"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == gtrain.EXIT_TERMINATED, stderr
    assert "Traceback" not in stderr and "killed by signal" not in stderr and "saved" in stderr
    assert gtrain.read_checkpoint(out / "last.pt", training=True)["epoch"] < 8
    assert gtrain.main([*args, "--resume"]) == 0
    assert [m["epoch"] for m in _strict_json_lines(out / "metrics.jsonl")] == list(range(1, 9))
