"""Record what the branches of the shipped GoogLeNet see: feature visualisations, dataset examples, unit indices.

    nice -n 5 python scripts/record_featurevis.py [--data-dir DIR] [--out book/recorded_runs/featurevis]

What it computes, on one CPU thread (chapter 9 reads the record, and re-computes a few channels at every build):

* a feature visualisation (gnet.featurevis, lucent's recipe) of every channel of inception 3a and 3b, and of a
  sample of 4a-5b (two channels per branch drawn with a fixed seed, plus the two largest correlation clusters of
  4c that chapter 2 measured), with the activation each reaches, at its start, and on the photographs;
* the six validation images that excite each of those channels most, cut to the unit's receptive field;
* the colour index and the curve index (gnet.book.branches) of every unit of 3a and 3b, for the trained network and
  for its random twin (the same architecture at initialisation, BatchNorm statistics from the same images);
* for the build's check: the same channels with other seeds (the spread the check allows), and how much an
  activation moves when each pixel moves by one grey level (the JPEG record's rounding).

Writes record.json (command, commit, device, versions, timings and every number) and JPEG sheets of tiles.
``--recut`` re-cuts, from an existing record, the dataset examples of the modules whose receptive fields cover the
whole image, and adds the class of every top image (a minute, with the data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import gnet
from gnet.book import branches as B
from gnet.book import trained as T
from gnet.device import device_name
from gnet.featurevis import IMAGENET_MEAN, IMAGENET_STD, Recipe, channel_activations, visualise
from gnet.provenance import git_commit, versions
from gnet.weights import load_weights

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "book/recorded_runs/featurevis"
TESTED = ("inception3a", "inception3b")  # every channel; the branch-specialisation test
SAMPLED = ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "inception5a", "inception5b")
PER_BRANCH = 2  # channels drawn per branch of each sampled module
SIZES = {"inception3a": 96, "inception3b": 96}  # their fields (59 and 91 px) fit; later modules at 128 px
EXAMPLES, EXAMPLE_TILE = 6, 64
BATCH = 16  # channels optimised together (faster per channel than larger batches on one thread, measured)
CHECK = {"inception3a": [0, 40], "inception3b": [100]}  # channels the build re-computes
CHECK_SEEDS = (1, 2, 3)


def cluster_channels(analysis: dict, count: int = 2, most: int = 4) -> list[list[int]]:
    """Members (at most ``most``) of the ``count`` largest clusters of 4c's output channels at |r| >= 0.5."""
    from scipy.cluster.hierarchy import fcluster

    from gnet.book import correlation as C

    matrix = np.asarray(analysis["correlation"]["inception4d"]["trained"]["matrix"])
    labels = fcluster(C._linkage(matrix), t=0.5, criterion="distance")  # chapter 2's cut (count_clusters)
    sizes = np.bincount(labels)
    largest = np.argsort(-sizes, kind="stable")[:count]
    return [np.flatnonzero(labels == label)[:most].tolist() for label in largest]


def plan(model, analysis: dict) -> tuple[dict[str, list[int]], list[list[int]]]:
    rng = np.random.default_rng(0)
    chosen = {name: list(range(model.get_submodule(name).out_channels)) for name in TESTED}
    for name in SAMPLED:
        picks = [int(c) for r in B.branch_channels(model, name).values() for c in rng.choice(r, PER_BRANCH, False)]
        chosen[name] = sorted(picks)
    clusters = cluster_channels(analysis)
    chosen["inception4c"] = sorted(set(chosen["inception4c"]) | {c for members in clusters for c in members})
    return chosen, clusters


def own_activation(model, layer: str, images: torch.Tensor, channels: list[int]) -> list[float]:
    acts = channel_activations(model, layer, images)
    return [round(float(acts[i, c]), 5) for i, c in enumerate(channels)]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_jpeg(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, quality=90, subsampling=0)


def recut(args) -> int:
    """Re-cut the dataset examples of every module whose fields cover the whole image (whole images, since the fix
    of ``example_crops``), and add the class of every top image; the rest of the record stays as it is."""
    from gnet import data as gdata

    started = time.perf_counter()
    path = args.out / "record.json"
    record = json.loads(path.read_text())
    dataset = gdata.ImageFolderDataset(gdata.resolve_data_dir(args.data_dir) / "val",
                                       gdata.eval_transform(record["image_size"]))  # fmt: skip
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    recut_modules = []
    for name, layer in record["layers"].items():
        layer["top_classes"] = [[int(dataset.targets[i]) for i in top] for top in layer["top_images"]]
        if min(layer["field"]) < record["image_size"]:
            continue
        indices = sorted({i for top in layer["top_images"] for i in top})
        images = torch.stack([dataset[i][0] for i in indices]) * std + mean
        position = {i: n for n, i in enumerate(indices)}
        crops = np.concatenate([B.example_crops(images, None, 0, [position[i] for i in top], field=field, grid=(1, 0.0),
                                                out_size=record["example_tile"])
                                for top, field in zip(layer["top_images"], layer["field"], strict=True)])  # fmt: skip
        save_jpeg(B.tile_sheet(crops, record["examples"]), args.out / f"{name}_examples.jpg")
        recut_modules.append(name)
    record["class_names"] = gdata.class_names(dataset.classes)
    record["made_by"].setdefault("later", []).append({
        "command": "python scripts/record_featurevis.py " + " ".join(sys.argv[1:]),
        "what": f"examples re-cut as whole images for {', '.join(recut_modules)}; top_classes added",
        "git_commit": git_commit(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    })  # fmt: skip
    path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    print(f"re-cut {', '.join(recut_modules)} in {record['made_by']['later'][-1]['seconds']} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="Imagenette folder [$GNET_DATA_DIR]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=Recipe().steps, help="Adam steps per visualisation [512]")
    parser.add_argument("--every", type=int, default=1, help="every n-th validation image only (a quick trial) [1]")
    parser.add_argument("--recut", action="store_true", help="only re-cut whole-image examples of an existing record")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.recut:
        return recut(args)
    torch.set_num_threads(1)
    started, timings = time.perf_counter(), {}

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - started - sum(timings.values()), 1)
        print(f"{name}: {timings[name]} s", flush=True)

    loaded = load_weights(gnet.GoogLeNetWeights.DEFAULT)
    model = loaded.model.eval()
    analysis = T.load_analysis()
    chosen, clusters = plan(model, analysis)
    normalised, _ = T.load_val(args.data_dir, analysis["image_size"], every=args.every)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    photos = normalised * std[:, None, None] + mean[:, None, None]  # back to RGB in [0, 1]
    del normalised
    layers = list(chosen)
    lap("load")

    colour_stats = B.unit_statistics(model, layers, photos)
    grey_stats = B.unit_statistics(model, TESTED, B.greyscale(photos))
    curves, lines = B.curve_stimuli(photos.shape[-1])
    curve_stats, line_stats = (B.unit_statistics(model, TESTED, s) for s in (curves, lines))
    lap("indices")
    twin = T.random_like(model, (photos[::8] - mean[:, None, None]) / std[:, None, None], seed=0)
    twin_grey, twin_colour, twin_curves, twin_lines = (
        B.unit_statistics(twin, TESTED, images) for images in (B.greyscale(photos), photos, curves, lines)
    )
    twin_indices = {
        name: {
            "colour": np.round(B.colour_index(twin_colour[name].mean, twin_grey[name].mean), 4).tolist(),
            "curve": np.round(B.curve_index(twin_curves[name].peak, twin_lines[name].peak), 4).tolist(),
        }
        for name in TESTED
    }
    lap("random twin")

    fields, grids = T.branch_receptive_fields(model), {}
    record_layers = {}
    recipe = Recipe(steps=args.steps)
    for name, channels in chosen.items():
        recipe_here = Recipe(steps=args.steps, size=SIZES.get(name, 128))
        final = torch.cat([visualise(model, name, channels[i : i + BATCH], recipe_here)
                           for i in range(0, len(channels), BATCH)])  # fmt: skip
        start = visualise(model, name, channels, Recipe(steps=0, size=recipe_here.size))
        tiles = to_uint8(final)
        columns = 12 if len(channels) > 64 else 8
        save_jpeg(B.tile_sheet(tiles, columns), args.out / f"{name}_vis.jpg")
        stored = B.read_tiles(args.out / f"{name}_vis.jpg", recipe_here.size, len(channels), columns)
        stored_float = torch.from_numpy(stored).permute(0, 3, 1, 2).float() / 255
        stats = colour_stats[name]
        top = B.top_examples(stats, EXAMPLES)
        branch = B.branch_of(model, name)
        grid = B.unit_grid(model, name)
        grids[name] = grid
        crops = np.concatenate([B.example_crops(photos, stats, c, top[c].tolist(), field=fields[name][branch[c]],
                                                grid=grid, out_size=EXAMPLE_TILE) for c in channels])  # fmt: skip
        save_jpeg(B.tile_sheet(crops, EXAMPLES), args.out / f"{name}_examples.jpg")
        photo_mean = stats.mean.mean(dim=0)
        record_layers[name] = {
            "size": recipe_here.size,
            "columns": columns,
            "channels": channels,
            "branch": [branch[c] for c in channels],
            "field": [fields[name][branch[c]] for c in channels],
            "activation": own_activation(model, name, final, channels),
            "stored_activation": own_activation(model, name, stored_float, channels),
            "start_activation": own_activation(model, name, start, channels),
            "photo_mean": [round(float(photo_mean[c]), 5) for c in channels],
            "photo_best_mean": [round(float(stats.mean[:, c].max()), 5) for c in channels],
            "top_images": [top[c].tolist() for c in channels],
            "top_peaks": [[round(float(stats.peak[i, c]), 5) for i in top[c]] for c in channels],
        }
        if name in TESTED:
            record_layers[name]["colour_index"] = np.round(
                B.colour_index(stats.mean, grey_stats[name].mean), 4).tolist()  # fmt: skip
            record_layers[name]["curve_index"] = np.round(
                B.curve_index(curve_stats[name].peak, line_stats[name].peak), 4).tolist()  # fmt: skip
        lap(f"visualise {name} ({len(channels)} channels)")

    check = {}
    for name, channels in CHECK.items():
        seeds = {}
        for seed in CHECK_SEEDS:
            images = visualise(model, name, channels, Recipe(steps=args.steps, size=SIZES.get(name, 128), seed=seed))
            seeds[str(seed)] = own_activation(model, name, images, channels)
        stored = record_layers[name]
        base = torch.stack([torch.from_numpy(B.read_tiles(args.out / f"{name}_vis.jpg", stored["size"],
                            len(stored["channels"]), stored["columns"])[stored["channels"].index(c)])
                            for c in channels]).permute(0, 3, 1, 2).float() / 255  # fmt: skip
        generator = torch.Generator().manual_seed(0)
        nudged = (base + (torch.randint(0, 2, base.shape, generator=generator) * 2 - 1) / 255).clamp(0, 1)
        check[name] = {"channels": channels, "seeds": seeds,
                       "one_level": own_activation(model, name, nudged, channels)}  # fmt: skip
    lap("check seeds")

    record = {
        "weights": gnet.GoogLeNetWeights.DEFAULT.name,
        "recipe": {k: v for k, v in vars(recipe).items() if k not in ("size",)},
        "image_size": photos.shape[-1],
        "val_images": len(photos),
        "examples": EXAMPLES,
        "example_tile": EXAMPLE_TILE,
        "curve_stimuli": len(curves),
        "selected_fraction": B.SELECTED_FRACTION,
        "clusters_4c": clusters,
        "layers": record_layers,
        "random_twin": twin_indices,
        "grids": {name: list(grid) for name, grid in grids.items()},
        "check": check,
    }
    record["made_by"] = {
        "command": "python scripts/record_featurevis.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": device_name(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "git_commit": git_commit(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "timings": timings,
    }
    (args.out / "record.json").write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    print(f"wrote {args.out} in {record['made_by']['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
