"""A trained run served on PyTorch: :class:`TorchRuntime`, the :class:`~rnnkit.serve.runtime.Runtime` of a
:class:`~rnnkit.tasks.trained.TrainedRun`.

Every call is the run's own operation (``TrainedRun.apply``), so an answer is exactly what
``rnnkit predict / generate RUN --json`` prints for the same input, checked by the same code with the same
messages (options named as Python keywords, which are also the JSON fields).
"""

from __future__ import annotations

import csv
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnkit.errors import InputError
from rnnkit.tasks.operations import KEYWORDS
from rnnkit.tasks.trained import TrainedRun

log = logging.getLogger("rnnkit.serve")


class TorchRuntime:
    """The runtime of a trained run on PyTorch (the model in eval mode on the CPU, as ``rnnkit.load`` gives it).

    Args:
        run: the run, or its directory (opened from ``checkpoint``: auto, best or latest).
    """

    kind = "torch"

    def __init__(self, run: TrainedRun | str | Path, checkpoint: str = "auto"):
        self.run = run if isinstance(run, TrainedRun) else TrainedRun.open(run, checkpoint)
        self.task = self.run.task
        self.source = str(self.run.path)

    def describe(self) -> dict:
        trained = self.run.trained
        facts = {"lm": lambda: {"level": trained.vocab.level, "vocab_size": len(trained.vocab)},
                 "classify": lambda: {"labels": list(trained.labels)},
                 "tag": lambda: {"tags": list(trained.vocabs.tags)},
                 "forecast": lambda: _forecast_facts(trained.config),
                 "translate": lambda: {"beam": trained.decode.beam_size,
                                       "length_penalty": trained.decode.length_penalty},
                 "music": lambda: {"pitches": [trained.pitches.low, trained.pitches.high]},
                 "caption": lambda: {"image_shape": list(trained.image_shape)}}
        return facts[self.task]()

    def predict(self, inputs: list, options: dict[str, Any]) -> list[dict]:
        if self.task == "caption":  # the caption task reads one image per call
            return [self._apply("predict", {"input": np.asarray(image, dtype=np.float32)}) for image in inputs]
        return self._apply("predict", {"input": inputs, **options})

    def forecast(self, columns: dict[str, list[float]], dates: list[str] | None) -> dict:
        # The forecaster reads its series from a CSV with the run's columns (its checks, transform and season
        # come with that path), so the request's columns are written as one, in a folder of their own.
        config = self.run.trained.config
        names = [config.target, *[name for name in config.features if name != config.target]]
        dated = config.date_column is not None
        with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as folder:
            path = Path(folder) / "series.csv"
            with open(path, "w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file, lineterminator="\n")
                writer.writerow(([config.date_column] if dated else []) + names)
                for step in range(len(columns[config.target])):
                    values = [repr(float(columns[name][step])) for name in names]
                    writer.writerow(([dates[step]] if dated else []) + values)
            try:
                return self._apply("predict", {"data": str(path)})
            except InputError as error:  # name the request's series, not the file it was written to
                raise InputError(str(error).replace(str(path), "the series")) from None

    def generate(self, options: dict[str, Any], piece: Callable[[str], None]) -> dict:
        if self.task == "music":
            return self._apply("generate", options)
        prime_seen = False

        def stream(text: str) -> None:
            nonlocal prime_seen
            if prime_seen:
                piece(text)
            prime_seen = True  # lm.generate streams the prime first: the client sent it, only new text goes back

        return self.run.apply("generate", options, KEYWORDS, {"warn": _log_warning, "stream": stream})

    def _apply(self, operation: str, given: dict[str, Any]) -> Any:
        return self.run.apply(operation, given, KEYWORDS, {"warn": _log_warning, "stream": None})


def _forecast_facts(config) -> dict:
    return {"target": config.target, "features": [name for name in config.features if name != config.target],
            "date_column": config.date_column, "window": config.window, "horizon": config.horizon}


def _log_warning(line: str) -> None:
    log.warning(line)
