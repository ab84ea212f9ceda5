"""Measure the shipped GoogLeNet against the same network at random; write the results beside its recorded run.

    python scripts/analyse_trained.py [--data-dir DIR] [--out book/recorded_runs/imagenette-cpu/analysis.json]

What it measures (see gnet/book/trained.py for each quantity), on the Imagenette validation split:

* the 36 branch ablations (top-1 with one branch of one module zeroed, and again with the branch replaced by its
  mean output) on all validation images, and each branch's share of its module's output energy: chapter 5;
* the channel correlation matrix of the features that enter 3a and 4d, the correlation length of every stage's
  features, and the effective receptive field of four stages, trained and random: chapter 2.

It takes a few minutes on 2 CPU cores, more than a chapter's build budget, so the chapters read this file and
re-measure a part of it when the dataset is there. The file records the command, device, versions and commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import gnet
from gnet.book import trained as T
from gnet.device import device_name
from gnet.provenance import git_commit
from gnet.weights import load_weights

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "book/recorded_runs/imagenette-cpu/analysis.json"
CORRELATED_STAGES = {"maxpool2": "inception3a", "inception4c": "inception4d"}  # output: the block it enters
ERF_STAGES = ("conv3", "inception3b", "inception4a", "inception4d")
PARTS = ("ablations", "mean_ablations", "correlation", "correlation_length", "erf")
FEATURE_EVERY, ERF_EVERY = 8, 32  # every 8th validation image for features, every 32nd for input gradients


def _rounded(values, digits: int = 4):
    return np.round(np.asarray(values, dtype=float), digits).tolist()


def correlations(models: dict, images: torch.Tensor) -> dict:
    result = {}
    for stage, block in CORRELATED_STAGES.items():
        result[block] = {"stage": stage}
        for label, model in models.items():
            matrix, dead = T.feature_correlation(T.stage_outputs(model, images, [stage])[stage])
            result[block][label] = T.correlation_summary(matrix) | {"dead": dead, "matrix": _rounded(matrix, 3)}
    return result


def correlation_lengths(models: dict, images: torch.Tensor) -> dict:
    fields = T.receptive_fields(models["trained"])
    result = {stage: {"jump": fields[stage].jump} for stage in T.FEATURE_STAGES}
    for label, model in models.items():
        outputs = T.stage_outputs(model, images, T.FEATURE_STAGES)
        for stage, features in outputs.items():
            max_distance = min(8, features.shape[-1] - 1)
            result[stage][label] = _rounded(T.spatial_correlation(features, max_distance))
    return result


def effective_fields(models: dict, images: torch.Tensor) -> dict:
    result = {}
    for stage in ERF_STAGES:
        result[stage] = {}
        for label, model in models.items():
            erf = T.effective_receptive_field(model, images, stage)
            result[stage][label] = {"r50": T.half_mass_radius(erf), "profile": _rounded(T.mass_profile(erf))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="Imagenette folder [$GNET_DATA_DIR]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS),
        help="measure only these and update the rest of --out as it is [all]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    loaded = load_weights(gnet.GoogLeNetWeights.DEFAULT)
    size = loaded.trained_with("image_size", 128)
    images, targets = T.load_val(args.data_dir, size)
    print(f"{len(images)} validation images at {size} px", flush=True)
    features, erf_images = images[::FEATURE_EVERY], images[::ERF_EVERY]
    models = {"trained": loaded.model.eval(), "random": T.random_like(loaded.model, features, seed=0)}

    report = json.loads(args.out.read_text()) if set(args.parts) != set(PARTS) else {}
    report |= {
        "weights": gnet.GoogLeNetWeights.DEFAULT.name,
        "image_size": size,
        "val_images": len(images),
        "feature_images": len(features),
        "erf_images": len(erf_images),
        "baseline_top1": T.top1(models["trained"], images, targets),
    }
    trained = models["trained"]
    for part in args.parts:
        if part == "ablations":
            report["energy"] = T.branch_energy(trained, features)
            report["ablations"] = T.ablation_table(trained, images, targets)
        elif part == "mean_ablations":
            report["mean_ablations"] = T.ablation_table(trained, images, targets, T.branch_means(trained, features))
        elif part == "correlation":
            report["correlation"] = correlations(models, features)
        elif part == "correlation_length":
            report["correlation_length"] = correlation_lengths(models, features)
        elif part == "erf":
            report["erf"] = effective_fields(models, erf_images)
        print(f"{part} done, {time.perf_counter() - started:.0f} s", flush=True)
    if "made_by" in report:  # a partial re-run: keep the record of what measured the other parts
        report.setdefault("earlier_runs", []).append(report.pop("made_by"))
    report["made_by"] = {
        "parts": args.parts,
        "command": "python scripts/analyse_trained.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": device_name(torch.device("cpu")),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "gnet": gnet.__version__},
        "git_commit": git_commit(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    print(f"wrote {args.out} in {report['made_by']['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
