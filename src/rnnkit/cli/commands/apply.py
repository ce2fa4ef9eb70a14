"""``rnnkit evaluate RUN`` and ``rnnkit predict RUN``: the run's task scores or applies its model.

Each takes the flags of RUN's task only (declared with the task's operations, :mod:`rnnkit.tasks.operations`):
``rnnkit evaluate RUN --help`` lists them, and a flag of another task is one line naming the tasks that take it
(:class:`rnnkit.cli.task_command.RunCommand`). ``rnnkit.load(RUN).evaluate(...)`` / ``.predict(...)`` are the
same calls in Python.
"""

from rnnkit.cli.commands import task_command, task_names
from rnnkit.cli.task_command import RunCommand

evaluate = RunCommand("evaluate", "Score the trained model in RUN on held-out data with its task's metrics.",
                      task_command, task_names)
predict = RunCommand("predict", "Apply the trained model in RUN: labels, tags, a forecast, translations, a caption.",
                     task_command, task_names)
