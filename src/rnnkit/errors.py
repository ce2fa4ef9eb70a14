"""The one exception type for user mistakes.

A user mistake (a missing file, a bad flag value, a checkpoint of another model) raises
:class:`InputError` with one line that names the problem and the fix. The command line catches
it, prints the line and exits with status 2 and no traceback; library users can catch it too.
Programming errors inside rnnkit raise their ordinary exceptions.
"""


class InputError(ValueError):
    """A problem with what the user gave rnnkit; the message is one line: problem, then fix."""
