"""One module per task: the glue that the command line and the Trainer share.

Each task module declares ``SPEC``, its :class:`~rnnkit.tasks.spec.TaskSpec`: how to read its data, which
model structure to build, its :class:`~rnnkit.train.Task` (batches, loss, metrics), how a trained run is
loaded, and what a trained run does: ``evaluate`` (every task), ``predict`` or ``generate``, each with its
options (:mod:`rnnkit.tasks.operations`). :mod:`rnnkit.tasks.run` trains any of them;
:class:`~rnnkit.tasks.trained.TrainedRun` (``rnnkit.load(RUN)``) applies a trained one. The tasks:

    lm          language models (characters or words), truncated BPTT over streams
    classify    text classification and sentiment (many-to-one)
    tag         POS tagging and NER (synchronous many-to-many)
    forecast    time-series forecasting (many-to-one with H outputs)
    translate   seq2seq translation (asynchronous many-to-many)
    caption     image captioning on composed digits (one-to-many)
    music       polyphonic music as piano rolls, frame after frame (one-to-many when generating)
"""
