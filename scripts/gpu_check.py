"""Everything this project wants from a lent GPU, in one script of at most 8 minutes: CUDA tests, throughput, a run.

Made for the device tool's machine (one GPU, no network, torch preinstalled) but usable on any CUDA machine:

    python scripts/gpu_check.py --data-dir .gpudata/imagenette2-128 --out "$OUT"
    python scripts/gpu_check.py --dry-run --out /tmp/gpu-check      # the same steps on the CPU, tiny, in ~30 s

With the device tool: carry the 128-px Imagenette copy (50 MiB) in an ignored folder, and run this with a time limit
that leaves room for a second try (see benchmarks/README.md):

    mkdir -p .gpudata && cp -r ../shared/data/imagenette2-128 .gpudata/
    run(command='python3 scripts/gpu_check.py --data-dir .gpudata/imagenette2-128 --out "$OUT"',
        carry=[".gpudata"], timeout_s=540)

Parts, in this order, each in its own process with its own time limit, each writing its results under ``--out``
as soon as it ends (so a part that runs out of time loses only itself):

1. ``env``: what is installed; missing Python packages are installed from ``--wheels`` (no network needed);
2. ``tests``: the test suite's ``cuda`` tests (``tests/test_cuda.py``: the cache's augmentation on the GPU against
   the CPU path, bf16 and fp16 autocast with the GradScaler, a cached training run saved and resumed);
3. ``throughput``: ``benchmarks/train_throughput.py`` for torchvision's googlenet, gnet with torchvision's
   architecture (plain and with fused 1×1s) and the paper's network, bf16 + channels-last, at 128 and 224 px,
   without and with ``torch.compile``; random tensors, so data loading is excluded (the run below includes it);
4. ``run``: the recorded GPU run, chapter 7's GPU recipe (full width, 128 px, bf16, ``--cache``) on all of
   Imagenette, evaluated on the whole validation split every epoch.

``--dry-run`` makes a tiny fixture dataset, runs on the CPU (the cuda tests with ``GNET_CHECK_DEVICE=cpu``), and
shrinks every size, so the test suite can run this script between GPU loans (``tests/test_gpu_check.py``).
The exit code is 0 when every part finished in time with exit code 0, else 1; ``summary.json`` says which.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "torchvision", "numpy", "PIL", "tqdm", "pytest")  # gnet's core, and the tests
MACS = ROOT / "benchmarks" / "results" / "forward-macs-128-224.json"  # train_throughput.py --write-macs-json

# The recipe of chapter 7's "On a GPU" section at 128 px: only width, batch and epochs differ from the CPU run.
GPU_RECIPE = ["--epochs", "30", "--batch-size", "128", "--image-size", "128", "--width", "1.0", "--batch-norm",
              "--no-lrn", "--label-smoothing", "0.1", "--lr", "0.2", "--workers", "4", "--cache",
              "--seed", "0"]  # fmt: skip
DRY_RECIPE = ["--epochs", "2", "--batch-size", "6", "--image-size", "65", "--width", "0.25", "--batch-norm",
              "--no-lrn", "--workers", "0", "--cache", "--seed", "0"]  # fmt: skip
# Seconds per part: together under 8 minutes, with the run given the most.
LIMITS = {"env": 60, "tests": 90, "throughput": 120, "run": 210}


def part_env(args: argparse.Namespace) -> list[str] | None:
    """Install what is missing from the carried wheels; ``None`` when nothing needs a command."""
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    if args.wheels is None:
        raise SystemExit(f"missing Python packages {missing} and no --wheels folder to install them from")
    names = [{"PIL": "pillow"}.get(name, name) for name in missing]
    return [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(args.wheels), *names]


def part_tests(args: argparse.Namespace) -> list[str]:
    # -o addopts= drops the project's --nbmake (nbmake is not needed, and may not be installed, here).
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-m", "cuda", "-q",
               "--junitxml", str(args.out / "tests.xml"), str(ROOT / "tests" / "test_cuda.py")]  # fmt: skip
    # The dry run leaves the training test to the run part, which trains through the same code on the CPU.
    return [*command, "-k", "not cached_run"] if args.dry_run else command


def part_throughput(args: argparse.Namespace) -> list[str]:
    sizes, batch, steps = (["96"], "2", ["--steps", "1", "--warmup", "1"]) if args.dry_run else (
        ["128", "224"], "256", ["--steps", "20", "--warmup", "5"])  # fmt: skip
    device = "cpu" if args.dry_run else "cuda"
    models = ["gnet-tv-fused"] if args.dry_run else ["torchvision", "gnet-tv", "gnet-tv-fused", "gnet"]
    common = [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--device", device, "--precision",
              "bf16", "--batch-size", batch, "--image-sizes", *sizes, "--models", *models, *steps]  # fmt: skip
    if not args.dry_run:  # counted here with fvcore, which the GPU machine may lack (MFU needs them)
        common += ["--macs-json", str(MACS)]
    eager = [*common, "--out", str(args.out / "throughput-eager.json")]
    compiled = [*common, "--compile", "--out", str(args.out / "throughput-compile.json")]
    if args.dry_run:  # torch.compile on a CPU needs a C++ toolchain and minutes: the dry run checks eager only
        return eager
    return ["bash", "-c", f"{shlex.join(eager)} && {shlex.join(compiled)}"]


def part_run(args: argparse.Namespace) -> list[str]:
    recipe = DRY_RECIPE if args.dry_run else GPU_RECIPE
    device = "cpu" if args.dry_run else "cuda"
    return [sys.executable, "-m", "gnet.train", "--data-dir", str(args.data_dir), "--out", str(args.out / "run"),
            "--device", device, "--precision", "bf16", "--cache-dir", str(args.out / "cache"), "--no-progress",
            *recipe]  # fmt: skip


PARTS = {"env": part_env, "tests": part_tests, "throughput": part_throughput, "run": part_run}


def run_part(name: str, command: list[str] | None, args: argparse.Namespace) -> dict:
    """Run one part with its time limit; its output goes to ``<out>/<name>.log``."""
    limit = LIMITS[name] * (3 if args.dry_run else 1)  # a loaded CPU is slower than the GPU machine's CPUs
    if command is None:
        return {"part": name, "status": "nothing to do", "seconds": 0.0}
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if args.dry_run:
        env |= {"GNET_CHECK_DEVICE": "cpu"}
    started = time.perf_counter()
    with open(args.out / f"{name}.log", "w") as log:
        log.write("$ " + shlex.join(command) + "\n")
        log.flush()
        try:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=limit).returncode
            status = "passed" if code == 0 else f"failed with exit code {code}"
        except subprocess.TimeoutExpired:
            status = f"stopped at its time limit of {limit} s"
    return {"part": name, "status": status, "seconds": round(time.perf_counter() - started, 1), "command": command}


def environment() -> dict:
    import torch

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for logs and results (made if missing)")
    parser.add_argument("--data-dir", type=Path, help="Imagenette (train/ and val/); made tiny with --dry-run")
    parser.add_argument("--wheels", type=Path, help="a folder of wheels to install missing packages from")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--dry-run", action="store_true", help="tiny data on the CPU: checks the script, not the GPU")
    args = parser.parse_args(argv)
    if args.data_dir is None and not args.dry_run and "run" in args.parts:
        parser.error("--data-dir is needed for the run part (or use --dry-run)")
    if args.data_dir is not None and not (args.data_dir / "train").is_dir():
        parser.error(f"--data-dir {args.data_dir} has no train/ folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.dry_run and args.data_dir is None:
        sys.path.insert(0, str(ROOT))
        from gnet.testing import make_fixture_dataset

        args.data_dir = make_fixture_dataset(args.out / "fixture", num_classes=3, per_split=8, image_size=80)
    summary = {"dry_run": args.dry_run, "environment": environment(), "parts": []}
    for name in args.parts:
        result = run_part(name, PARTS[name](args), args)
        summary["parts"].append(result)
        print(f"gpu_check: {name}: {result['status']} ({result['seconds']} s)", flush=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")  # after every part
    ok = all(p["status"] in ("passed", "nothing to do") for p in summary["parts"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
