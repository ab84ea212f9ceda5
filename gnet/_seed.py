"""One way to derive a seed from several numbers, for every random stream gnet keys on (seed, epoch, step, rank)."""

from __future__ import annotations

import numpy as np

__all__ = ["derived_seed"]


def derived_seed(*parts: int) -> int:
    """A 32-bit seed that is a function of ``parts`` alone, and unrelated for different ``parts`` (SeedSequence)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])
