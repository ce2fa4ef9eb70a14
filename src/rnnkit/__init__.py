"""rnnkit: recurrent neural networks on PyTorch, from the cell equations to trained models."""

__version__ = "0.1.0"


def load(path, checkpoint: str = "auto"):
    """The trained run in directory ``path`` (what ``rnnkit train TASK --out path`` made), as a Python object:
    a :class:`~rnnkit.tasks.trained.TrainedRun`.

    ``checkpoint``: ``"auto"`` (the best checkpoint when the run has one, else the latest), ``"best"`` or
    ``"latest"``. Its ``evaluate``, ``predict`` and ``generate`` (where the task has them) take the options of
    ``rnnkit evaluate / predict / generate RUN`` as keywords (``--top-k`` is ``top_k=``) and return what those
    commands print with ``--json``.

    Example::

        run = rnnkit.load("runs/code")
        run.task, run.model                          # 'lm', the LanguageModel (eval mode, CPU)
        run.evaluate("valid.txt")["perplexity"]
        run.generate(prime="def ", length=200, temperature=0.8)["text"]
    """
    from rnnkit.tasks.trained import TrainedRun

    return TrainedRun.open(path, checkpoint)
