"""``rnnkit generate RUN``: what the trained model in RUN writes: text from a language model, piece by piece as it is
sampled; music (MIDI, WAV, a piano roll) from a music model.

    rnnkit generate RUN [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--greedy] [--seed N]
    rnnkit generate RUN --steps 64 --seed 0 [--prime-piece test:0 --prime-steps 8] --midi out.mid --wav out.wav

The flags are those of RUN's task (:class:`rnnkit.cli.task_command.RunCommand`); ``rnnkit.load(RUN).generate(...)``
is the same call in Python.
"""

from rnnkit.cli.commands import task_command, task_names
from rnnkit.cli.task_command import RunCommand

command = RunCommand("generate", "Generate with the trained model in RUN: text from a language model, music from a "
                                 "music model.", task_command, task_names)
