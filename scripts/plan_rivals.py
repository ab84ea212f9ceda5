"""Plan the training of the rivals at equal cost (issue 25): their counts, the commands, the CPU hours.

    OMP_NUM_THREADS=1 python scripts/plan_rivals.py            # counts, commands, and timed training steps
    python scripts/plan_rivals.py --rounds 0                    # counts and commands only (seconds)

Prints, for each shape of :data:`gnet.rivals.RIVALS`: its MACs per 128 px image (fvcore, conv + linear, eval mode),
their ratio to the reference's, its parameters (all, and without the auxiliary heads, which inference drops), its
depth (layers with weights on the longest path), then the ``gnet.train`` command of each planned run (the recorded
recipe shortened to ``--epochs`` with ``--cache``), and an estimate of the CPU hours they take.

The estimate: one process, one thread, times one training step (forward, loss, backward, SGD update) of each
shape on random images at the recipe's batch, in fp32 and channels-last as gnet.train runs on a CPU, the shapes'
steps alternated ``--rounds`` times after one warm-up step each, so that a change of load on the machine falls on
every shape alike. Only the ratio of each shape's median step to the reference's is used: it scales the wall time
per epoch of a recorded one-thread run of the reference recipe (book/recorded_runs/aux-pair/aux-s1, fp32, which
ran beside another run, as these would).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import gnet
from gnet.analysis import count_layers, count_macs, count_params
from gnet.rivals import BUDGET_INPUT, RECORDED_NETWORK, RIVALS, rival

ROOT = Path(__file__).resolve().parent.parent
BASELINE_RUN = ROOT / "book/recorded_runs/aux-pair/aux-s1/run.json"  # the recipe, 1 thread, beside another run
RECIPE = (
    "--data-dir $GNET_DATA_DIR/imagenette2-160 --batch-size 64 --image-size 128 --width 0.25 --batch-norm --no-lrn "
    "--label-smoothing 0.1 --lr 0.2 --workers 1 --no-progress --cache --precision fp32"
)  # fp32 as every recorded run (auto now picks bf16 on CPUs with AVX512-BF16, and fp32 on CPUs without it)


def counts() -> list[dict[str, object]]:
    """Each shape's MACs, parameters and depth, measured."""
    rows = []
    for shape in RIVALS:
        model = rival(shape, init="torch")
        aux = sum(count_params(head) for head in (model.aux1, model.aux2) if head is not None)
        rows.append(
            {
                "shape": shape,
                "switches": RIVALS[shape],
                "macs": count_macs(model, BUDGET_INPUT).total,
                "params": count_params(model),
                "params_no_aux": count_params(model) - aux,
                "depth": count_layers(model, BUDGET_INPUT).with_params,
            }
        )
    return rows


def step_seconds(rounds: int, batch_size: int) -> dict[str, float]:
    """Median seconds of one training step of each shape, the shapes' steps alternated (see the module's doc)."""
    torch.manual_seed(0)
    models = {shape: rival(shape).train().to(memory_format=torch.channels_last) for shape in RIVALS}  # as gnet.train
    optimizers = {s: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for s, m in models.items()}
    x = torch.randn(batch_size, *BUDGET_INPUT[1:]).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, RECORDED_NETWORK["num_classes"], (batch_size,))
    times: dict[str, list[float]] = {shape: [] for shape in RIVALS}
    for round_ in range(rounds + 1):  # round 0 warms each shape up and is not counted
        for shape, model in models.items():
            start = time.perf_counter()
            optimizers[shape].zero_grad(set_to_none=True)
            gnet.googlenet_loss(model(x), y, label_smoothing=0.1).backward()
            optimizers[shape].step()
            if round_:
                times[shape].append(time.perf_counter() - start)
    return {shape: statistics.median(t) for shape, t in times.items()}


def commands(epochs: int, closest: str) -> list[tuple[str, str]]:
    """(run folder, command) of each planned run: every shape with seed 0, then seed 1 for the reference and for
    ``closest`` (the rival whose seed-0 top-1 comes nearest the reference's, known only after those runs)."""
    planned = [(shape, 0) for shape in RIVALS] + [("googlenet", 1), (closest, 1)]
    runs = []
    for shape, seed in planned:
        out = f"runs/rivals/{shape}-s{seed}"
        runs.append((out, f"python -m gnet.train {RECIPE} --epochs {epochs} --shape {shape} --seed {seed} --out {out}"))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each planned run [20]")
    parser.add_argument("--rounds", type=int, default=3, help="timed training steps per shape (0: no timing) [3]")
    parser.add_argument("--batch-size", type=int, default=64, help="images per timed step (the recipe's) [64]")
    parser.add_argument("--closest", default="RIVAL", help="the rival to run with seed 1 too [RIVAL: decide later]")
    args = parser.parse_args()

    rows = counts()
    reference = next(row for row in rows if row["shape"] == "googlenet")
    print(f"Budget: the recorded network {RECORDED_NETWORK} at {BUDGET_INPUT[-1]} px (fvcore, conv + linear)\n")
    print(f"{'shape':<15}{'MACs':>12}{'vs ref':>9}{'params':>11}{'no aux':>11}{'depth':>7}  switches")
    for row in rows:
        ratio = row["macs"] / reference["macs"] - 1
        print(
            f"{row['shape']:<15}{row['macs']:>12,}{ratio:>+9.1%}{row['params']:>11,}{row['params_no_aux']:>11,}"
            f"{row['depth']:>7}  {row['switches']}"
        )

    runs = commands(args.epochs, args.closest)
    print(f"\nPlanned runs ({len(runs)}; two one-thread runs side by side use both cores; OMP_NUM_THREADS=1):")
    for _, command in runs:
        print(f"  OMP_NUM_THREADS=1 {command}")

    if args.rounds <= 0:
        return
    torch.set_num_threads(1)
    seconds = step_seconds(args.rounds, args.batch_size)
    baseline = json.loads(BASELINE_RUN.read_text())
    per_epoch = baseline["recorded"]["wall_seconds"] / baseline["config"]["epochs"]
    print(
        f"\nOne training step at batch {args.batch_size}, 1 thread, median of {args.rounds} alternated rounds "
        f"(machine possibly loaded: only the ratios are used); reference epoch: {per_epoch:.0f} s "
        f"({BASELINE_RUN.parent.name}, {baseline['threads']} thread, beside another run)"
    )
    hours = {shape: seconds[shape] / seconds["googlenet"] * per_epoch * args.epochs / 3600 for shape in RIVALS}
    for shape in RIVALS:
        ratio = seconds[shape] / seconds["googlenet"]
        print(f"  {shape:<15}{seconds[shape]:>7.2f} s/step  x{ratio:.2f}  ~{hours[shape]:.2f} CPU h per run")
    # The seed-1 rival is not known yet: count the slowest rival, so the estimate is an upper bound.
    rivals = [shape for shape in RIVALS if shape != "googlenet"]
    second = hours.get(args.closest, max(hours[shape] for shape in rivals))
    total = sum(hours.values()) + hours["googlenet"] + second
    print(f"  all {len(runs)} planned runs: ~{total:.1f} CPU hours (~{total / 2:.1f} h wall on two cores)")


if __name__ == "__main__":
    main()
