"""``python -m rnnkit``: the ``rnnkit`` command, also what ``torchrun -m rnnkit`` runs on every rank."""

from rnnkit.cli import main

main()
