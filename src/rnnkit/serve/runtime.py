"""What the server asks of a model: the :class:`Runtime` protocol, and which endpoint serves which task.

A runtime is one loaded model that answers the endpoint of its task. Two implement it: ``TorchRuntime``
(:mod:`rnnkit.serve.torch_runtime`, a trained run on PyTorch) and ``OnnxRuntime``
(:mod:`rnnkit.serve.onnx_runtime`, a file of ``rnnkit export`` on ONNX Runtime). The server knows only this
protocol; it calls a runtime from its worker threads, several calls at once, so a runtime keeps no per-call
state on itself.

    task        endpoint    runtime call                                  answer items
    lm          /generate   generate({prime, length, ...}, piece)         {"prime", "text"}
    music       /music      generate({steps, seed, temperature}, piece)   {"steps", "prime_steps", "frames"}
    classify    /classify   predict(texts, {})                            {"label", "probability", ...}
    tag         /tag        predict(token lists, {})                      {"tokens", "tags"}
    translate   /translate  predict(sentences, {beam, length_penalty})    {"source", "translation"}
    caption     /caption    predict(images, {})                           {"input", "caption"}
    forecast    /forecast   forecast(columns, dates)                      {"forecast": [...]}

The answers are what ``rnnkit predict / generate RUN --json`` prints for the same input.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

# Task -> the endpoint (path without "/") that serves it.
ENDPOINTS = {"lm": "generate", "music": "music", "classify": "classify", "tag": "tag", "translate": "translate",
             "caption": "caption", "forecast": "forecast"}
RUNTIMES = ("torch", "onnx")


class Runtime(Protocol):
    """One loaded model (see the module's docstring).

    Attributes:
        task: the task of its run (``"lm"``, ``"classify"``, ...): which endpoint serves it.
        source: where it was loaded from (a run directory, an ONNX file), for ``/models``.
        kind: ``"torch"`` or ``"onnx"``.
    """

    task: str
    source: str
    kind: str

    def describe(self) -> dict:
        """What a client needs to know to call it (``/models``): a classifier's labels, a tagger's tags, a
        forecaster's columns, window and horizon, a language model's vocabulary level."""

    def predict(self, inputs: list, options: dict[str, Any]) -> list[dict]:
        """One answer per input, in order (classify, tag, translate, caption); ``options`` as the task's
        ``predict`` takes them by keyword."""

    def forecast(self, columns: dict[str, list[float]], dates: list[str] | None) -> dict:
        """The forecast after the end of a series given as its columns (the run's target and features, by name,
        oldest first) and, where the run has a date column, its dates."""

    def generate(self, options: dict[str, Any], piece: Callable[[str], None]) -> dict:
        """What the model writes (lm, music), ``options`` as the task's ``generate`` takes them by keyword;
        ``piece(text)`` is called with each generated piece of text as soon as it is drawn, and may raise to
        stop the generation (:class:`~rnnkit.serve.workers.Cancelled`)."""
