"""Run before any test module or notebook: settings that must precede the first ``import torch``."""

import os

# Under `pytest -n auto` (pyproject's addopts) the workers share the machine's cores. One torch thread each keeps
# their OpenMP threads from waiting on each other, which was measured here to slow a training step about 20 times;
# the notebooks' kernels inherit the setting. A plain single-process run keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
