"""fp32 against bf16 autocast on this CPU: the training step, side by side, and the shipped weights' top-1.

Two parts, in one run:

* ``step``: one training step (SGD momentum 0.9, aux heads, 10 classes, channels-last as ``gnet.train`` runs it) of
  torchvision's googlenet and of gnet's recipe network (BatchNorm, no LRN) at width 1/4 and full width, each with
  and without BatchNorm, at batch 64 and 128 px. Each model runs in its own process and **alternates** fp32 and
  bf16 steps, so that whatever else the machine does slows both alike: compare the two columns of one row.
* ``top1``: the registered weights (``gnet.GoogLeNetWeights``, each of them) on the whole validation split through
  the decoded cache, under fp32 and under bf16 autocast: both top-1s and how many predictions differ.

``gnet.device.precision_choice`` makes bf16 the CPU default where the processor has AMX or AVX512-BF16; this is the
measurement that backs that choice on the processor it runs on (its name and extension are in the result).

    python benchmarks/cpu_precision.py                       # both parts; top1 needs Imagenette
    python benchmarks/cpu_precision.py --parts step --rounds 2 --batch-size 8 --image-size 64   # a quick look

Results go to ``benchmarks/results/cpu-precision-<device>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import result_path, versions, write_result  # noqa: E402

# name -> gnet.googlenet switches (None: torchvision's googlenet). The recorded recipe is "gnet-w0.25-bn".
MODELS = {
    "torchvision": None,
    "gnet-w0.25-bn": {"width": 0.25, "batch_norm": True},
    "gnet-w0.25": {"width": 0.25, "batch_norm": False},
    "gnet-w1-bn": {"width": 1.0, "batch_norm": True},
    "gnet-w1": {"width": 1.0, "batch_norm": False},
}
PARTS = ("step", "top1")


def build(name: str):
    import torchvision

    import gnet

    if MODELS[name] is None:
        return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=10)
    return gnet.googlenet(num_classes=10, lrn=False, **MODELS[name])


def loss_of(output, target):
    import torch.nn.functional as F

    import gnet

    if isinstance(output, gnet.GoogLeNetOutput):
        return gnet.googlenet_loss(output, target)
    # torchvision's GoogLeNetOutputs, read by name: the same main + 0.3 x each aux loss.
    aux = F.cross_entropy(output.aux_logits1, target) + F.cross_entropy(output.aux_logits2, target)
    return F.cross_entropy(output.logits, target) + 0.3 * aux


def measure_step(name: str, args: argparse.Namespace) -> dict:
    """Alternate fp32 and bf16 training steps of one model; the seconds of each."""
    import torch

    torch.manual_seed(0)
    model = build(name).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=2e-4)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    images = images.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 10, (args.batch_size,))

    def step(bf16: bool) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(model(images), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    for _ in range(args.warmup):  # oneDNN builds its kernels for each precision on first use
        step(False), step(True)
    seconds = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        seconds["fp32"].append(step(False))
        seconds["bf16"].append(step(True))
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "seconds": seconds}


def measure_top1(name: str, args: argparse.Namespace) -> dict:
    """Registered weights ``name`` on the whole validation split, fp32 and bf16, through the decoded cache."""
    import torch

    import gnet
    import gnet.data as gdata
    from gnet import cache as gcache
    from gnet.augment import DecodedLoader
    from gnet.evaluate import topk_correct

    weights = gnet.GoogLeNetWeights[name]
    size = weights.meta["image_size"]
    model = gnet.googlenet(weights=name).to(memory_format=torch.channels_last).eval()
    _, val = gdata.build_datasets(gdata.resolve_data_dir(args.data_dir, "160px"), size)
    split = gcache.open_split(val.root, gcache.default_cache_size(size), subset=val.samples, log=print)
    runs = {}
    for precision in ("fp32", "bf16"):
        predictions, correct, started = [], 0, time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            for images, targets in DecodedLoader(split, 128, size, torch.device("cpu")):
                logits = model(images.contiguous(memory_format=torch.channels_last)).float()
                correct += topk_correct(logits, targets, (1,))[0]
                predictions += logits.argmax(dim=1).tolist()
        seconds = time.perf_counter() - started
        runs[precision] = {"top1": correct / len(predictions), "images": len(predictions), "seconds": seconds}
        runs[precision]["predictions"] = predictions
    differ = sum(a != b for a, b in zip(runs["fp32"].pop("predictions"), runs["bf16"].pop("predictions"), strict=True))
    return {
        "weights": weights.name,
        "recorded_val_top1": weights.meta["val_top1"],
        "runs": runs,
        "predictions_that_differ": differ,
        "bf16_minus_fp32_points": 100 * (runs["bf16"]["top1"] - runs["fp32"]["top1"]),
    }


def in_child(item: str, argv: list[str]) -> dict:
    """Run one item of this script in a fresh process (its own memory and oneDNN kernel cache); its JSON."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--single", item]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{item}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(step: dict, batch_size: int) -> dict:
    medians = {p: statistics.median(step["seconds"][p]) for p in ("fp32", "bf16")}
    return step | {
        "fp32_images_per_s": batch_size / medians["fp32"],
        "bf16_images_per_s": batch_size / medians["bf16"],
        "bf16_speedup": medians["fp32"] / medians["bf16"],
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--weights", nargs="+", help="registered weights for top1 [all of gnet.GoogLeNetWeights]")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6, help="timed fp32 + bf16 step pairs per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--data-dir", type=Path, help="Imagenette for top1 (else GNET_DATA_DIR, as gnet finds it)")
    parser.add_argument("--out", type=Path, help="result file [benchmarks/results/cpu-precision-<device>-<date>.json]")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # one item, in a child process
    args = parser.parse_args(argv)
    for name in ("batch_size", "image_size", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    import gnet

    registered = [w.name for w in gnet.GoogLeNetWeights if w.name != "DEFAULT"]
    args.weights = args.weights or registered
    if unknown := sorted(set(args.weights) - set(registered)):
        parser.error(f"--weights must be among {registered}, got {unknown}")
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        kind, _, name = args.single.partition(":")
        result = measure_top1(name, args) if kind == "top1" else measure_step(name, args)
        print(json.dumps(result))
        return 0

    from gnet.device import cpu_bf16_extension, device_name
    from gnet.provenance import git_commit

    report = {
        "benchmark": "cpu_precision (issue 28)",
        "device": device_name("cpu"),
        "bf16_extension": cpu_bf16_extension(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": shlex.join(["python", os.path.relpath(__file__), *argv]),
        "versions": versions(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "single"},
    }
    try:
        if "step" in args.parts:
            report["step"] = [summarise(in_child(f"step:{name}", argv), args.batch_size) for name in args.models]
            print(f"{report['device']}: training step, batch {args.batch_size} at {args.image_size} px")
            print(f"{'model':<15} {'params':>11} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16 x':>7}")
            for r in report["step"]:
                print(
                    f"{r['model']:<15} {r['parameters']:>11,} {r['fp32_images_per_s']:>11.1f} "
                    f"{r['bf16_images_per_s']:>11.1f} {r['bf16_speedup']:>7.2f}"
                )
        if "top1" in args.parts:
            report["top1"] = [in_child(f"top1:{name}", argv) for name in args.weights]
            for top1 in report["top1"]:
                for precision, run in top1["runs"].items():
                    print(f"{top1['weights']} {precision}: top-1 {100 * run['top1']:.2f} % on {run['images']} images")
                points, differ = top1["bf16_minus_fp32_points"], top1["predictions_that_differ"]
                print(f"{top1['weights']} bf16 - fp32: {points:+.2f} points, {differ} predictions differ")
    except RuntimeError as error:
        print(f"cpu_precision: error: {error}", file=sys.stderr)
        return 1
    write_result(report, args.out or result_path(report["device"], prefix="cpu-precision-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
