"""One module per task: the glue that the command line and the Trainer share.

Each task module says how to read its data, which model structure to build, its loss (a
:class:`~rnnkit.train.TaskLoss` per batch) and its metrics. :mod:`rnnkit.tasks.lm`: language models.
"""
