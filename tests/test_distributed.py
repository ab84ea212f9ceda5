"""gnet.train under torchrun: 2 gloo processes on CPU, on a small real (fixture) dataset.

What must hold: 2 ranks × half the batch train the weights 1 rank × the whole batch trains; rank 0 alone writes
and prints; the sharded evaluation equals a single-process one; a checkpoint resumes across world sizes; and a
dead rank ends the job instead of hanging it, after which ``--resume`` completes the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gnet import data as gdata
from gnet import distributed
from gnet import train as gtrain
from gnet.checkpoint import load_checkpoint
from gnet.evaluate import evaluate
from gnet.testing import make_fixture_dataset

REPO = Path(__file__).resolve().parents[1]

# Equivalence: no BatchNorm, no dropout, no auxiliary heads (their dropout), crops from the decoded cache, which
# draws them per global batch, one thread per process. What is left to differ is the order of float additions.
EXACT = ["--no-aux", "--dropout", "0", "--cache", "--lr", "0.01", "--warmup-epochs", "0"]
TOLERANCE = 1e-5  # relative, per weight tensor; measured: below 1e-6 after 3 steps


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_fixture_dataset(tmp_path_factory.mktemp("ddp-data"), num_classes=3, per_split=8)


def args(data: Path, out: Path, *extra: str, epochs: int = 1) -> list[str]:
    return [
        "--data-dir", str(data), "--out", str(out), "--epochs", str(epochs), "--batch-size", "8",
        "--image-size", "65", "--width", "0.25", "--workers", "0", "--device", "cpu", "--seed", "3",
        "--cache-dir", str(out.parent / "cache"), "--no-progress", *extra,
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(nproc: int, train_args: list[str], *, rendezvous: bool = False, **popen) -> subprocess.Popen:
    """``torchrun --standalone``, or with ``rendezvous`` the multi-node form (one node, c10d on a local port)."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if rendezvous:
        command += ["--nnodes=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}"]
    else:
        command += ["--standalone"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*command, "-m", "gnet.train", *train_args], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip


def run_torchrun(nproc: int, train_args: list[str], **kwargs) -> subprocess.CompletedProcess:
    process = torchrun(nproc, train_args, **kwargs)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def single(train_args: list[str]) -> int:
    """One plain process, with one thread as each torchrun rank has: with other thread counts oneDNN takes other
    kernels, whose rounding the few training steps amplify in small, zero-initialised biases."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "gnet.train", *train_args], cwd=REPO, env=env, timeout=300)
    return done.returncode


def relative_gaps(a: Path, b: Path) -> dict[str, float]:
    first, second = (torch.load(p / "last.pt", weights_only=True)["model"] for p in (a, b))
    return {
        name: float((first[name].double() - second[name].double()).norm() / first[name].double().norm())
        for name in first
        if first[name].is_floating_point() and first[name].double().norm() > 0
    }


@pytest.mark.slow
def test_two_ranks_with_half_batches_train_the_weights_of_one_process_with_the_whole_batch(data, tmp_path):
    result = run_torchrun(2, args(data, tmp_path / "two", *EXACT))
    assert result.returncode == 0, result.stderr
    assert single(args(data, tmp_path / "one", *EXACT)) == 0
    gaps = relative_gaps(tmp_path / "one", tmp_path / "two")
    assert max(gaps.values()) < TOLERANCE, sorted(gaps.items(), key=lambda item: -item[1])[:3]
    one, two = (gtrain.read_metrics(tmp_path / name)[0] for name in ("one", "two"))
    assert one["train_loss"] == pytest.approx(two["train_loss"], rel=TOLERANCE)
    assert one["train_top1"] == two["train_top1"] and one["val_top1"] == two["val_top1"]


@pytest.mark.slow
def test_rank_0_alone_writes_and_prints_and_the_sharded_evaluation_equals_one_process(data, tmp_path):
    # BatchNorm, so that the ranks' running statistics differ; 7 val images per class, so the shards are uneven.
    out = tmp_path / "bn"
    result = run_torchrun(2, args(data, out, "--batch-norm", "--val-subset-per-class", "7", epochs=2))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch 1/2 ") == 1 and result.stdout.count("gnet-train: done") == 1
    assert "global batch 8 = 2 ranks × 4 (gloo)" in result.stdout and "epoch 1/2:" not in result.stderr  # no bars
    assert sorted(p.name for p in out.iterdir()) == [".lock", "last.pt", "metrics.jsonl", "run.json"]
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["val_images"] == 21
    recorded = gtrain.read_metrics(out)[-1]

    loaded = load_checkpoint(out / "last.pt")
    val = gdata.ImageFolderDataset(data / "val", gdata.eval_transform(65), subset_per_class=7, seed=3)
    loader = torch.utils.data.DataLoader(val, batch_size=8)
    alone = evaluate(loaded.model, loader, torch.device("cpu"))
    assert round(alone["top1"] * 21) == round(recorded["val_top1"] * 21)  # every image once: the same hits
    assert alone["loss"] == pytest.approx(recorded["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_a_checkpoint_resumes_across_world_sizes_both_ways(data, tmp_path):
    paper = [*EXACT, "--schedule", "paper"]  # a constant learning rate: extending a run changes no step
    assert single(args(data, tmp_path / "straight", *paper, epochs=3)) == 0
    # 2 ranks for one epoch, then 1 process for the second, then 2 ranks again for the third (the multi-node form)
    assert run_torchrun(2, args(data, tmp_path / "mixed", *paper, epochs=1)).returncode == 0
    assert single(args(data, tmp_path / "mixed", *paper, "--resume", epochs=2)) == 0
    result = run_torchrun(2, args(data, tmp_path / "mixed", *paper, "--resume", epochs=3), rendezvous=True)
    assert result.returncode == 0, result.stderr
    assert [m["epoch"] for m in gtrain.read_metrics(tmp_path / "mixed")] == [1, 2, 3]
    assert max(relative_gaps(tmp_path / "straight", tmp_path / "mixed").values()) < TOLERANCE
    assert [r["world_size"] for r in gtrain.read_run_info(tmp_path / "mixed")["resumed_at"]] == [1, 2]


def _rank_pid(parent: int, rank: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in variables:
            return int(pid)
    raise AssertionError(f"no rank {rank} among the children {children} of {parent}")


@pytest.mark.slow
def test_a_dead_rank_ends_the_job_quickly_and_resume_completes_the_run(data, tmp_path):
    out, epochs = tmp_path / "dead", 12
    process = torchrun(2, args(data, out, epochs=epochs))
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline, "the run never finished an epoch"
        time.sleep(0.05)
    killed = time.monotonic()
    os.kill(_rank_pid(process.pid, 1), signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and time.monotonic() - killed < 30
    assert "another process of the job failed or stopped answering" in stderr and "--resume continues" in stderr

    assert single(args(data, out, "--resume", epochs=epochs)) == 0
    assert [m["epoch"] for m in gtrain.read_metrics(out)] == list(range(1, epochs + 1))


@pytest.mark.slow
def test_bad_torchrun_settings_are_one_line_from_rank_0(data, tmp_path):
    result = run_torchrun(2, args(data, tmp_path / "odd", "--batch-size", "7"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("gnet-train")]
    assert lines == ["gnet-train: error: --batch-size 7 is the global batch and must split evenly over 2 ranks (try 6)"]
    assert not (tmp_path / "odd").exists()


def test_a_distributed_environment_without_torchrun_is_a_clear_error(data, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    env.pop("MASTER_ADDR", None)
    result = subprocess.run(
        [sys.executable, "-m", "gnet.train", *args(data, tmp_path / "x")], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot join the process group (gloo)" in result.stderr and "MASTER_ADDR" in result.stderr


# ---------------------------------------------------------------------------------------------------- pieces
def test_each_rank_takes_its_contiguous_part_of_a_global_batch_and_the_parts_make_the_batch():
    batch = list(range(100, 112))
    parts = [distributed.World(rank, 3).share(batch) for rank in range(3)]
    assert parts == [batch[0:4], batch[4:8], batch[8:12]] and sum(parts, []) == batch
    assert distributed.SINGLE.share(batch) == batch and not distributed.SINGLE.distributed


def test_the_global_batch_must_split_evenly_and_the_first_line_says_how_it_is_split():
    with pytest.raises(ValueError, match="must split evenly over 4 ranks \\(try 8\\)"):
        distributed.check_batch(distributed.World(0, 4), 10)
    distributed.check_batch(distributed.World(0, 4), 12)
    assert distributed.describe(distributed.World(0, 4, backend="gloo"), 12) == "global batch 12 = 4 ranks × 3 (gloo)"
    assert distributed.describe(distributed.SINGLE, 12) == "batch 12"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "$WORLD_SIZE must be an integer, got 'two'"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "$RANK 2 is not below $WORLD_SIZE 2"),
        ({"WORLD_SIZE": "2", "RANK": "-1", "LOCAL_RANK": "0"}, "$RANK must be >= 0, got -1"),
    ],
)
def test_a_malformed_torchrun_environment_is_a_clear_error(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(distributed.DistributedError, match=message.replace("$", "\\$")):
        distributed.join("cpu")


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world, device = distributed.join("cpu")
    assert world is distributed.SINGLE and device.type == "cpu" and world.sum([1, 2.5]) == [1.0, 2.5]


def test_a_gloo_failure_reads_as_one_short_reason(monkeypatch):
    error = RuntimeError(
        "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:24778: Connection reset "
        "by peer. This is typically caused by a remote worker hanging or bugs in the application."
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.is_peer_failure(error)
    assert distributed.short_reason(error) == "Read error [127.0.0.1]:24778: Connection reset by peer"
    assert not distributed.is_peer_failure(RuntimeError("shape mismatch"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.is_peer_failure(error)
