"""gnet: GoogLeNet (Inception v1) from first principles.

The companion package of the book "Inception from first principles". It holds everything the chapters use:

* :mod:`gnet.model`: the paper-faithful network with auxiliary heads, and a named switch for each deviation;
* :mod:`gnet.table1`: the paper's Table 1, as data;
* :mod:`gnet.analysis`: MAC and parameter counts with fvcore and torchinfo, and their closed forms;
* :mod:`gnet.data` and :mod:`gnet.train`: Imagenette, the training loop and its CLI (``python -m gnet.train``);
  :mod:`gnet.reporting` plots a run's curves and confusion matrix.

The chapters' own analyses live beside them, one module per concern: :mod:`gnet.correlation` (sparse correlation
structure in photographs), :mod:`gnet.modules_plots` and :mod:`gnet.explorer` (naive against reduced modules, and
the bottleneck explorer), :mod:`gnet.compare` (the network against its claims and its variants),
:mod:`gnet.gradients` (what the auxiliary heads do to gradients), and :mod:`gnet.plotting` / :mod:`gnet.widgets`
(the book's figure style and widget helpers).
"""

from gnet.model import (
    TORCHVISION_CONFIG,
    AuxHead,
    ConvUnit,
    GoogLeNet,
    GoogLeNetConfig,
    GoogLeNetOutput,
    Inception,
    NaiveInception,
    from_torchvision,
    googlenet,
    googlenet_loss,
)
from gnet.table1 import INCEPTION_SPECS, TABLE1

__version__ = "0.1.0"

__all__ = [
    "TORCHVISION_CONFIG",
    "AuxHead",
    "ConvUnit",
    "GoogLeNet",
    "GoogLeNetConfig",
    "GoogLeNetOutput",
    "INCEPTION_SPECS",
    "Inception",
    "NaiveInception",
    "TABLE1",
    "from_torchvision",
    "googlenet",
    "googlenet_loss",
]
