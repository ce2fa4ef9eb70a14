"""What cells and engines share, at the bottom of ``rnnkit.nn``: it imports nothing above it.

* :func:`~rnnkit.nn.ops.linear.linear_rows`: ``x w^T + bias`` on oneDNN's inner product where it is faster;
* :func:`~rnnkit.nn.ops.chunks.time_chunks`: slices of the time axis that keep elementwise work in cache.
"""

from .chunks import CHUNK_ELEMENTS, time_chunks
from .linear import linear_rows

__all__ = ["linear_rows", "time_chunks", "CHUNK_ELEMENTS"]
