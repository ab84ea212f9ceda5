"""Nothing lost, round three: hostile run folders, exact resumes after every kind of stop, bounded memory on any
input, one line for every damaged file (issue 26).

Each section is one class of defect; its cases are examples of the class, not the whole of it. Runs use the tiny
fixture dataset (3 classes, 4 images per split), width 0.25 and 65 px, on the CPU with no worker processes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gnet import _process as gprocess
from gnet import cache as gcache
from gnet import data as gdata
from gnet import evaluate as gevaluate
from gnet import predict as gpredict
from gnet import train as gtrain
from gnet._process import RunLock
from gnet.augment import DecodedLoader
from gnet.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from gnet.testing import make_fixture_dataset

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def reference_run(fixture_root, tmp_path_factory) -> Path:
    """One uninterrupted run that the resumed ones are compared with."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert gtrain.main(tiny_args(fixture_root, out)) == 0
    return out


@pytest.fixture(autouse=True)
def terminal_left(monkeypatch) -> list[bool]:
    """SIGHUP sends the terminal's output to /dev/null; in-process tests record that instead (``pytest -s`` in a
    terminal would otherwise go silent for the rest of the session)."""
    calls: list[bool] = []
    monkeypatch.setattr(gprocess, "_leave_the_terminal", lambda: calls.append(True))
    return calls


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in gtrain.TIMING_KEYS} for m in metrics]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("gnet-")]
    assert len(lines) == 1, err
    return lines[0]


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    (to / ".lock").unlink(missing_ok=True)
    return to


# ---------------------------------------------------------------------------------------------------- 1. links
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_is_untouched(fixture_root, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    assert gtrain.main(tiny_args(fixture_root, out, epochs=1)) == gtrain.EXIT_ERROR
    assert "is a symbolic link" in one_line_error(capsys)
    assert victim.read_text() == "IMPORTANT\n"


@pytest.mark.parametrize("kind", ["hard-link", "fifo"])
def test_a_lock_file_that_is_another_files_second_name_or_a_fifo_is_refused(fixture_root, tmp_path, capsys, kind):
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT\n")
    out = tmp_path / "run"
    out.mkdir()
    if kind == "hard-link":
        os.link(victim, out / ".lock")
    else:
        os.mkfifo(out / ".lock")
    assert gtrain.main(tiny_args(fixture_root, out, epochs=1)) == gtrain.EXIT_ERROR
    assert "gnet never writes through it" in one_line_error(capsys)
    assert victim.read_text() == "IMPORTANT\n"


def test_links_placed_in_a_run_folder_are_replaced_never_written_through(fixture_root, reference_run, tmp_path):
    out = copy_run(reference_run, tmp_path / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for name in ("metrics.jsonl", "last.pt"):  # last.pt: a link to a real checkpoint, which --resume reads
        victims[name] = outside / name
        shutil.copy(out / name, victims[name])
        (out / name).unlink()
        (out / name).symlink_to(victims[name])
    before = {name: path.read_bytes() for name, path in victims.items()}
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 1)) == 0
    assert {name: path.read_bytes() for name, path in victims.items()} == before
    for name in victims:
        assert not (out / name).is_symlink()
    assert [m["epoch"] for m in gtrain.read_metrics(out)] == [1, 2, 3, 4]


def test_the_cache_never_writes_through_links_placed_in_its_folder(fixture_root, tmp_path):
    root = tmp_path / "cache"
    split = gcache.open_split(fixture_root / "val", 40, cache_root=root, log=lambda _: None)
    folder = split.path
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"IMPORTANT")
    (folder / gcache.MANIFEST_NAME).unlink()  # a rebuild is due
    (folder / (gcache.IMAGES_NAME + ".partial")).symlink_to(victim)
    gcache.open_split(fixture_root / "val", 40, cache_root=root, log=lambda _: None)
    assert victim.read_bytes() == b"IMPORTANT"
    (folder / gcache.LOCK_NAME).unlink()
    (folder / gcache.LOCK_NAME).symlink_to(victim)
    with pytest.raises(gcache.CacheError, match="is a symbolic link"):
        gcache.open_split(fixture_root / "val", 40, cache_root=root, log=lambda _: None)
    assert victim.read_bytes() == b"IMPORTANT"


# ---------------------------------------------------------------------------------------------------- 2. the lock
@pytest.mark.parametrize("how", ["deleted", "deleted-and-taken", "replaced"])
def test_a_run_whose_lock_file_is_removed_stops_without_writing(fixture_root, tmp_path, capsys, how):
    out = tmp_path / "run"
    taken = []

    def lose_the_lock(epoch, step, loss):
        if (epoch, step) == (1, 0):
            (out / ".lock").unlink()
            if how == "deleted-and-taken":  # a second run gets in and holds the new lock
                taken.append(RunLock(out).__enter__())
            elif how == "replaced":
                (out / ".lock").write_text("pid 1\n")
        return loss

    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))
    with pytest.raises(gtrain.RunFolderError, match="was removed or replaced while this run held it"):
        gtrain.train(config, _loss_hook=lose_the_lock)
    assert [m["epoch"] for m in gtrain.read_metrics(out)] == [1]  # epoch 2 was not written
    assert read_checkpoint(out / "last.pt", training=True)["epoch"] == 1
    for lock in taken:
        lock.__exit__(None, None, None)


def test_a_lost_lock_is_one_line_and_exit_code_2(fixture_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_finish = gtrain._finish_epoch

    def finish(run, val, started):
        (out / ".lock").unlink()
        return real_finish(run, val, started)

    monkeypatch.setattr(gtrain, "_finish_epoch", finish)
    assert gtrain.main(tiny_args(fixture_root, out, epochs=1)) == gtrain.EXIT_ERROR
    assert "this run stopped without writing more" in one_line_error(capsys)
    assert not (out / "last.pt").exists()


# ---------------------------------------------------------------------------------------------------- 3. stops
def _stop_during_validation(monkeypatch, signum: int) -> None:
    """Send ``signum`` to this process after the first validation batch of the first epoch."""
    real = gtrain._evaluating
    calls = {"n": 0}

    def evaluating(run):
        calls["n"] += 1
        batches = real(run)

        def stopping():
            for index, batch in enumerate(batches):
                if calls["n"] == 1 and index == 1:
                    os.kill(os.getpid(), signum)
                yield batch

        return stopping()

    monkeypatch.setattr(gtrain, "_evaluating", evaluating)


@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGINT,
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
    ],
)
def test_a_stop_during_validation_then_resume_ends_with_the_uninterrupted_metrics(
    fixture_root, reference_run, tmp_path, monkeypatch, capsys, signum
):
    # Opening the validation loader draws from torch's generator: the checkpoint must hold the state from before.
    out = tmp_path / "run"
    _stop_during_validation(monkeypatch, signum)
    assert gtrain.main(tiny_args(fixture_root, out)) == 128 + signum
    assert "interrupted during evaluation of epoch 1" in one_line_error(capsys)
    monkeypatch.undo()
    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 0
    assert without_timing(gtrain.read_metrics(out)) == without_timing(gtrain.read_metrics(reference_run))


# ---------------------------------------------------------------------------------------------------- 5. changes
def _trained_one_epoch(fixture_root: Path, reference_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))

    def stop_after_epoch_1(epoch, step, loss):
        if (epoch, step) == (1, 0):
            raise KeyboardInterrupt
        return loss

    with pytest.raises(KeyboardInterrupt):
        gtrain.train(config, _loss_hook=stop_after_epoch_1)
    assert read_checkpoint(out / "last.pt", training=True)["epoch"] == 1
    return out


def test_a_resume_from_the_same_images_in_another_folder_continues_exactly_and_records_the_move(
    fixture_root, reference_run, tmp_path
):
    out = _trained_one_epoch(fixture_root, reference_run, tmp_path)
    moved = shutil.copytree(fixture_root, tmp_path / "moved")  # new mtimes, same names and bytes
    assert gtrain.main(tiny_args(moved, out, "--resume")) == 0
    assert without_timing(gtrain.read_metrics(out)) == without_timing(gtrain.read_metrics(reference_run))
    info = gtrain.read_run_info(out)
    assert info["data_dir"] == str(moved) and info["config"]["data_dir"] == str(moved)
    assert info["resumed_at"][-1]["changed"]["data_dir"] == [str(fixture_root), str(moved)]


@pytest.mark.parametrize(
    ("change", "flags", "named"),
    [
        ("image-removed", [], "train_images 12 -> 11"),
        ("image-edited", [], "train_files"),
        ("val-image-removed", [], "val_images 12 -> 11"),
        ("none", ["--fuse-1x1"], "fuse_1x1 False -> True"),
        pytest.param("none", ["--workers", "1"], "workers 0 -> 1", marks=pytest.mark.slow),  # worker start-up
    ],
)
def test_a_resume_with_changed_inputs_is_refused_unless_allowed_and_then_recorded(
    fixture_root, reference_run, tmp_path, capsys, change, flags, named
):
    out = _trained_one_epoch(fixture_root, reference_run, tmp_path)
    data = shutil.copytree(fixture_root, tmp_path / "data")
    train_files = sorted((data / "train").rglob("*.JPEG"))
    if change == "image-removed":
        train_files[-1].unlink()
    elif change == "image-edited":
        Image.new("RGB", (48, 48), (10, 20, 30)).save(train_files[-1], format="JPEG")
    elif change == "val-image-removed":
        sorted((data / "val").rglob("*.JPEG"))[-1].unlink()
    before = {name: (out / name).read_bytes() for name in ("last.pt", "run.json", "metrics.jsonl")}
    capsys.readouterr()
    assert gtrain.main(tiny_args(data, out, "--resume", *flags)) == gtrain.EXIT_ERROR
    line = one_line_error(capsys)
    assert named in line and "--allow-changed-inputs" in line
    assert {name: (out / name).read_bytes() for name in before} == before  # refused before writing anything
    assert gtrain.main(tiny_args(data, out, "--resume", "--allow-changed-inputs", *flags)) == 0
    changed = gtrain.read_run_info(out)["resumed_at"][-1]["changed"]
    assert named.split()[0] in changed


# ---------------------------------------------------------------------------------------------------- 6. disk full
@pytest.mark.parametrize("where", ["reserving", "writing"])
def test_a_disk_that_fills_while_the_cache_is_built_is_one_error_and_leaves_no_partial_file(
    fixture_root, tmp_path, monkeypatch, where
):
    def full(*_args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(gcache.os, "posix_fallocate" if where == "reserving" else "write", full)
    with pytest.raises(gcache.CacheError, match="cannot write the decoded cache .*No space left on device"):
        gcache.open_split(fixture_root / "val", 40, cache_root=tmp_path / "cache", log=lambda _: None)
    assert [p.name for p in (tmp_path / "cache").rglob("images.u8*")] == []


def test_sigterm_while_the_cache_is_built_exits_143_and_leaves_no_partial_file(
    fixture_root, tmp_path, capsys, monkeypatch
):
    real_decode, calls = gcache._decode, []

    def decode(path, size):
        calls.append(path)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # from a decoding thread: handled in the main thread
        return real_decode(path, size)

    monkeypatch.setattr(gcache, "_decode", decode)
    out, cache = tmp_path / "run", tmp_path / "cache"
    assert gtrain.main(tiny_args(fixture_root, out, "--cache", "--cache-dir", str(cache))) == gtrain.EXIT_TERMINATED
    assert "SIGTERM: aborted; nothing had been saved" in one_line_error(capsys)
    assert [p.name for p in cache.rglob("images.u8*")] == [] and not out.exists()


@pytest.mark.slow
def test_a_real_file_size_limit_during_the_cache_build_is_one_line_and_exit_2(fixture_root, tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse the reservation (EFBIG), as a full disk refuses it (ENOSPC).
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    args = tiny_args(fixture_root, tmp_path / "run", "--cache", "--cache-dir", str(tmp_path / "cache"), epochs=1)
    done = subprocess.run(
        [sys.executable, "-m", "gnet.train", *args],
        env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )
    assert done.returncode == gtrain.EXIT_ERROR, done.stderr
    assert "cannot write the decoded cache" in done.stderr and "Traceback" not in done.stderr
    assert "cannot write the run" not in done.stderr
    assert [p.name for p in (tmp_path / "cache").rglob("images.u8*")] == []


# ---------------------------------------------------------------------------------------------------- 7. memory
def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header promises ``width × height`` pixels, with one tiny data chunk: bytes, not pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(_png_header(60_000, 1)), "60000 × 1 pixels"),
        (lambda p: p.write_bytes(_png_header(1, 60_000)), "1 × 60000 pixels"),
        (lambda p: p.write_bytes(_png_header(20_000, 20_000)), "gnet takes at most 64,000,000 pixels"),
        (lambda p: os.truncate(p, 20 * 2**30) if p.touch() is None else None, "more than the 256 MiB"),
        (lambda p: p.write_bytes(b"plain text, not an image"), "not an image file Pillow can read"),
        (lambda p: p.mkdir(), "not a plain file"),
    ],
    ids=["wide-strip", "tall-strip", "400-megapixels", "20-GB-sparse", "text", "folder"],
)
def test_an_image_that_would_exhaust_memory_or_is_not_one_is_refused_before_decoding(tmp_path, make, message):
    path = tmp_path / "hostile.png"
    make(path)
    with pytest.raises(gdata.CorruptImageError) as caught:
        gdata.load_rgb(path)
    assert message in str(caught.value) and str(path) in str(caught.value) and "BytesIO" not in str(caught.value)


def test_a_device_file_is_refused_without_reading_it():
    with pytest.raises(gdata.CorruptImageError, match="/dev/zero: it is not a plain file"):
        gdata.load_rgb("/dev/zero")


def test_predict_refuses_hostile_images_one_line_each_and_classifies_the_rest(tiny_data, tiny_run, tmp_path, capsys):
    strip = tmp_path / "strip.png"
    strip.write_bytes(_png_header(60_000, 1))
    good = str(sorted((tiny_data / "val").rglob("*.JPEG"))[0])
    argv = [str(strip), "/dev/zero", good, "--checkpoint", str(tiny_run / "last.pt"), "--json"]
    assert gpredict.main(argv) == gpredict.EXIT_ERROR
    captured = capsys.readouterr()
    assert [json.loads(line)["image"] for line in captured.out.splitlines()] == [good]
    errors = captured.err.splitlines()
    assert len(errors) == 2 and "60000 × 1 pixels" in errors[0] and "/dev/zero" in errors[1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--image-size", "4096"], "image_size must be at most 1,024"),
        (["--width", "100"], "width must be at most 4.0"),
        (["--seed", str(2**32)], "seed must be at most 4,294,967,295"),
        (["--lr", "1e308"], "lr must be at most 10,000.0"),
        (["--weight-decay", "1e308"], "weight_decay must be at most 1.0"),
        (["--warmup-epochs", "1e308"], "warmup_epochs must be at most 100,000"),
        (["--batch-size", str(10**6)], "batch_size must be at most 8,192"),
        (["--workers", str(10**6)], "workers must be at most 256"),
        (["--epochs", str(10**15)], "epochs must be at most 100,000"),
        (["--dist-timeout", "1e308"], "dist_timeout must be at most 86,400"),
        (["--cache-dir", ""], "cache_dir must name a folder"),
    ],
)
def test_every_size_and_number_option_has_a_documented_maximum(fixture_root, tmp_path, capsys, flags, message):
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run", *flags)) == gtrain.EXIT_ERROR
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--image-size", "99999"], "--image-size must be <= 1024"),
        (["--batch-size", "100000"], "--batch-size must be <= 1024"),
        (["--workers", "-1"], "--workers must be >= 0"),
    ],
)
def test_evaluate_bounds_its_sizes(tiny_run, tiny_data, capsys, flags, message):
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(tiny_data), *flags]) == 2
    assert message in one_line_error(capsys)


# ---------------------------------------------------------------------------------------------------- 8. damage
@pytest.mark.parametrize(
    "text", ["{broken", '{"x": 1}', "[]", '{"config": 1}', "\udcff", '{"config": {}, "x": NaN}'], ids=repr
)
def test_a_damaged_run_json_is_one_line_on_resume_and_nothing_is_written(
    fixture_root, reference_run, tmp_path, capsys, text
):
    out = copy_run(reference_run, tmp_path / "run")
    (out / "run.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 1)) == gtrain.EXIT_ERROR
    assert f"{out / 'run.json'} is damaged" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"} == before


def test_a_run_json_that_links_to_a_device_is_refused_without_reading_it(fixture_root, reference_run, tmp_path, capsys):
    out = copy_run(reference_run, tmp_path / "run")
    (out / "run.json").unlink()
    (out / "run.json").symlink_to("/dev/zero")
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 1)) == gtrain.EXIT_ERROR
    assert "not a plain JSON file" in one_line_error(capsys)


def test_allow_changed_inputs_without_resume_is_refused(fixture_root, tmp_path, capsys):
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run", "--allow-changed-inputs")) == gtrain.EXIT_ERROR
    assert "--allow-changed-inputs goes with --resume" in one_line_error(capsys)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: "[]",
        lambda m: json.dumps({**m, "files": 1}),
        lambda m: json.dumps({**m, "files": [[1, 2]]}),
        lambda m: json.dumps({**m, "bytes": "many"}),
        lambda m: json.dumps({k: v for k, v in m.items() if k != "sha256"}),
        lambda m: "{broken",
    ],
    ids=["list", "files-int", "short-rows", "bytes-str", "no-sha", "not-json"],
)
def test_an_edited_cache_manifest_rebuilds_the_cache(fixture_root, tmp_path, edit):
    root, log = tmp_path / "cache", []
    split = gcache.open_split(fixture_root / "val", 40, cache_root=root, log=lambda _: None)
    good = np.array(split.images)
    manifest = split.path / gcache.MANIFEST_NAME
    manifest.write_text(edit(json.loads(manifest.read_text())))
    again = gcache.open_split(fixture_root / "val", 40, cache_root=root, log=log.append)
    assert any("decoding" in line for line in log)
    assert np.array_equal(np.array(again.images), good)


def _damaged(state: dict, how: str) -> dict:
    state = dict(state)
    if how == "model-is-a-tensor":
        state["model"] = torch.zeros(3)
    elif how == "short-class-names":
        state["class_names"] = state["class_names"][:2]
    elif how == "classes-not-strings":
        state["classes"] = [1, 2, 3]
    elif how == "image-size-huge":
        state["train_config"] = {**state["train_config"], "image_size": 99_999}
    elif how == "image-size-text":
        state["train_config"] = {**state["train_config"], "image_size": "big"}
    elif how == "nan-weights":
        state["model"] = {
            k: v.float().fill_(float("nan")) if v.is_floating_point() else v for k, v in state["model"].items()
        }
    elif how == "optimizer-buffer-shape":
        optimizer = state["optimizer"]
        first = next(iter(optimizer["state"]))
        state["optimizer"] = {
            **optimizer,
            "state": {**optimizer["state"], first: {"momentum_buffer": torch.zeros(1, 2)}},
        }
    elif how == "optimizer-no-groups":
        state["optimizer"] = {"state": {}}
    elif how == "rng-torch":
        state["rng"] = {**state["rng"], "torch": torch.zeros(3)}
    elif how == "rng-python":
        state["rng"] = {**state["rng"], "python": {"version": 3, "state": [1, 2], "gauss": None}}
    elif how == "tally-keys":
        state["tally"] = {"loss": 1.0}
    elif how == "epoch-negative":
        state["epoch"] = -1
    elif how == "tally-empty-mid-epoch":
        state["batch"], state["tally"] = 1, {**state["tally"], "count": 0}
    elif how == "history-nan":
        state["history"] = [{**state["history"][0], "val_loss": float("nan")}, *state["history"][1:]]
    elif how == "history-not-list":
        state["history"] = {"epoch": 1}
    elif how == "format-tensor":
        state["format"] = torch.zeros(2)
    return state


MODEL_DAMAGE = [
    "model-is-a-tensor",
    "short-class-names",
    "classes-not-strings",
    "image-size-huge",
    "image-size-text",
    "nan-weights",
    "format-tensor",
]
TRAINING_DAMAGE = [
    "optimizer-buffer-shape",
    "optimizer-no-groups",
    "rng-torch",
    "rng-python",
    "tally-keys",
    "tally-empty-mid-epoch",
    "epoch-negative",
    "history-nan",
    "history-not-list",
]


@pytest.mark.parametrize("how", MODEL_DAMAGE + TRAINING_DAMAGE)
def test_a_damaged_but_loadable_checkpoint_is_one_line_on_resume(fixture_root, reference_run, tmp_path, capsys, how):
    out = copy_run(reference_run, tmp_path / "run")
    torch.save(_damaged(torch.load(out / "last.pt", weights_only=True), how), out / "last.pt")
    before = (out / "metrics.jsonl").read_bytes()
    assert gtrain.main(tiny_args(fixture_root, out, "--resume", epochs=EPOCHS + 1)) == gtrain.EXIT_ERROR
    line = one_line_error(capsys)
    assert "last.pt" in line and ("damaged" in line or "NaN" in line or "format" in line)
    assert (out / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("how", MODEL_DAMAGE)
def test_a_damaged_weights_file_is_one_line_in_evaluate_and_predict(tiny_run, tiny_data, tmp_path, capsys, how):
    path = tmp_path / "weights.pt"
    torch.save(_damaged(torch.load(tiny_run / "last.pt", weights_only=True), how), path)
    assert gevaluate.main([str(path), "--data-dir", str(tiny_data), "--json"]) == gevaluate.EXIT_ERROR
    assert str(path) in one_line_error(capsys) and capsys.readouterr().out == ""
    image = str(sorted((tiny_data / "val").rglob("*.JPEG"))[0])
    assert gpredict.main([image, "--checkpoint", str(path)]) == gpredict.EXIT_ERROR
    assert str(path) in one_line_error(capsys)


def test_non_finite_weights_are_refused_by_load_checkpoint(tiny_run, tmp_path):
    state = torch.load(tiny_run / "last.pt", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = state["model"][name].clone().fill_(float("inf"))
    torch.save(state, tmp_path / "inf.pt")
    with pytest.raises(CheckpointError, match=f"NaN or infinite .*first {name}"):
        load_checkpoint(tmp_path / "inf.pt")


def test_evaluate_with_a_worker_and_a_corrupt_image_is_one_line(tiny_run, tiny_data, tmp_path, capsys):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    broken = sorted((data / "val").rglob("*.JPEG"))[3]
    broken.write_bytes(broken.read_bytes()[:200])
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(data), "--workers", "1"]) == 2
    line = one_line_error(capsys)
    assert f"cannot decode image {broken}" in line and "DataLoader worker" not in line


@pytest.mark.slow
def test_non_utf8_file_names_print_under_a_strict_utf8_stdout_and_every_image_is_classified(
    tiny_data, tiny_run, tmp_path
):
    images = [tmp_path / os.fsdecode(b"caf\xe9.jpg"), tmp_path / "plain.jpg"]
    source = sorted((tiny_data / "val").rglob("*.JPEG"))[0]
    for image in images:
        shutil.copy(source, image)
    done = subprocess.run(
        [sys.executable, "-m", "gnet.predict", *map(str, images), "--checkpoint", str(tiny_run / "last.pt")],
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8"),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("utf-8").splitlines()  # strict: the output itself is valid UTF-8
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "caf\\udce9.jpg")) and "plain.jpg" in lines[1]


@pytest.mark.slow
def test_a_second_ctrl_c_during_the_checkpoint_write_waits_for_the_file_then_aborts(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"
    real_save = gtrain.save_checkpoint

    def ctrl_c_at_step_2(epoch, step, loss):
        if (epoch, step) == (0, 1):
            os.kill(os.getpid(), signal.SIGINT)  # the first: a checkpoint after this step
        return loss

    def save_while_interrupted(path, state):
        def interrupting_save(handle):
            os.kill(os.getpid(), signal.SIGINT)  # the second, in the middle of the write
            torch.save(state, handle)

        from gnet.checkpoint import atomic_write

        atomic_write(path, interrupting_save)

    gtrain.save_checkpoint = save_while_interrupted
    try:
        config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))
        with pytest.raises(KeyboardInterrupt):
            gtrain.train(config, _loss_hook=ctrl_c_at_step_2)
    finally:
        gtrain.save_checkpoint = real_save
    state = read_checkpoint(out / "last.pt", training=True)  # whole: the write finished before the abort
    assert (state["epoch"], state["batch"]) == (0, 2)
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "line", "codes"),
    [
        (signal.SIGINT, "gnet-predict: interrupted while starting\n", (-signal.SIGINT, 130)),
        (signal.SIGTERM, "gnet-predict: interrupted by SIGTERM while starting\n", (143,)),
        (signal.SIGHUP, "gnet-predict: interrupted by SIGHUP while starting\n", (129,)),
    ],
)
def test_a_stop_signal_while_a_command_loads_its_libraries_is_one_line(signum, line, codes):
    # The handlers are installed before torch is imported (gnet/__init__.py imports gnet._process first); the
    # signal arrives here while "loading", as it would in the seconds torch takes.
    code = (
        "import os, signal, sys, time; sys.argv[0] = 'gnet-predict'; import gnet._process; "
        f"os.kill(os.getpid(), {int(signum)}); time.sleep(30)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.stderr == line
    assert done.returncode in codes


@pytest.mark.slow
def test_a_program_that_imports_gnet_keeps_pythons_own_interrupt_report():
    code = "import gnet._process; raise KeyboardInterrupt"
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True
    )
    assert "Traceback" in done.stderr


@pytest.mark.slow
def test_a_killed_data_loading_worker_is_one_line_keeps_the_last_checkpoint_and_resume_completes(
    fixture_root, tmp_path, capsys
):
    out = tmp_path / "run"
    args = tiny_args(fixture_root, out, "--workers", "1", epochs=3)
    real_hook = {}

    def kill_the_worker(epoch, step, loss):
        if (epoch, step) == (1, 1):
            for pid in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
        return loss

    real_train = gtrain.train
    real_hook["train"] = real_train
    gtrain.train = lambda config, **kwargs: real_train(config, **kwargs, _loss_hook=kill_the_worker)
    try:
        assert gtrain.main(args) == gtrain.EXIT_ERROR
    finally:
        gtrain.train = real_train
    line = one_line_error(capsys)
    assert "a data-loading worker process died" in line and "last.pt is the last saved state" in line
    assert read_checkpoint(out / "last.pt", training=True)["epoch"] == 1
    assert gtrain.main([*args, "--resume"]) == 0
    assert [m["epoch"] for m in gtrain.read_metrics(out)] == [1, 2, 3]


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed."),
        EOFError(),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    ],
    ids=["killed", "eof", "reset"],
)
def test_every_report_of_a_dead_worker_is_the_same_one_line(fixture_root, tmp_path, capsys, monkeypatch, error):
    def dies(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(gtrain, "train", dies)
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run", "--workers", "1")) == gtrain.EXIT_ERROR
    line = one_line_error(capsys)
    assert "a data-loading worker process died" in line and "cannot write the run" not in line


# ---------------------------------------------------------------------------------------------------- 9. output
def test_evaluate_json_is_strict_and_the_table_keeps_every_class(tiny_run, tiny_data, capsys):
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(tiny_data), "--json"]) == 0

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    report = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert len(report["per_class"]) == 3


def test_a_class_with_no_images_gets_a_null_row_and_a_short_name_list_is_refused():
    result = gevaluate.Predictions(np.array([0, 0]), np.array([0, 1]), np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]))
    report = gevaluate.summarize(result, ["a", "b", "c"])
    assert list(report["per_class"]) == ["a", "b", "c"] and report["per_class"]["c"] == {"images": 0, "top1": None}
    json.dumps(report, allow_nan=False)
    with pytest.raises(ValueError, match=r"one distinct name per class \(3\), got 2 names"):
        gevaluate.summarize(result, ["a", "b"])


# ---------------------------------------------------------------------------------------------------- 10. signals
def test_two_sigterms_exit_143_with_one_line(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"

    def two_sigterms(epoch, step, loss):
        if (epoch, step) == (0, 1):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))
    with pytest.raises(KeyboardInterrupt) as caught:
        gtrain.train(config, _loss_hook=two_sigterms)
    assert caught.value.signum == signal.SIGTERM


def test_two_sigterms_through_the_cli_exit_143(fixture_root, tmp_path, capsys, monkeypatch):
    real = gtrain.train_one_epoch

    def sigterm_twice(run, epoch, stop, loss_hook=None):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        return real(run, epoch, stop, loss_hook)

    monkeypatch.setattr(gtrain, "train_one_epoch", sigterm_twice)
    assert gtrain.main(tiny_args(fixture_root, tmp_path / "run")) == gtrain.EXIT_TERMINATED
    assert "SIGTERM: aborted; nothing had been saved" in one_line_error(capsys)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_during_set_up_exits_at_once_and_leaves_no_folder(
    fixture_root, tmp_path, capsys, monkeypatch, signum
):
    real = gtrain._datasets

    def datasets(config, world=gtrain.SINGLE):
        os.kill(os.getpid(), signum)  # while the dataset is scanned (or the cache built)
        return real(config, world)

    monkeypatch.setattr(gtrain, "_datasets", datasets)
    out = tmp_path / "run"
    assert gtrain.main(tiny_args(fixture_root, out)) == 128 + signum
    assert "aborted; nothing had been saved" in one_line_error(capsys)
    assert not out.exists()


def test_sighup_is_a_stop_with_a_checkpoint_exit_129_and_resume_matches(
    fixture_root, reference_run, tmp_path, capsys, terminal_left
):
    out = tmp_path / "run"

    def hang_up(epoch, step, loss):
        if (epoch, step) == (1, 1):
            os.kill(os.getpid(), signal.SIGHUP)
        return loss

    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, out)))
    with pytest.raises(gtrain.TrainingInterrupted) as caught:
        gtrain.train(config, _loss_hook=hang_up)
    assert caught.value.signum == signal.SIGHUP and gtrain.EXIT_HANGUP == 128 + signal.SIGHUP
    assert terminal_left == [True]  # output to a terminal that hung up goes nowhere, and cannot fail the save
    state = read_checkpoint(out / "last.pt", training=True)
    assert (state["epoch"], state["batch"]) == (1, 2)
    assert gtrain.main(tiny_args(fixture_root, out, "--resume")) == 0
    assert without_timing(gtrain.read_metrics(out)) == without_timing(gtrain.read_metrics(reference_run))


@pytest.mark.slow
def test_after_a_hang_up_output_that_went_to_the_terminal_goes_to_dev_null():
    code = (
        "import os, sys, gnet._process as p; master, slave = os.openpty(); os.dup2(slave, 1); "
        "p._leave_the_terminal(); print('lost'); sys.stdout.flush(); "
        "sys.stderr.write(f'{os.isatty(1)} {os.isatty(2)} {os.path.realpath(f\"/proc/self/fd/1\")}')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == "False False /dev/null", done.stderr


# ---------------------------------------------------------------------------------------------------- 11. smaller
def test_a_cache_folder_problem_is_named_as_the_caches(fixture_root, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    args = tiny_args(fixture_root, tmp_path / "run", "--cache", "--cache-dir", str(tmp_path / "file" / "sub"), epochs=1)
    assert gtrain.main(args) == gtrain.EXIT_ERROR
    line = one_line_error(capsys)
    assert "cannot use the decoded cache" in line and "cannot write the run" not in line


def test_a_corrupt_weights_file_in_evaluate_and_predict_does_not_advise_out(tiny_run, tmp_path, capsys):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    assert gevaluate.main([str(path)]) == 2
    assert "--out" not in one_line_error(capsys)
    assert gpredict.main(["x.jpg", "--checkpoint", str(path)]) == 2
    assert "--out" not in one_line_error(capsys)


def test_evaluate_needs_only_a_val_folder(tiny_run, tiny_data, tmp_path, capsys):
    val_only = tmp_path / "val-only"
    shutil.copytree(tiny_data / "val", val_only / "val")
    assert gevaluate.main([str(tiny_run / "last.pt"), "--data-dir", str(val_only), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 12


def test_an_out_with_a_tilde_is_expanded_as_a_shell_would(fixture_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = gtrain.config_from_args(gtrain.build_parser().parse_args(tiny_args(fixture_root, Path("~/runs/x"))))
    assert config.out == str(tmp_path / "home" / "runs" / "x")


def test_an_empty_cache_root_is_refused(fixture_root):
    with pytest.raises(gcache.CacheError, match="empty string"):
        gcache.open_split(fixture_root / "val", 40, cache_root="", log=lambda _: None)


def test_a_decoded_loader_refuses_a_zero_batch_and_a_crop_larger_than_the_cache(fixture_root, tmp_path):
    split = gcache.open_split(fixture_root / "val", 40, cache_root=tmp_path / "cache", log=lambda _: None)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DecodedLoader(split, 0, 32, "cpu")
    with pytest.raises(ValueError, match="image_size must be at most the cached images' size 40"):
        DecodedLoader(split, 4, 41, "cpu")
    with pytest.raises(ValueError, match="part index must be an int >= 0"):
        DecodedLoader(split, 4, 32, "cpu", part=(-1, 2))
