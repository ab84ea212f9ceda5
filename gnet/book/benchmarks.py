"""The benchmark runs the chapters quote: which committed result files they are, and reading them.

A result file is data, like a recorded run: it holds the command, device, versions and commit that made it
(``benchmarks/fast_training.py`` writes them). The chapters read the checkout's copy, or on Colab the copy in the
book's repository (:func:`gnet.weights.repository_file`); where neither can be had, they say so instead of
showing a number.
"""

from __future__ import annotations

import json
from typing import Any

from gnet.weights import WeightsUnavailableError, repository_file

__all__ = ["CPU_PRECISION", "FAST_TRAINING", "FAST_TRAINING_224", "load", "missing_note"]

#: ``python benchmarks/fast_training.py`` on the book's machine: data, training step, end to end, top-1.
FAST_TRAINING = "benchmarks/results/fast-training-cpu-amd-epyc-2-threads-2026-12-01.json"
#: The training step alone at ImageNet's 224 px (``--parts step --image-size 224``).
FAST_TRAINING_224 = "benchmarks/results/fast-training-cpu-amd-epyc-2026-12-01-224px.json"
#: ``python benchmarks/cpu_precision.py``: the training step in fp32 and bf16, and the weights' top-1 in both.
CPU_PRECISION = "benchmarks/results/cpu-precision-amd-epyc-avx512-bf16-2026-12-02.json"


def load(relative: str) -> dict[str, Any] | None:
    """The result file ``relative`` as a dict, or None if it is neither in this checkout nor downloadable."""
    try:
        return json.loads(repository_file(relative).read_text())
    except WeightsUnavailableError:
        return None


def missing_note(relative: str, what: str) -> str:
    """A MyST warning for a page whose benchmark file could not be read."""
    return (
        ":::{warning}\n"
        f"{what} come from the benchmark file `{relative}`, which is not in this copy of the book and could not "
        "be downloaded. Clone the book's repository to see them, or run "
        "`python benchmarks/fast_training.py` to measure your own machine.\n"
        ":::"
    )
