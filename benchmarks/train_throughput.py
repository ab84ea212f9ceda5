"""Training throughput of gnet's GoogLeNet against torchvision's, on the same batch, size and precision.

Four models, each with its auxiliary heads and 1000 classes, trained with SGD on random tensors (so the numbers
measure the network, not JPEG decoding):

* ``gnet``: the paper's network (LRN, 5×5 branches, no BatchNorm);
* ``gnet-tv``: ``gnet.googlenet(**gnet.TORCHVISION_CONFIG)``, torchvision's architecture built by gnet;
* ``gnet-tv-fused``: the same with ``fuse_1x1=True`` (each module's three 1×1 convolutions on its input as one);
* ``torchvision``: ``torchvision.models.googlenet(weights=None, aux_logits=True)``.

Each (model, image size) runs in a fresh subprocess so that peak memory is its own. On CUDA it also reports
MFU: training FLOPs per image are taken as 3 × forward MACs × 2 (forward, plus a backward of about twice the
forward), with forward MACs from fvcore (convolutions and linear layers, eval mode). fvcore is optional: pass
``--macs-json`` with counts written on another machine by ``--write-macs-json``.

    python benchmarks/train_throughput.py --batch-size 16 --image-sizes 128 --steps 5 --warmup 2   # CPU, small
    python benchmarks/train_throughput.py --precision bf16 --batch-size 256 --image-sizes 224 --compile
    python benchmarks/train_throughput.py --write-macs-json macs.json --image-sizes 224   # on a CPU machine

Results go to ``benchmarks/results/<device>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("gnet", "gnet-tv", "gnet-tv-fused", "torchvision")
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Dense peak throughput in FLOP/s for the precision PyTorch actually uses. fp32 convolutions run as TF32 on
# Ampere and later (torch.backends.cudnn.allow_tf32 defaults to True), so fp32 uses the TF32 peak there.
# Sources: NVIDIA data sheets (H100/H200 SXM, A100 SXM, L4, T4, V100 SXM2).
PEAK_FLOPS = {
    "H200": {"bf16": 989.4e12, "fp32": 494.7e12},
    "H100": {"bf16": 989.4e12, "fp32": 494.7e12},
    "A100": {"bf16": 312e12, "fp32": 156e12},
    "L4": {"bf16": 121e12, "fp32": 60e12},
    "T4": {"bf16": 65e12, "fp32": 8.1e12},  # no bf16 tensor cores: fp16's peak is the best case
    "V100": {"bf16": 125e12, "fp32": 15.7e12},
}


def build(name: str, **switches):
    """One of ``MODELS``; ``switches`` (e.g. ``fuse_1x1=True``) go to ``gnet.googlenet`` for the gnet ones."""
    import torchvision

    import gnet

    if name == "gnet":
        return gnet.googlenet(**switches)
    if name == "gnet-tv":
        return gnet.googlenet(**gnet.TORCHVISION_CONFIG, **switches)
    if name == "gnet-tv-fused":
        return gnet.googlenet(**gnet.TORCHVISION_CONFIG, fuse_1x1=True, **switches)
    if name == "torchvision" and not switches:
        return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    if name == "torchvision":
        raise ValueError(f"torchvision's googlenet takes no gnet switches, got {sorted(switches)}")
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")


def loss_of(name: str, output, target):
    import torch.nn.functional as F

    import gnet

    if name.startswith("gnet"):
        return gnet.googlenet_loss(output, target)
    # torchvision's GoogLeNetOutputs: read by name (its positional order is logits, aux2, aux1).
    return F.cross_entropy(output.logits, target) + 0.3 * (
        F.cross_entropy(output.aux_logits1, target) + F.cross_entropy(output.aux_logits2, target)
    )


def forward_macs(name: str, image_size: int) -> int:
    """Forward MACs (conv + linear, eval mode) of one image, with fvcore through gnet.analysis."""
    from gnet.analysis import count_macs

    return count_macs(build(name), (1, 3, image_size, image_size), ops=("conv", "linear")).total


def measure(name: str, image_size: int, args: argparse.Namespace) -> dict:
    """Time ``args.steps`` training steps after ``args.warmup``; runs in its own process."""
    import torch

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = build(name).to(device).train()
    bf16 = args.precision == "bf16"
    if bf16 and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    images = torch.randn(args.batch_size, 3, image_size, image_size, device=device)
    if bf16 and device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (args.batch_size,), device=device)
    step = training_step(name, model, step_model, images, target, bf16=bf16)
    sync = synchronizer(device)

    times = warm_then_time(step, sync, device, args.warmup, args.steps)
    return {"model": name, "image_size": image_size, **step_speed(args.batch_size, times)} | peak_memory(
        device, rss_before
    )


def training_step(name: str, model, step_model, images, target, *, bf16: bool = False):
    """A function that makes one SGD step (momentum 0.9) of ``step_model`` (``model`` or its compiled form)."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=2e-4)

    def step() -> None:
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(name, step_model(images), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def synchronizer(device):
    """A function that waits for ``device`` to finish its queued work (nothing to wait for on the CPU)."""
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else lambda: None


def warm_then_time(step, sync, device, warmup: int, steps: int) -> list[float]:
    """``warmup`` untimed steps, then the seconds of each of ``steps`` timed ones (CUDA peak memory reset between)."""
    import torch

    for _ in range(warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return timed_steps(step, sync, steps)


def timed_steps(step, sync, count: int) -> list[float]:
    """Seconds of each of ``count`` calls of ``step``, each waited for."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def step_speed(batch_size: int, times: list[float]) -> dict:
    return {
        "images_per_s": batch_size * len(times) / sum(times),
        "step_ms_median": 1000 * statistics.median(times),
        "step_ms_min": 1000 * min(times),
    }


def peak_memory(device, rss_before_kib: int) -> dict:
    """Peak memory since the last reset: ``max_memory_allocated`` on CUDA, else the process's peak RSS and its
    growth since ``rss_before_kib`` (a ``ru_maxrss`` reading taken before the measured work)."""
    import torch

    if device.type == "cuda":
        return {
            "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20,
            "memory_kind": "torch.cuda.max_memory_allocated (steady-state steps)",
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "peak_memory_mb": peak / 1024,
        "peak_memory_above_start_mb": (peak - rss_before_kib) / 1024,
        "memory_kind": "peak RSS of the process (ru_maxrss)",
    }


def run_single(command: list[str]) -> dict:
    """Run ``command`` (this script or another with ``--single``) and return the JSON of its last line."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions() -> dict:
    from gnet.provenance import versions as gnet_versions

    return gnet_versions()


def result_path(device_label: str, prefix: str = "") -> Path:
    """``benchmarks/results/<prefix><device slug>-<date>.json``."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_label.lower()).strip("-")[:40]
    return RESULTS_DIR / f"{prefix}{slug}-{dt.date.today().isoformat()}.json"


def peak_flops(device_label: str, precision: str, override_tflops: float | None) -> tuple[float | None, str]:
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    for key, peaks in PEAK_FLOPS.items():
        if re.search(rf"\b{key}\b", device_label):
            return peaks[precision], f"data sheet of {key} ({precision}{'/TF32' if precision == 'fp32' else ''})"
    return None, "unknown device: pass --peak-tflops"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast + channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile each model (warmup covers compiling)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--macs-json", type=Path, help="forward MACs per image, from --write-macs-json")
    parser.add_argument("--write-macs-json", type=Path, help="count forward MACs with fvcore, write them, exit")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s for MFU (else a table)")
    parser.add_argument("--out", type=Path, help="result file [benchmarks/results/<device>-<date>.json]")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # "model:size": measure one, print JSON
    args = parser.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in ("batch_size", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.single:
        name, size = args.single.split(":")
        print(json.dumps(measure(name, int(size), args)))
        return 0
    if args.write_macs_json:
        macs = {f"{m}@{s}": forward_macs(m, s) for m in args.models for s in args.image_sizes}
        args.write_macs_json.write_text(json.dumps(macs, indent=2) + "\n")
        print(f"wrote {args.write_macs_json}")
        return 0

    import torch

    from gnet.device import device_name

    if args.threads:
        torch.set_num_threads(args.threads)  # as in each measurement, so that the device name says it
    device_label = device_name(args.device)
    macs = json.loads(args.macs_json.read_text()) if args.macs_json else {}
    passthrough = [
        "--device", args.device, "--batch-size", str(args.batch_size), "--precision", args.precision,
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
    ]  # fmt: skip
    if args.compile:
        passthrough.append("--compile")
    results = []
    for size in args.image_sizes:
        for name in args.models:
            command = [sys.executable, str(Path(__file__).resolve()), *passthrough, "--single", f"{name}:{size}"]
            try:
                result = run_single(command)
            except RuntimeError as error:
                print(f"{name} at {size} px failed:\n{error}", file=sys.stderr)
                return 1
            key = f"{name}@{size}"
            if key not in macs:
                try:
                    macs[key] = forward_macs(name, size)
                except ImportError:
                    print(f"fvcore missing: no MFU for {key} (use --macs-json)", file=sys.stderr)
            result["forward_macs_per_image"] = macs.get(key)
            results.append(result)

    peak, peak_source = peak_flops(device_label, args.precision, args.peak_tflops)
    for result in results:
        reference = next(
            r for r in results if r["model"] == "torchvision" and r["image_size"] == result["image_size"]
        ) if "torchvision" in args.models else None  # fmt: skip
        result["speed_vs_torchvision"] = (
            result["images_per_s"] / reference["images_per_s"] if reference is not None else None
        )
        flops_per_s = (
            result["images_per_s"] * 3 * 2 * result["forward_macs_per_image"]
            if result["forward_macs_per_image"]
            else None
        )
        result["training_tflops"] = flops_per_s / 1e12 if flops_per_s else None
        result["mfu"] = flops_per_s / peak if (flops_per_s and peak and args.device == "cuda") else None

    print(f"\n{device_label} | batch {args.batch_size} | {args.precision} | compile {args.compile} | "
          f"{args.steps} steps after {args.warmup} warmup | torch {torch.__version__}")  # fmt: skip
    print(f"{'model':<12} {'px':>4} {'img/s':>9} {'vs tv':>6} {'step ms':>8} {'peak MB':>8} {'MFU':>6}")
    for r in results:
        ratio = f"{r['speed_vs_torchvision']:.2f}" if r["speed_vs_torchvision"] else "-"
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "-"
        print(
            f"{r['model']:<12} {r['image_size']:>4} {r['images_per_s']:>9.1f} {ratio:>6} "
            f"{r['step_ms_median']:>8.0f} {r['peak_memory_mb']:>8.0f} {mfu:>6}"
        )

    report = {
        "device": device_label,
        "device_type": args.device,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "settings": {
            "batch_size": args.batch_size,
            "precision": args.precision,
            "channels_last": args.precision == "bf16" and args.device == "cuda",
            "compile": args.compile,
            "steps": args.steps,
            "warmup": args.warmup,
            "threads": args.threads or torch.get_num_threads(),
            "data": "random tensors, 1000 classes, aux heads on, SGD momentum 0.9",
        },
        "peak_flops": peak,
        "peak_flops_source": peak_source,
        "flops_model": "training FLOPs/image = 3 x forward MACs x 2",
        "results": results,
    }
    write_result(report, args.out or result_path(device_label))
    return 0


def write_result(report: dict, out: Path) -> None:
    """The result file: indented JSON, its folder made if needed, its path printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {os.path.relpath(out)}")


if __name__ == "__main__":
    sys.exit(main())
