"""Turn a finished training run into a recorded run of the book: book/recorded_runs/<name>/.

    python scripts/record_run.py runs/imagenette-cpu book/recorded_runs/imagenette-cpu

Copies ``metrics.jsonl`` and ``run.json`` (adding the wall time and the mean throughput, computed from the run's
own files). Unless ``--no-weights``, it also writes ``weights.pt``: the final weights in fp16 with every network
switch, the class names and the recipe, readable by ``gnet.load_checkpoint`` with ``weights_only=True``, and prints
the SHA-256 and the whole ``meta`` of a registry entry in gnet/weights.py: what the run recorded, and torchvision's
schema fields measured from the file (gnet.weights.schema_meta); only ``_docs`` is left to write. Data paths are
written as ``$GNET_DATA_DIR/...`` (gnet.data.portable_path), so that they mean something on another machine.

The run folder may hold a format-1 ``last.pt`` (written by gnet before checkpoints stored the network's switches,
commit cc1e864): its network is rebuilt from the TrainConfig it stored, as gnet.train built it then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

import gnet
from gnet.checkpoint import export_weights, model_state, read_checkpoint, save_checkpoint
from gnet.data import class_names, portable_path
from gnet.weights import schema_meta


def _as_current_format(last: Path, scratch: Path) -> Path:
    state = torch.load(last, map_location="cpu", weights_only=True)
    if state.get("format") != 1:
        read_checkpoint(last)  # raises with a clear message if it is not a gnet checkpoint
        return last
    config, classes = state["config"], list(state["classes"])
    model = gnet.googlenet(
        num_classes=len(classes),
        aux_logits=config["aux"],
        batch_norm=config["batch_norm"],
        lrn=config.get("lrn", True),
        width=config["width"],
    )
    model.load_state_dict(state["model"])
    save_checkpoint(scratch, model_state(model, classes, class_names(classes)) | {"train_config": config})
    return scratch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--no-weights", action="store_true", help="record metrics.jsonl and run.json only (a run the book only plots)"
    )
    parser.add_argument(
        "--no-aux-heads",
        action="store_true",
        help="leave the auxiliary heads out of weights.pt (only training uses them; a third of a full-width network)",
    )
    args = parser.parse_args(argv)
    metrics = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines() if line]
    info = json.loads((args.run_dir / "run.json").read_text())
    if len(metrics) != info["config"]["epochs"]:
        print(f"{args.run_dir}: {len(metrics)} of {info['config']['epochs']} epochs done", file=sys.stderr)
        return 2
    last = args.run_dir / "last.pt"
    started = dt.datetime.fromisoformat(info["started_at"])
    finished = dt.datetime.fromtimestamp(last.stat().st_mtime, dt.timezone.utc)
    batch = info["config"]["batch_size"]
    per_epoch = info["train_images"] // batch * batch  # whole batches only, as gnet.train deals them
    train_seconds = sum(per_epoch / m["images_per_s"] for m in metrics)
    train_images = per_epoch * len(metrics)
    info["recorded"] = {
        "finished_at": finished.isoformat(timespec="seconds"),
        "wall_seconds": round((finished - started).total_seconds(), 1),
        "epoch_seconds": round(sum(m["seconds"] for m in metrics), 1),
        "train_images_per_s": round(train_images / train_seconds, 1),
        "how": "computed by scripts/record_run.py from metrics.jsonl, run.json and the mtime of last.pt",
    }
    for record, key in (
        (info, "command"),
        (info, "data_dir"),
        (info["config"], "data_dir"),
        (info.get("inputs", {}), "data_dir"),
    ):
        if record.get(key):
            record[key] = portable_path(record[key])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run_dir / "metrics.jsonl", args.out_dir / "metrics.jsonl")
    (args.out_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    if args.no_weights:
        print(json.dumps(info["recorded"], indent=2))
        return 0
    final = metrics[-1]
    meta = {
        "run": args.out_dir.name,
        "command": portable_path(info["command"]),
        "git_commit": info["git_commit"],
        "device": info["device"],
        "dataset": f"Imagenette v2, {info['config']['dataset_size']}",
        "train_images": info["train_images"],
        "val_images": info["val_images"],
        "epochs": len(metrics),
        "image_size": info["config"]["image_size"],
        "dataset_size": info["config"]["dataset_size"],
        "val_top1": final["val_top1"],
        "val_top5": final["val_top5"],
        "wall_seconds": info["recorded"]["wall_seconds"],
    }
    scratch = args.out_dir / ".last-format2.pt"
    try:
        export_weights(
            _as_current_format(last, scratch), args.out_dir / "weights.pt", aux_heads=not args.no_aux_heads, **meta
        )
    finally:
        scratch.unlink(missing_ok=True)
    digest = hashlib.sha256((args.out_dir / "weights.pt").read_bytes()).hexdigest()
    size = (args.out_dir / "weights.pt").stat().st_size
    measured = schema_meta(args.out_dir.name, args.out_dir / "weights.pt", args.out_dir / "metrics.jsonl")
    entry = meta | measured | {"_docs": "WRITE: what these weights are and what they know (one or two sentences)"}
    print(json.dumps({"sha256": digest, "bytes": size, "meta": entry}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
