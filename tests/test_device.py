"""Choosing the precision by what the processor does well, and naming the device with its bf16 extension."""

import platform

import pytest
import torch

import gnet.device as gdevice

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "precision", "extension"),
    [
        ({"amx_bf16", "amx_tile", "avx512_bf16", "avx512_f"}, "bf16", "AMX-BF16"),  # Intel Sapphire Rapids and later
        ({"avx512_bf16", "avx512_f"}, "bf16", "AVX512-BF16"),  # AMD Zen 4 and later, Intel Cooper Lake
        ({"avx512_f", "avx2"}, "fp32", None),  # AVX-512 without bf16: bf16 would be emulated
        ({"avx2", "fma3"}, "fp32", None),
        (set(), "fp32", None),  # nothing readable: the safe choice
    ],
)
def test_auto_precision_on_a_cpu_follows_its_bf16_matrix_instructions(monkeypatch, flags, precision, extension):
    monkeypatch.setattr(gdevice, "_cpu_flags", lambda: flags)
    chosen, why = gdevice.precision_choice("auto", CPU)
    assert (chosen, gdevice.cpu_bf16_extension()) == (precision, extension)
    assert why.startswith("auto: ")
    assert (extension or "no native bf16") in why
    assert gdevice.resolve_precision("auto", CPU) == precision


@pytest.mark.parametrize("asked", ["fp32", "bf16"])
@pytest.mark.parametrize("flags", [{"amx_bf16"}, set()])
def test_an_explicit_precision_wins_over_the_processor(monkeypatch, asked, flags):
    monkeypatch.setattr(gdevice, "_cpu_flags", lambda: flags)
    assert gdevice.precision_choice(asked, CPU) == (asked, "asked for with --precision")


def test_fp16_on_a_cpu_is_refused_whatever_the_processor(monkeypatch):
    monkeypatch.setattr(gdevice, "_cpu_flags", lambda: {"amx_bf16", "amx_fp16"})
    with pytest.raises(gdevice.DeviceError, match="fp16 needs CUDA"):
        gdevice.precision_choice("fp16", CPU)


def test_the_cpu_name_carries_its_bf16_extension(monkeypatch):
    monkeypatch.setattr(gdevice, "_cpu_flags", lambda: {"avx512_bf16"})
    assert gdevice.device_name("cpu").endswith(f", AVX512-BF16 ({torch.get_num_threads()} threads)")
    monkeypatch.setattr(gdevice, "_cpu_flags", lambda: {"avx2"})
    assert "BF16" not in gdevice.device_name("cpu")


def test_the_flags_are_read_from_this_machine():
    # Every x86-64 CPU torch runs on has SSE2; on ARM the name differs, so only check that something was read there.
    flags = gdevice._cpu_flags()
    assert flags, "no CPU feature flags could be read"
    if platform.machine() in ("x86_64", "AMD64"):
        assert "sse2" in flags
