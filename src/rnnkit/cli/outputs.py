"""Where a command may write a file it was asked for: :mod:`rnnkit.train.outputs`, which the library's
operations use too (rnnkit.load(RUN).predict(..., output=...)); the commands that write outputs of their own
(explain, diagnose, bench) import its checks from here."""

from rnnkit.train.outputs import check_output, check_output_directory

__all__ = ["check_output", "check_output_directory"]
