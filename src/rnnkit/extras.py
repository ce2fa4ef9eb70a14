"""Optional dependencies: a feature that needs one imports it with :func:`require`, so that a missing
package is one line naming the extra to install, never a traceback.

    pip install 'rnnkit[viz]'          matplotlib, Pillow: plots (forecast, diagnose), caption images
    pip install 'rnnkit[translate]'    sacrebleu: BLEU and chrF of translation runs
    pip install 'rnnkit[classify]'     scikit-learn: classification scores
    pip install 'rnnkit[caption]'      scikit-learn's bundled digits, Pillow: the caption task
    pip install 'rnnkit[music]'        mido: MIDI files of the music task
    pip install 'rnnkit[all]'          all of them

Example::

    >>> require("json", "viz").__name__        # a module that is there is simply returned
    'json'
"""

import importlib
from types import ModuleType

from rnnkit.errors import InputError

# The package that provides each optional top-level module, as pip names it.
PACKAGES = {"matplotlib": "matplotlib", "PIL": "Pillow", "sacrebleu": "sacrebleu", "sklearn": "scikit-learn",
            "mido": "mido"}


class MissingExtra(InputError):
    """An optional package a feature needs is not installed; the message names the extra that installs it."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` (e.g. ``"sklearn.metrics"``), or raise :class:`MissingExtra` naming ``rnnkit[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        if error.name is None or error.name.split(".")[0] != top:
            raise
        package = PACKAGES.get(top, top)
        raise MissingExtra(f"this needs {package}, which is not installed; install it with: "
                           f"pip install 'rnnkit[{extra}]'") from None
