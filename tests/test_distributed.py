"""gnet.train under torchrun: 2 gloo processes on CPU, on a small real (fixture) dataset.

What must hold: 2 ranks × half the batch train the weights 1 rank × the whole batch trains; rank 0 alone writes
and prints; the sharded evaluation equals a single-process one; a checkpoint holds the same state at any world size
and resumes across world sizes; a resume on the same number of ranks is exact, after a stop at an epoch's end or
mid-epoch; and a dead rank ends the job instead of hanging it, after which ``--resume`` completes the run.
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

# Equivalence across world sizes: no BatchNorm (each rank would normalise its own part of the batch), no dropout
# and no auxiliary heads (each rank draws its own masks), crops from the decoded cache (drawn per global batch), fp32
# (an automatic bf16 would round at 3 significant digits), one thread per process. What is left to differ is the
# order of float additions: another batch split takes other oneDNN and MKL kernels.
EXACT = ["--no-aux", "--dropout", "0", "--cache", "--lr", "0.01", "--warmup-epochs", "0", "--precision", "fp32"]
# Relative gap of the whole network (all weights, or all momentum buffers, as one vector) between such runs. Each step
# differs by rounding, about 1e-7 of a gradient; but where a max pool's two largest inputs lie within rounding of each
# other, the runs pick different ones and send that window's gradient to different pixels, and from that step on they
# drift apart faster (ReLUs then flip too). When that happens depends on the processor's kernels. On an Intel Xeon,
# 9 steps drifted to 0.0175 in one small bias (the per-tensor gap this file measured before). Measured on an AMD
# EPYC for the tests below: at most 2.5e-8 for weights and 2.8e-7 for momentum, with oneDNN's AVX-512 kernels and
# with its AVX2 ones (ONEDNN_MAX_CPU_ISA=AVX2, standing in for another processor); the worst case seen, 9 steps of
# batch 8 with AVX2 kernels (one max-pool window decided otherwise at step 7), 6.4e-6. A lost state is far larger:
# momentum buffers reset at each resume of the 3-step test give 1.5e-3.
TOLERANCE = 1e-5


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


def relative_gap(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    """|first - second| / |first| over every floating-point tensor of two state dicts, as one vector."""
    names = [name for name in first if first[name].is_floating_point()]
    assert names and sorted(first) == sorted(second)
    difference = sum(float((first[n].double() - second[n].double()).pow(2).sum()) for n in names) ** 0.5
    return difference / sum(float(first[n].double().pow(2).sum()) for n in names) ** 0.5


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)


def weights_gap(a: Path, b: Path) -> float:
    return relative_gap(checkpoint(a)["model"], checkpoint(b)["model"])


@pytest.mark.slow
def test_two_ranks_with_half_batches_train_the_weights_of_one_process_with_the_whole_batch(data, tmp_path):
    result = run_torchrun(2, args(data, tmp_path / "two", *EXACT))
    assert result.returncode == 0, result.stderr
    assert single(args(data, tmp_path / "one", *EXACT)) == 0
    assert weights_gap(tmp_path / "one", tmp_path / "two") < TOLERANCE
    one, two = (gtrain.read_metrics(tmp_path / name)[0] for name in ("one", "two"))
    assert one["train_loss"] == pytest.approx(two["train_loss"], rel=TOLERANCE)
    assert one["train_top1"] == two["train_top1"] and one["val_top1"] == two["val_top1"]


@pytest.mark.slow
def test_rank_0_alone_writes_and_prints_and_the_sharded_evaluation_equals_one_process(data, tmp_path):
    # BatchNorm, so that the ranks' running statistics differ; 7 val images per class, so the shards are uneven.
    out = tmp_path / "bn"
    # fp32: the evaluation below runs in fp32, and so must the run's (an automatic bf16 rounds at 3 digits).
    flags = ["--batch-norm", "--val-subset-per-class", "7", "--precision", "fp32"]
    result = run_torchrun(2, args(data, out, *flags, epochs=2))
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


def identical(first, second) -> bool:
    """Equal to the bit, through nested dicts and lists of tensors and plain values."""
    if isinstance(first, torch.Tensor):
        return isinstance(second, torch.Tensor) and torch.equal(first, second)
    if isinstance(first, dict):
        return (
            isinstance(second, dict)
            and first.keys() == second.keys()
            and all(identical(first[key], second[key]) for key in first)
        )
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(identical(a, b) for a, b in zip(first, second, strict=True))
    return first == second


def momentum_buffers(state: dict) -> dict[str, torch.Tensor]:
    return {str(index): entry["momentum_buffer"] for index, entry in state["optimizer"]["state"].items()}


@pytest.mark.slow
def test_a_checkpoint_holds_the_same_state_and_resumes_across_world_sizes_both_ways(data, tmp_path):
    # One step per epoch (a global batch of all 24 training images), so that every resume is followed at once by a
    # step that uses the momentum it restored; the paper's constant learning rate, so that extending a run changes
    # no step.
    recipe = [*EXACT, "--schedule", "paper", "--batch-size", "24"]
    assert single(args(data, tmp_path / "straight", *recipe, epochs=3)) == 0
    assert single(args(data, tmp_path / "one", *recipe, epochs=1)) == 0
    # 2 ranks for one epoch, then 1 process for the second, then 2 ranks again for the third (the multi-node form)
    assert run_torchrun(2, args(data, tmp_path / "mixed", *recipe, epochs=1)).returncode == 0

    # What a 2-rank checkpoint holds is what a 1-process one holds: the same entries, the same position and random
    # state (rank 0's stream is a single process's), the same optimizer settings, and weights and momentum equal
    # up to rounding.
    two, one = checkpoint(tmp_path / "mixed"), checkpoint(tmp_path / "one")
    assert sorted(two) == sorted(one)
    assert two["epoch"] == one["epoch"] == 1 and two["batch"] == one["batch"] == 0 and two["tally"] == one["tally"]
    assert identical(two["rng"], one["rng"])
    assert two["optimizer"]["param_groups"] == one["optimizer"]["param_groups"]
    assert relative_gap(momentum_buffers(one), momentum_buffers(two)) < TOLERANCE
    assert relative_gap(one["model"], two["model"]) < TOLERANCE
    assert two["train_config"] == one["train_config"] | {"out": two["train_config"]["out"]}

    assert single(args(data, tmp_path / "mixed", *recipe, "--resume", epochs=2)) == 0
    result = run_torchrun(2, args(data, tmp_path / "mixed", *recipe, "--resume", epochs=3), rendezvous=True)
    assert result.returncode == 0, result.stderr
    assert [m["epoch"] for m in gtrain.read_metrics(tmp_path / "mixed")] == [1, 2, 3]
    assert weights_gap(tmp_path / "straight", tmp_path / "mixed") < TOLERANCE
    assert [r["world_size"] for r in gtrain.read_run_info(tmp_path / "mixed")["resumed_at"]] == [1, 2]


def without_timing(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in gtrain.TIMING_KEYS} for m in gtrain.read_metrics(run_dir)]


def assert_same_run(reference: Path, resumed: Path) -> None:
    """Bit for bit: every metric but the timings, and every weight and momentum buffer."""
    assert without_timing(resumed) == without_timing(reference)
    first, second = checkpoint(reference), checkpoint(resumed)
    assert identical(first["model"], second["model"])
    assert identical(momentum_buffers(first), momentum_buffers(second))


@pytest.mark.slow
def test_a_resume_on_the_same_number_of_ranks_is_exact_after_a_stop_at_an_epoch_end_or_mid_epoch(data, tmp_path):
    # The default recipe's randomness on every rank: dropout, the auxiliary heads' dropout, and the JPEG path's crops
    # drawn in each process (--workers 0). Rank 1's random state is in no checkpoint: it must not matter.
    recipe = ["--schedule", "paper", "--precision", "fp32"]
    epochs = 4
    assert run_torchrun(2, args(data, tmp_path / "straight", *recipe, epochs=epochs)).returncode == 0

    # a stop at an epoch's end (as after a kill -9 of rank 0 there): 2 epochs, then --resume to 4
    assert run_torchrun(2, args(data, tmp_path / "boundary", *recipe, epochs=2)).returncode == 0
    assert run_torchrun(2, args(data, tmp_path / "boundary", *recipe, "--resume", epochs=epochs)).returncode == 0
    assert_same_run(tmp_path / "straight", tmp_path / "boundary")

    # SIGTERM to torchrun once the first epoch is written: the ranks agree on a step, rank 0 saves, --resume
    out = tmp_path / "stopped"
    process = torchrun(2, args(data, out, *recipe, epochs=epochs))
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline, "the run never finished an epoch"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0 and "interrupted" in stderr, stderr
    stopped = checkpoint(out)
    assert 1 <= stopped["epoch"] < epochs
    assert run_torchrun(2, args(data, out, *recipe, "--resume", epochs=epochs)).returncode == 0
    assert_same_run(tmp_path / "straight", out)


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
