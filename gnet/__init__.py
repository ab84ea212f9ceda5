"""gnet: GoogLeNet (Inception v1) from first principles.

The companion package of the book "Inception from first principles". The core, importable without the book's
extras, is the reusable library:

* :mod:`gnet.model`: the paper-faithful network with auxiliary heads, a named switch for each deviation, the loss;
* :mod:`gnet.table1`: the paper's Table 1, as data (the six widths of every block, the depth of every layer);
* :mod:`gnet.rivals`: networks that spend the recorded GoogLeNet's budget (MACs) another way, for training side by side;
* :mod:`gnet.analysis`: MAC, parameter and layer counts with fvcore and torchinfo, and their closed forms;
* :mod:`gnet.data`: Imagenette (or ImageNet-1k, or any ``train/``, ``val/`` folder), its transforms and its checks;
* :mod:`gnet.cache` and :mod:`gnet.augment`: each split decoded once into a memory-mapped file, and the same
  augmentation applied to whole batches on the training device;
* :mod:`gnet.distributed`: the same training under ``torchrun`` on several processes, GPUs or machines;
* :mod:`gnet.device`: choosing a device and a precision, and naming the device in every record;
* :mod:`gnet.train`: the resumable training loop and its CLI (``python -m gnet.train``);
* :mod:`gnet.checkpoint`: checkpoints that rebuild their own network (:func:`load_checkpoint`);
* :mod:`gnet.evaluate`: top-1, top-5 and per-class accuracy of any checkpoint, and its CLI
  (``python -m gnet.evaluate``);
* :mod:`gnet.weights`: the weights trained for the book, registered as torchvision registers its own
  (``gnet.googlenet(weights="IMAGENETTE_CPU")``).
* :mod:`gnet.featurevis`: feature visualisation, the picture a channel of any network responds to most
  (``visualise(model, "inception3a", channels)``).

The chapters' own measurements and figures live in :mod:`gnet.book`, which needs the ``[book]`` extra; the core
never imports it.
"""

# First, before torch loads (seconds): in a gnet command, Ctrl-C meanwhile becomes one line (gnet._process).
from gnet import _process  # noqa: F401
from gnet.checkpoint import load_checkpoint
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
from gnet.weights import GoogLeNetWeights

__version__ = "0.1.0"

__all__ = [
    "TORCHVISION_CONFIG",
    "AuxHead",
    "ConvUnit",
    "GoogLeNet",
    "GoogLeNetConfig",
    "GoogLeNetOutput",
    "GoogLeNetWeights",
    "INCEPTION_SPECS",
    "Inception",
    "NaiveInception",
    "TABLE1",
    "from_torchvision",
    "googlenet",
    "googlenet_loss",
    "load_checkpoint",
]
