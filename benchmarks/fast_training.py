"""Fast training (issue 13): the decoded cache, the fused 1×1 convolutions and the new LRN, measured side by side.

One run measures five things, each item in a fresh subprocess so that its peak memory is its own (RSS growth on
the CPU, ``torch.cuda.max_memory_allocated`` on CUDA):

1. ``data``: images per second of the loaders alone, no model. The JPEG path (``gnet.data.ImageFolderDataset``
   with the train transform, in a ``DataLoader`` with 0, 1 and 2 workers) against ``gnet.augment.DecodedLoader``
   on the decoded cache (crop, flip and normalise on the CPU, and on CUDA if there is one): batch 128 at 128 px,
   the first batches of one shuffled order of the train split, iterated and thrown away after a few warm-up
   batches. The same for the evaluation path on val. The cache is built once first, into a temporary folder (or
   ``--cache-dir``), and its build time and size are reported apart. Goal: cache ≥ 10 × the 2-worker JPEG path.
2. ``step``: one training step on random tensors (SGD momentum 0.9, aux heads, 1000 classes; batch 16 at 128 px
   by default), as ``train_throughput.py`` measures it, for torchvision's GoogLeNet, gnet's build of it
   (``gnet-tv``) with and without ``fuse_1x1``, and the paper's network with the new LRN, with PyTorch's
   ``nn.LocalResponseNorm`` (the LRN before this issue) and fused; each in NCHW and channels_last, and with
   ``--compile`` also ``torch.compile``d (compile time reported apart). Time per multiply-add compares networks of
   different size: forward MACs per image from fvcore (``gnet.analysis.count_macs``), once per architecture.
   Goals: the paper's network within 10 % of torchvision's time per MAC; fused ``gnet-tv`` ≥ 1.15 × torchvision.
3. ``e2e``: ``python -m gnet.train`` with the recipe of the recorded CPU run
   (``book/recorded_runs/imagenette-cpu/run.json``) for ``--e2e-epochs``, reading JPEGs and with ``--cache``,
   each into a fresh run folder: the epoch time and training images/s from its ``metrics.jsonl``, and the wall
   time of the whole process. The cache is built (or checked) by a warm-up call first, and not timed.
4. Peak memory of every item above (the JPEG workers' peak RSS beside it, where there are workers).
5. ``top1``: the shipped weights (``gnet.googlenet(weights="DEFAULT")``) on the whole val split through the
   JPEG evaluation loader and through ``DecodedLoader(train=False)``. Goal: top-1s within 0.3 points.

    GNET_DATA_DIR=/work/shared/data python benchmarks/fast_training.py                 # everything, ~10-15 min
    python benchmarks/fast_training.py --parts step --compile                          # + torch.compile (slow)
    python benchmarks/fast_training.py --data-batches 3 --steps 2 --e2e-subset-per-class 10 --out /tmp/smoke.json

Results go to ``benchmarks/results/fast-training-<device>-<date>.json``, and print as markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from train_throughput import (
    build,
    forward_macs,
    peak_memory,
    result_path,
    run_single,
    step_speed,
    synchronizer,
    timed_steps,
    training_step,
    versions,
    warm_then_time,
    write_result,
)

PARTS = ("data", "step", "e2e", "top1")
FORMATS = ("nchw", "channels_last")
RECORDED_RUN = Path(__file__).resolve().parent.parent / "book" / "recorded_runs" / "imagenette-cpu" / "run.json"
DATASET_SIZE = "160px"  # the recorded run and the shipped weights are Imagenette-160's
GOALS = {"cache_vs_jpeg": 10.0, "paper_time_per_mac": 1.10, "fused_tv_vs_torchvision": 1.15, "top1_points": 0.3}


class StepModel(NamedTuple):
    base: str  # a train_throughput model: "torchvision", "gnet-tv" or "gnet"
    fuse_1x1: bool = False
    torch_lrn: bool = False  # PyTorch's nn.LocalResponseNorm, gnet's LRN before issue 13


STEP_MODELS = {
    "torchvision": StepModel("torchvision"),
    "gnet-tv": StepModel("gnet-tv"),
    "gnet-tv-fused": StepModel("gnet-tv", fuse_1x1=True),
    "gnet": StepModel("gnet"),
    "gnet-torch-lrn": StepModel("gnet", torch_lrn=True),
    "gnet-fused": StepModel("gnet", fuse_1x1=True),
}


# ------------------------------------------------------------ what the measurements share
def data_root(args: argparse.Namespace) -> Path:
    import gnet.data as gdata

    return gdata.resolve_data_dir(args.data_dir, DATASET_SIZE)


def datasets(args: argparse.Namespace, image_size: int, subset: int | None = None, seed: int = 0) -> dict:
    """``{"train": ..., "val": ...}`` with the book's train and eval transforms, as ``gnet.train`` builds them."""
    import gnet.data as gdata

    train, val = gdata.build_datasets(data_root(args), image_size, subset_per_class=subset, seed=seed)
    return {"train": train, "val": val}


def open_cache(dataset, image_size: int, args: argparse.Namespace, workers: int | None = None):
    """The decoded cache of exactly ``dataset``'s files, in the folder ``gnet.train --cache`` would use."""
    from gnet import cache as gcache

    return gcache.open_split(
        dataset.root,
        gcache.default_cache_size(image_size),
        cache_root=args.cache_dir,
        subset=dataset.samples,
        workers=workers or args.cache_workers,
        log=lambda message: print(message, file=sys.stderr),  # stdout is for the item's JSON
    )


def anon_rss_mb() -> float | None:
    """The process's private (anonymous) resident memory now, from /proc (None elsewhere).

    Peak RSS also counts the pages of the memory-mapped cache that were read: shared page cache, which the kernel
    maps in large blocks around each read and can drop at any time. This is the memory that is the item's own.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("RssAnon:"))
    except (OSError, StopIteration):
        return None


def snapshot() -> tuple[int, float | None]:
    """Where an item's memory growth is counted from: peak RSS so far (KiB) and anonymous RSS now (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, anon_rss_mb()


def workers_peak_mb() -> float | None:
    """Peak RSS of the largest finished child (a DataLoader worker; it counts pages shared with its parent)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 1024 if peak else None


def built_since(folder: Path, since: float) -> bool:
    """Whether the cache in ``folder`` was (re)built after ``since`` (its manifest is written last)."""
    from gnet.cache import MANIFEST_NAME

    return (folder / MANIFEST_NAME).stat().st_mtime >= since


# ------------------------------------------------------------ the items, each run in its own process
def measure_build(split: str, image_size: int, subset: int | None, seed: int, workers: int, args) -> dict:
    """Build (or check) the cache of one split: the one-time cost, kept out of every timing."""
    import torch

    dataset = datasets(args, image_size, subset, seed)[split]
    start, since, started = snapshot(), time.time(), time.perf_counter()
    decoded = open_cache(dataset, image_size, args, workers)
    seconds = time.perf_counter() - started
    return {
        "split": split,
        "subset_per_class": subset,
        "images": len(decoded),
        "size": decoded.size,
        "workers": workers,
        "seconds": seconds,
        "built": built_since(decoded.path, since),
        "gb": decoded.images.nbytes / 1e9,
        "folder": str(decoded.path),
    } | memory(torch.device("cpu"), start)


def data_order(length: int, train: bool, args: argparse.Namespace) -> list[int]:
    """The first batches of one shuffled order (train), or of the split in order (eval), warm-up included."""
    import torch

    needed = (args.data_warmup + args.data_batches) * args.data_batch_size
    if needed > length:
        raise ValueError(f"--data-warmup + --data-batches need {needed} images, the split has {length}")
    order = torch.randperm(length, generator=torch.Generator().manual_seed(0)) if train else torch.arange(length)
    return order[:needed].tolist()


def time_batches(batches, warmup: int, count: int, sync) -> dict:
    """Images per second of ``count`` batches of an iterator, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        next(batches)
    sync()
    images, started = 0, time.perf_counter()
    for _ in range(count):
        images += len(next(batches)[0])
    sync()
    seconds = time.perf_counter() - started
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds}


def jpeg_label(workers: int) -> str:
    return f"JPEG, {workers} worker{'s' if workers != 1 else ''}"


def measure_data(path: str, split: str, how: str, args: argparse.Namespace) -> dict:
    """One loader on its own: ``path`` "jpeg" (``how``: workers) or "cache" (``how``: the device)."""
    import torch

    from gnet.augment import DecodedLoader

    start = snapshot()
    dataset, train = datasets(args, args.image_size)[split], split == "train"
    order = data_order(len(dataset), train, args)
    device = torch.device("cpu" if path == "jpeg" else how)
    if path == "jpeg":
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=args.data_batch_size, sampler=order, num_workers=int(how)
        )
    else:
        decoded = open_cache(dataset, args.image_size, args)
        loader = DecodedLoader(decoded, args.data_batch_size, args.image_size, device, order=order, train=train)
    batches = iter(loader)
    result = time_batches(batches, args.data_warmup, args.data_batches, synchronizer(device))
    del batches  # joins the workers, so that their peak RSS is counted below
    label = jpeg_label(int(how)) if path == "jpeg" else f"cache on {how}"
    workers = path == "jpeg" and how != "0"
    return {"path": path, "split": split, "loader": label, **result} | memory(device, start, workers)


def memory(device, start: tuple[int, float | None], workers: bool = False) -> dict:
    """Peak memory since ``start`` (a :func:`snapshot`): peak RSS and its growth (CUDA: allocated memory), the
    growth of private memory, and with ``workers`` the largest DataLoader worker's peak RSS."""
    record = peak_memory(device, start[0])
    if device.type == "cuda":  # reset after the warm-up of a training step, else never
        record["memory_kind"] = "torch.cuda.max_memory_allocated since the last reset"
    anon = anon_rss_mb()
    record["anon_rss_growth_mb"] = anon - start[1] if anon is not None and start[1] is not None else None
    return record | {"workers_peak_rss_mb": workers_peak_mb()} if workers else record


def build_step_model(name: str):
    from torch import nn

    spec = STEP_MODELS[name]
    model = build(spec.base, **({"fuse_1x1": True} if spec.fuse_1x1 else {}))
    if spec.torch_lrn:  # PyTorch's kernel with gnet's settings: what gnet ran before its banded-conv LRN
        for layer in ("lrn1", "lrn2"):
            lrn = getattr(model, layer)
            setattr(model, layer, nn.LocalResponseNorm(lrn.size, alpha=lrn.alpha, beta=lrn.beta, k=lrn.k))
    return model


def measure_step(name: str, memory_format: str, compiled: bool, args: argparse.Namespace) -> dict:
    """``args.steps`` training steps after ``args.warmup``, as train_throughput.measure times them."""
    import torch

    device = torch.device(args.device)
    torch.manual_seed(0)
    start = snapshot()
    model = build_step_model(name).to(device).train()
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    target = torch.randint(0, 1000, (args.batch_size,), device=device)
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compiled else model
    step, sync = training_step(STEP_MODELS[name].base, model, step_model, images, target), synchronizer(device)
    result = {"model": name, "memory_format": memory_format, "compiled": compiled, "image_size": args.image_size}
    if compiled:  # the first call compiles the forward and the backward
        result["first_step_s"] = timed_steps(step, sync, 1)[0]
    times = warm_then_time(step, sync, device, args.warmup, args.steps)
    return result | step_speed(args.batch_size, times) | memory(device, start)


def recorded_recipe(args: argparse.Namespace) -> dict:
    return json.loads(args.recorded_run.read_text())["config"]


def with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with ``flag``'s value set to ``value`` (replaced where it is given, else appended)."""
    if flag in argv:
        at = argv.index(flag)
        return [*argv[: at + 1], value, *argv[at + 2 :]]
    return [*argv, flag, value]


def e2e_argv(args: argparse.Namespace, out: Path, cache: bool) -> list[str]:
    """The recorded run's ``gnet.train`` arguments with this machine's data, a fresh ``--out`` and the epochs.

    Raises ValueError if the recorded command does not reproduce the recorded config.
    """
    from gnet.train import build_parser, config_from_args

    recorded = json.loads(args.recorded_run.read_text())
    tokens = shlex.split(recorded["command"])
    starts = [i for i, token in enumerate(tokens) if token in ("gnet.train", "gnet-train")]
    if not starts:
        raise ValueError(f"{args.recorded_run}: expected a gnet.train command, got {recorded['command']!r}")
    argv = tokens[starts[0] + 1 :]
    changes = {"--data-dir": str(data_root(args)), "--out": str(out), "--epochs": str(args.e2e_epochs)}
    changes["--device"] = args.device
    if args.e2e_subset_per_class:
        changes["--subset-per-class"] = str(args.e2e_subset_per_class)
    for flag, value in changes.items():
        argv = with_flag(argv, flag, value)
    if cache:
        argv += ["--cache", "--cache-dir", str(args.cache_dir)]
    config = dataclasses.asdict(config_from_args(build_parser().parse_args(argv)))
    ours = {"data_dir", "out", "epochs", "device", "subset_per_class", "cache", "cache_dir"}
    differ = sorted(k for k, v in recorded["config"].items() if k not in ours and config.get(k) != v)
    if differ:
        raise ValueError(f"{args.recorded_run}: its command does not give its config for {', '.join(differ)}")
    return argv


def measure_e2e(path: str, args: argparse.Namespace) -> dict:
    """One ``gnet.train`` run in this process, JPEG (``path`` "jpeg") or ``--cache``; its metrics and memory."""
    import torch

    from gnet import train as gtrain

    out = Path(args.work_dir) / f"e2e-{path}"
    argv = e2e_argv(args, out, cache=path == "cache")
    start, since = snapshot(), time.time()
    code = gtrain.main(argv)
    if code != 0:
        raise RuntimeError(f"gnet.train exited with {code}: python -m gnet.train {shlex.join(argv)}")
    metrics, info = gtrain.read_metrics(out), gtrain.read_run_info(out)
    caches = [Path(folder) for folder in info.get("decoded_cache", [])]
    return {
        "path": path,
        "command": f"python -m gnet.train {shlex.join(argv)}",
        "device": info["device"],
        "train_images": info["train_images"],
        "val_images": info["val_images"],
        "epoch_seconds": [m["seconds"] for m in metrics],
        "train_images_per_s": [m["images_per_s"] for m in metrics],
        "val_top1": [m["val_top1"] for m in metrics],
        "cache_built_during_run": any(built_since(folder, since) for folder in caches),
    } | memory(torch.device(info["device_type"]), start, workers=path == "jpeg")


def measure_top1(path: str, args: argparse.Namespace) -> dict:
    """Top-1 of the shipped weights on the whole val split, reading JPEGs (``path`` "jpeg") or the cache."""
    import torch

    import gnet
    from gnet.augment import DecodedLoader
    from gnet.device import to_device
    from gnet.evaluate import topk_correct

    device, size = torch.device(args.device), gnet.GoogLeNetWeights.DEFAULT.meta["image_size"]
    start = snapshot()
    model = gnet.googlenet(weights="DEFAULT").to(device, memory_format=torch.channels_last).eval()
    val = datasets(args, size)["val"]
    if path == "jpeg":
        loader = torch.utils.data.DataLoader(val, batch_size=args.top1_batch_size, num_workers=args.top1_workers)
    else:
        loader = DecodedLoader(open_cache(val, size, args), args.top1_batch_size, size, device)
    correct, predictions, started = 0, [], time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = to_device(images, targets, device)
            logits = model(images).float()
            correct += topk_correct(logits, targets, (1,))[0]
            predictions += logits.argmax(dim=1).tolist()
    seconds = time.perf_counter() - started
    return {
        "path": path,
        "images": len(predictions),
        "top1": correct / len(predictions),
        "seconds": seconds,
        "images_per_s": len(predictions) / seconds,
        "predictions": predictions,
    } | memory(device, start, workers=path == "jpeg" and args.top1_workers > 0)


def run_item(item: str, args: argparse.Namespace) -> dict:
    """Measure one item (``kind:field:...``, as :class:`Children` names them) in this process."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    kind, *fields = item.split(":")
    if kind == "build":
        split, size, subset, seed, workers = fields
        return measure_build(split, int(size), int(subset) or None, int(seed), int(workers), args)
    if kind == "data":
        return measure_data(*fields, args)
    if kind == "step":
        name, memory_format, mode = fields
        return measure_step(name, memory_format, mode == "compiled", args)
    if kind == "e2e":
        return measure_e2e(fields[0], args)
    if kind == "top1":
        return measure_top1(fields[0], args)
    raise ValueError(f"unknown item {item!r}")


# ------------------------------------------------------------ the parts, in the parent process
@dataclasses.dataclass
class Children:
    """Runs each item as ``this script ARGV --single ITEM`` and keeps the cache builds it has asked for."""

    argv: list[str]
    builds: dict = dataclasses.field(default_factory=dict)

    def run(self, item: str) -> dict:
        print(f"  measuring {item}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            result = run_single([sys.executable, str(Path(__file__).resolve()), *self.argv, "--single", item])
        except RuntimeError as error:
            raise RuntimeError(f"{item} failed:\n{error}") from None
        return result | {"process_wall_s": time.perf_counter() - started}

    def cache(self, split: str, image_size: int, subset: int | None = None, seed: int = 0, workers: int = 2) -> dict:
        """Build (or check) one split's cache once per run, before anything that reads it is timed."""
        key = (split, image_size, subset, seed if subset else 0)
        if key not in self.builds:
            self.builds[key] = self.run(f"build:{split}:{image_size}:{subset or 0}:{seed}:{workers}")
        return self.builds[key]


def cache_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def data_part(args: argparse.Namespace, children: Children) -> dict:
    builds = [children.cache(split, args.image_size, workers=args.cache_workers) for split in ("train", "val")]
    items = []
    for split in ("train", "val"):
        items += [children.run(f"data:jpeg:{split}:{workers}") for workers in args.jpeg_workers]
        items += [children.run(f"data:cache:{split}:{device}") for device in cache_devices()]
    most = max(args.jpeg_workers)
    for item in items:
        reference = next(r for r in items if r["split"] == item["split"] and r["loader"] == jpeg_label(most))
        item["vs_jpeg_most_workers"] = item["images_per_s"] / reference["images_per_s"]
    train_cpu = next(r for r in items if r["split"] == "train" and r["loader"] == "cache on cpu")
    return {
        "cache_builds": builds,
        "reference": jpeg_label(most),
        "items": items,
        "cache_vs_jpeg_train": train_cpu["vs_jpeg_most_workers"],
    }


def find(results: list[dict], **match) -> dict | None:
    return next((r for r in results if all(r.get(k) == v for k, v in match.items())), None)


def speedup(result: dict, reference: dict | None) -> float | None:
    return result["images_per_s"] / reference["images_per_s"] if reference else None


def compare_steps(results: list[dict], macs: dict) -> None:
    """Add to each step result its ratios to torchvision's, its time per MAC relative to it, and fused vs not."""
    for r in results:
        spec, fmt, compiled = STEP_MODELS[r["model"]], r["memory_format"], r["compiled"]
        r["forward_macs_per_image"] = macs.get(spec.base)
        # a compiled model against compiled torchvision where that was measured, else against torchvision eager
        same = find(results, model="torchvision", memory_format=fmt, compiled=compiled) or find(
            results, model="torchvision", memory_format=fmt, compiled=False
        )
        r["torchvision_reference"] = same and f"{fmt}, {'compiled' if same['compiled'] else 'eager'}"
        r["vs_torchvision_nchw"] = speedup(r, find(results, model="torchvision", memory_format="nchw", compiled=False))
        r["vs_torchvision_same_format"] = speedup(r, same)
        known = same and r["forward_macs_per_image"] and macs.get("torchvision")
        # (seconds per image / MACs per image) over torchvision's: below 1, each multiply-add costs less
        r["time_per_mac_vs_torchvision"] = (
            same["images_per_s"] * macs["torchvision"] / (r["images_per_s"] * r["forward_macs_per_image"])
            if known
            else None
        )
        unfused = find(results, model=spec.base, memory_format=fmt, compiled=compiled) if spec.fuse_1x1 else None
        r["vs_unfused"] = speedup(r, unfused)
        torch_lrn = find(results, model="gnet-torch-lrn", memory_format=fmt, compiled=compiled)
        r["vs_torch_lrn"] = speedup(r, torch_lrn) if r["model"] == "gnet" else None


def step_part(args: argparse.Namespace, children: Children) -> dict:
    configs = [(model, fmt, "eager") for model in args.models for fmt in args.formats]
    if args.compile:
        configs += [(model, fmt, "compiled") for model in args.compile_models for fmt in args.compile_formats]
    results = [children.run(f"step:{model}:{fmt}:{mode}") for model, fmt, mode in configs]
    macs = {}
    for base in sorted({STEP_MODELS[r["model"]].base for r in results}):
        try:  # fused and torch-LRN variants are the same arithmetic: one count per architecture
            macs[base] = forward_macs(base, args.image_size)
        except ImportError:
            print(f"fvcore missing: no MACs for {base}", file=sys.stderr)
    compare_steps(results, macs)
    return {"forward_macs_per_image": macs, "results": results}


def e2e_part(args: argparse.Namespace, children: Children) -> dict:
    recipe = recorded_recipe(args)
    subset, workers = args.e2e_subset_per_class, max(1, recipe["workers"])
    warmup = [children.cache(s, recipe["image_size"], subset, recipe["seed"], workers) for s in ("train", "val")]
    runs = [children.run(f"e2e:{path}") for path in ("jpeg", "cache")]
    jpeg, cache = runs
    return {
        "recorded_run": os.path.relpath(args.recorded_run),
        "subset_per_class": subset,
        "cache_warmup": warmup,
        "runs": runs,
        "jpeg_vs_cache_epoch_time": sum(jpeg["epoch_seconds"]) / sum(cache["epoch_seconds"]),
    }


def top1_part(args: argparse.Namespace, children: Children) -> dict:
    import gnet

    weights = gnet.GoogLeNetWeights.DEFAULT
    val_cache = children.cache("val", weights.meta["image_size"], workers=args.cache_workers)
    jpeg, cache = (children.run(f"top1:{path}") for path in ("jpeg", "cache"))
    differ = sum(a != b for a, b in zip(jpeg.pop("predictions"), cache.pop("predictions"), strict=True))
    return {
        "weights": weights.meta["run"],
        "recorded_val_top1": weights.meta["val_top1"],
        "cache_build": val_cache,
        "runs": [jpeg, cache],
        "difference_points": 100 * (cache["top1"] - jpeg["top1"]),
        "predictions_that_differ": differ,
    }


# ------------------------------------------------------------ printing
def table(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):  # megabytes and images/s whole, ratios to two places
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def goal(text: str, value: float | None, target: float, at_least: bool = True) -> str:
    if value is None:
        return f"- {text}: not measured"
    met = value >= target if at_least else value <= target
    return f"- {text}: {value:.2f} (goal {'≥' if at_least else '≤'} {target}: {'met' if met else 'missed'})"


MEMORY_HEADERS = ["peak MB", "peak +MB", "private +MB", "workers' peak MB"]


def memory_cells(r: dict) -> list:
    """Peak RSS (CUDA: allocated), its growth, the growth of private memory, and the largest worker's peak."""
    keys = ("peak_memory_mb", "peak_memory_above_start_mb", "anon_rss_growth_mb", "workers_peak_rss_mb")
    return [r.get(key) for key in keys]


def print_data(part: dict) -> None:
    print("\n## Data only (no model)\n")
    headers = ["split", "loader", "img/s", f"vs {part['reference']}", *MEMORY_HEADERS]
    rows = [[r["split"], r["loader"], r["images_per_s"], r["vs_jpeg_most_workers"], *memory_cells(r)]
            for r in part["items"]]  # fmt: skip
    print(table(headers, rows))
    print()
    for b in part["cache_builds"]:
        state = "built" if b["built"] else "already there, checked"
        print(f"- one-time cache of {b['split']} (excluded above): {b['images']} images at {b['size']} px, "
              f"{b['gb']:.2f} GB, {state} in {b['seconds']:.1f} s with {b['workers']} threads, "
              f"peak RSS +{b['peak_memory_above_start_mb']:.0f} MB")  # fmt: skip
    print(goal(f"cache on cpu / {part['reference']}, train", part["cache_vs_jpeg_train"], GOALS["cache_vs_jpeg"]))


def print_step(part: dict, args: argparse.Namespace) -> None:
    print(f"\n## One training step (batch {args.batch_size}, {args.image_size} px, {args.device})\n")
    headers = ["model", "format", "compiled", "img/s", "vs tv nchw", "vs tv same format", "fwd GMAC/img"]
    headers += ["time/MAC vs tv", "vs unfused", "vs torch LRN", "first step s", *MEMORY_HEADERS[:3]]
    rows = []
    for r in part["results"]:
        macs = r["forward_macs_per_image"] / 1e9 if r["forward_macs_per_image"] else None
        rows.append(
            [r["model"], r["memory_format"], r["compiled"], r["images_per_s"], r["vs_torchvision_nchw"]]
            + [r["vs_torchvision_same_format"], macs, r["time_per_mac_vs_torchvision"], r["vs_unfused"]]
            + [r["vs_torch_lrn"], r.get("first_step_s"), *memory_cells(r)[:3]]
        )
    print(table(headers, rows))
    print()
    for fmt in FORMATS:
        paper = find(part["results"], model="gnet", memory_format=fmt, compiled=False)
        fused = find(part["results"], model="gnet-tv-fused", memory_format=fmt, compiled=False)
        value = paper and paper["time_per_mac_vs_torchvision"]
        print(goal(f"{fmt}: paper's network, time per MAC / torchvision's", value, GOALS["paper_time_per_mac"], False))
        value = fused and fused["vs_torchvision_same_format"]
        print(goal(f"{fmt}: gnet-tv fused / torchvision {fmt}", value, GOALS["fused_tv_vs_torchvision"]))
        if fmt != "nchw":
            value, text = fused and fused["vs_torchvision_nchw"], f"{fmt}: gnet-tv fused / torchvision nchw (shipped)"
            print(goal(text, value, GOALS["fused_tv_vs_torchvision"]))


def print_e2e(part: dict) -> None:
    print(f"\n## End to end: the recipe of {part['recorded_run']}\n")
    headers = ["path", "epoch s (train + val)", "train img/s", "process wall s", *MEMORY_HEADERS]
    rows = [
        [r["path"], sum(r["epoch_seconds"]), sum(r["train_images_per_s"]) / len(r["train_images_per_s"])]
        + [r["process_wall_s"], *memory_cells(r)]
        for r in part["runs"]
    ]
    print(table(headers, rows))
    jpeg = part["runs"][0]
    scope = f"{jpeg['train_images']} train / {jpeg['val_images']} val images, {len(jpeg['epoch_seconds'])} epoch(s)"
    if part["subset_per_class"]:
        scope += f", a SUBSET of {part['subset_per_class']} images per class (a smoke run, not the recipe's epoch)"
    print(f"\n{scope}; JPEG / cache epoch time: {part['jpeg_vs_cache_epoch_time']:.2f}.")
    seconds = sum(b["seconds"] for b in part["cache_warmup"])
    built = "built in this run" if any(b["built"] for b in part["cache_warmup"]) else "already there, checked"
    print(f"The cache was {built} before the timed runs ({seconds:.1f} s, excluded).")
    if any(r["cache_built_during_run"] for r in part["runs"]):
        print("WARNING: a cache was built during a timed run; its time includes the build.")
    for r in part["runs"]:
        print(f"- {r['path']}: `{r['command']}`")


def print_top1(part: dict) -> None:
    print(f"\n## Same top-1 through both paths: weights {part['weights']}\n")
    rows = [[r["path"], r["images"], 100 * r["top1"], r["seconds"], r["images_per_s"], *memory_cells(r)]
            for r in part["runs"]]  # fmt: skip
    print(table(["path", "images", "top-1 %", "seconds", "img/s", *MEMORY_HEADERS], rows))
    print(f"\nrecorded top-1: {100 * part['recorded_val_top1']:.2f} %; "
          f"{part['predictions_that_differ']} of {rows[0][1]} predictions differ between the paths")  # fmt: skip
    print(goal("|cache - JPEG| top-1, points", abs(part["difference_points"]), GOALS["top1_points"], False))


# ------------------------------------------------------------ the outline
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="for step, e2e, top1")
    parser.add_argument("--data-dir", help="folder with train/ and val/, or one holding imagenette2-160/")
    parser.add_argument("--image-size", type=int, default=128, help="crop size of the data and step parts")
    parser.add_argument("--cache-dir", type=Path, help="cache root [a temporary folder, removed at the end]")
    parser.add_argument("--cache-workers", type=int, default=2, help="decoding threads of the cache build")
    parser.add_argument("--data-batch-size", type=int, default=128)
    parser.add_argument("--data-batches", type=int, default=20, help="timed batches per loader")
    parser.add_argument("--data-warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--jpeg-workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=16, help="of the training step")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--models", nargs="+", default=list(STEP_MODELS), choices=STEP_MODELS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models (minutes each)")
    parser.add_argument("--compile-models", nargs="+", default=["gnet-tv-fused", "gnet"], choices=STEP_MODELS)
    parser.add_argument("--compile-formats", nargs="+", default=["channels_last"], choices=FORMATS)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--recorded-run", type=Path, default=RECORDED_RUN, help="run.json of the e2e recipe")
    parser.add_argument("--e2e-epochs", type=int, default=1)
    parser.add_argument("--e2e-subset-per-class", type=int, help="train on this many images per class (smoke)")
    parser.add_argument("--top1-batch-size", type=int, default=128)
    parser.add_argument("--top1-workers", type=int, default=1, help="DataLoader workers of the JPEG top-1 run")
    parser.add_argument("--out", type=Path, help="result file [benchmarks/results/fast-training-<device>-<date>.json]")
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)  # the parent's temporary folder
    parser.add_argument("--single", help=argparse.SUPPRESS)  # measure one item, print JSON
    args = parser.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in ("data_batch_size", "data_batches", "batch_size", "steps", "e2e_epochs", "cache_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.jpeg_workers) < 0 or args.data_warmup < 0 or args.warmup < 0:
        parser.error("--jpeg-workers, --data-warmup and --warmup must be at least 0")
    return args


def check_e2e(args: argparse.Namespace) -> None:
    """Fail before anything runs if the e2e command cannot be built or a subset gives no whole batch."""
    e2e_argv(args, Path(args.work_dir) / "check", cache=True)
    subset, recipe = args.e2e_subset_per_class, recorded_recipe(args)
    classes = sum(1 for entry in os.scandir(data_root(args) / "train") if entry.is_dir())
    if subset and subset * classes < recipe["batch_size"]:
        raise ValueError(
            f"--e2e-subset-per-class {subset} gives {subset * classes} images, fewer than one batch of "
            f"{recipe['batch_size']}: use at least {-(-recipe['batch_size'] // classes)}"
        )


def header(args: argparse.Namespace, argv: list[str]) -> dict:
    import numpy
    import PIL

    from gnet.device import device_name
    from gnet.provenance import git_commit

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # as in each measurement, so that the device name says it
    return {
        "benchmark": "fast_training (issue 13)",
        "device": device_name(args.device),
        "device_type": args.device,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": shlex.join(["python", os.path.relpath(__file__), *argv]),
        "versions": versions() | {"numpy": numpy.__version__, "pillow": PIL.__version__},
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("single", "work_dir")
        },
        "goals": GOALS,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.single:
        print(json.dumps(run_item(args.single, args)))
        return 0
    parts = {"data": data_part, "step": step_part, "e2e": e2e_part, "top1": top1_part}
    printers = {"data": print_data, "step": lambda p: print_step(p, args), "e2e": print_e2e, "top1": print_top1}
    report = header(args, argv)  # before the temporary folders: settings say what was asked for
    with tempfile.TemporaryDirectory(prefix="gnet-fast-training-") as work:
        args.work_dir, args.cache_dir = Path(work), args.cache_dir or Path(work) / "cache"
        children = Children([*argv, "--work-dir", work, "--cache-dir", str(args.cache_dir)])
        try:
            if "e2e" in args.parts:
                check_e2e(args)
            for name in (part for part in PARTS if part in args.parts):  # in this order: data builds the cache
                report[name] = parts[name](args, children)
                printers[name](report[name])
        except (RuntimeError, ValueError, OSError) as error:
            print(f"fast_training: error: {error}", file=sys.stderr)
            return 1
    print()
    write_result(report, args.out or result_path(report["device"], prefix="fast-training-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
