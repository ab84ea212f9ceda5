"""Where gnet runs: choosing a device and a precision, and naming the device in records.

Every figure the project records names the device it was measured on, through :func:`device_name`, so that a
number from a 2-core CPU is never mistaken for a GPU's.
"""

from __future__ import annotations

import contextlib
import platform

import torch

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "DeviceError",
    "autocast",
    "cpu_bf16_extension",
    "device_name",
    "precision_choice",
    "resolve_device",
    "resolve_precision",
    "to_device",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class DeviceError(ValueError):
    """A device or precision was asked for that this machine does not have."""


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; a named device that is missing raises :class:`DeviceError`."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but torch sees no CUDA GPU (try --device cpu)")
    if name == "mps" and not _mps_available():
        raise DeviceError("--device mps was asked for, but MPS is not available (try --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, got {name!r}") from None


def _cpu_flags() -> set[str]:
    """The processor's instruction-set extensions, lower case (``"amx_bf16"``, ``"avx512_bf16"``, …)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.6; cpuinfo, any OS
    if get_capabilities is not None:
        return {name for name, present in get_capabilities().items() if present is True}
    try:  # older torch on Linux: the kernel's own list
        with open("/proc/cpuinfo") as handle:
            return set(next(line for line in handle if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def cpu_bf16_extension() -> str | None:
    """``"AMX-BF16"`` or ``"AVX512-BF16"`` where the CPU multiplies bf16 matrices natively, else ``None``.

    Read from the processor's feature flags, not its model name. oneDNN uses these instructions for bf16
    convolutions and matrix products; without them bf16 is emulated and slower than fp32.
    """
    flags = _cpu_flags()
    if "amx_bf16" in flags:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return None


def precision_choice(name: str, device: torch.device) -> tuple[str, str]:
    """The precision to train in and why, in words a run's first lines and ``run.json`` can carry.

    ``"auto"``: bf16 autocast on CUDA (fp16 where bf16 is emulated); on a CPU, bf16 autocast where the processor
    has native bf16 matrix instructions (a full-width training step measured 1.66× faster on an AMD EPYC with
    AVX512-BF16 and 1.84× on an Intel Xeon with AMX; ``benchmarks/results``), fp32 elsewhere.
    An explicit precision always wins.
    """
    if name != "auto":
        return resolve_precision(name, device), "asked for with --precision"
    if device.type == "cuda":
        # T4 and older GPUs emulate bf16 slowly; fp16 with a GradScaler is their fast path.
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16", "auto: this GPU has native bf16"
        return "fp16", "auto: this GPU emulates bf16, so fp16 with a GradScaler"
    if device.type == "cpu":
        extension = cpu_bf16_extension()
        if extension is not None:
            return "bf16", f"auto: this CPU has {extension} matrix instructions"
        return "fp32", "auto: this CPU has no native bf16 matrix instructions (AMX or AVX512-BF16)"
    return "fp32", f"auto: fp32 on {device.type}"


def resolve_precision(name: str, device: torch.device) -> str:
    """``"auto"`` as :func:`precision_choice` says; a named precision this device cannot run raises
    :class:`DeviceError`."""
    if name == "auto":
        return precision_choice(name, device)[0]
    if name == "fp16" and device.type != "cuda":
        raise DeviceError(f"--precision fp16 needs CUDA, the device is {device.type}")
    if name == "bf16" and device.type == "mps":
        raise DeviceError("--precision bf16 is not supported on MPS here; use fp32")
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def to_device(images: torch.Tensor, targets: torch.Tensor, device: torch.device):
    """Move a batch to ``device``, images channels-last: what tensor cores prefer on CUDA, and on CPU what makes
    oneDNN's convolutions and PyTorch's max pools fastest (benchmarks/results: about 1.3× a training step)."""
    images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return images, targets.to(device, non_blocking=True)


def _cpu_model() -> str:
    name = platform.processor() or platform.machine() or "unknown CPU"
    try:  # Linux; elsewhere the platform module's answer stands
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return name


def device_name(device: str | torch.device = "cpu") -> str:
    """A readable name, e.g. ``'NVIDIA H100 80GB HBM3'`` or ``'cpu: AMD EPYC 7B13, AVX512-BF16 (2 threads)'``.

    A CPU's name carries its bf16 matrix extension, if any: the same model name can train at very different
    speeds with and without it.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"mps: {platform.machine()}"
    extension = cpu_bf16_extension()
    model = _cpu_model() if extension is None else f"{_cpu_model()}, {extension}"
    return f"cpu: {model} ({torch.get_num_threads()} threads)"
