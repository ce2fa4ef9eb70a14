"""Time chunks for elementwise work over a whole sequence (the linear cells' coefficients and their backward)."""

from __future__ import annotations

import torch

# Elements per time chunk of the fast paths' elementwise work on CPU (about 256 KiB in float32, within the L2
# cache): a chain of elementwise operations over one chunk reads and writes main memory once, not once per
# operation, and its temporaries are small (no fresh pages for each: a full-size temporary costs as much as a
# pass). On a GPU each operation is one kernel launch, so the whole sequence is one chunk there.
CHUNK_ELEMENTS = 1 << 16


def time_chunks(L: int, per_step: int, device: torch.device | None = None) -> list[slice]:
    """Slices of the time axis with about ``CHUNK_ELEMENTS`` elements each (``per_step`` elements per step);
    one slice on a device other than the CPU."""
    if device is not None and device.type != "cpu":
        return [slice(0, L)]
    T = max(1, CHUNK_ELEMENTS // max(per_step, 1))
    return [slice(s, min(s + T, L)) for s in range(0, L, T)]
