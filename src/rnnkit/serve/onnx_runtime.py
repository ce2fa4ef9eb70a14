"""A file of ``rnnkit export --format onnx`` served on ONNX Runtime: :class:`OnnxRuntime`.

Everything the server needs is in the file: its task, vocabulary, labels and data settings are its metadata
(:mod:`rnnkit.export.writing`), its graphs the roles named in ``rnnkit.files``. Text is encoded and answers are
shaped by the same rnnkit code as on PyTorch, so the two runtimes answer alike:

    lm        the ``sequence`` graph (ids, lengths, h0[, c0] -> logits, h_n[, c_n]) behind
              :func:`rnnkit.generate.sample`, the state carried from call to call: the same checks, filters and
              seeded draws as ``rnnkit generate`` (equal logits give the same text)
    classify  the ``classifier`` graph (ids, lengths -> logits, probabilities), texts tokenized by the run's
              data settings

The other tasks' files (tag, translate, forecast, music, caption) are refused in one line naming
``--runtime torch``: their decoding (CRF Viterbi, beam search, series transforms, NADE sampling) is not wired to
ONNX Runtime here yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rnnkit.data.text import vocab_from_dict
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.generate import sample
from rnnkit.tasks.classify import ClassifyDataConfig

SERVED = ("lm", "classify")


class OnnxRuntime:
    """The runtime of an exported ONNX file (see the module's docstring).

    Args:
        path: the file ``rnnkit export RUN --format onnx --out FILE`` wrote (FILE; its siblings beside it).
        threads: ONNX Runtime's intra-op threads per call.
    """

    kind = "onnx"

    def __init__(self, path: str | Path, threads: int = 1):
        ort = require("onnxruntime", "export")
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{path}: no such file; give a file of `rnnkit export RUN --format onnx --out FILE`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            first = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a file that is not a model
            raise InputError(f"{path} is not an ONNX model onnxruntime can load ({type(error).__name__}); give a "
                             "file of `rnnkit export RUN --format onnx`") from None
        meta = first.get_modelmeta().custom_metadata_map
        if "rnnkit.task" not in meta:
            raise InputError(f"{path} is an ONNX model without rnnkit's metadata; serve a file of `rnnkit export`")
        self.task, self.source = meta["rnnkit.task"], str(self.path)
        if self.task not in SERVED:
            raise InputError(f"{path} holds a {self.task} model; --runtime onnx serves {', '.join(SERVED)} files, "
                             f"serve its run directory with --runtime torch")
        self.vocabulary = json.loads(meta.get("rnnkit.vocabulary") or
                                     (self.path.parent / meta["rnnkit.vocabulary_file"]).read_text())
        self.data = json.loads(meta.get("rnnkit.data", "{}"))
        files = json.loads(meta["rnnkit.files"])
        role = {"lm": "sequence", "classify": "classifier"}[self.task]
        self.session = first if files[role] == self.path.name else ort.InferenceSession(
            str(self.path.parent / files[role]), options, providers=["CPUExecutionProvider"])
        if self.task == "lm":
            self.vocab = vocab_from_dict(self.vocabulary["vocab"])
        else:
            self.vocab = TokenVocab.from_dict(self.vocabulary["vocab"])
            self.labels = list(self.vocabulary["labels"])
            self.config = ClassifyDataConfig(data="", **self.data)

    def describe(self) -> dict:
        if self.task == "lm":
            return {"level": self.vocab.level, "vocab_size": len(self.vocab)}
        return {"labels": self.labels}

    def predict(self, inputs: list, options: dict[str, Any]) -> list[dict]:
        ids = [self.config.token_ids(self.vocab, text) for text in inputs]
        padded = np.zeros((len(ids), max(map(len, ids))), dtype=np.int64)  # (N, L), 0 = <pad>
        for row, tokens in enumerate(ids):
            padded[row, :len(tokens)] = tokens
        lengths = np.array([len(tokens) for tokens in ids], dtype=np.int64)  # (N,)
        _, probabilities = self.session.run(None, {"ids": padded, "lengths": lengths})  # (N, C)
        if probabilities.shape[1] == 1:  # one sigmoid output: p(the second label)
            probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)  # (N, 2)
        answers = []
        for text, row in zip(inputs, probabilities.astype(float).tolist()):
            best = max(range(len(row)), key=row.__getitem__)
            answers.append({"label": self.labels[best], "probability": row[best],
                            "probabilities": dict(zip(self.labels, row)), "text": text})
        return answers

    def forecast(self, columns: dict[str, list[float]], dates: list[str] | None) -> dict:
        raise InputError("--runtime onnx does not serve forecasters; serve the run with --runtime torch")

    def generate(self, options: dict[str, Any], piece: Callable[[str], None]) -> dict:
        model = _SequenceGraph(self.session)
        pieces = sample(model, self.vocab, **options)
        text = []
        for token in pieces:
            piece(token)
            text.append(token)
        return {"prime": options.get("prime", ""), "text": "".join(text)}


class _SequenceGraph:
    """A language model's sequence graph behind the call :func:`rnnkit.generate.sample` makes:
    ``model(tokens (N, L), state) -> (logits (N, L, V), state)``, the state a tuple of arrays."""

    training = False

    def __init__(self, session):
        self.session = session
        self.states = session.get_inputs()[2:]  # h0[, c0]: (layers × directions, N, H)

    def __call__(self, tokens: torch.Tensor, state=None):
        N, L = tokens.shape
        if state is None:
            state = [np.zeros((spec.shape[0], N, spec.shape[2]), dtype=np.float32) for spec in self.states]
        feed = {"ids": tokens.numpy().astype(np.int64), "lengths": np.full((N,), L, dtype=np.int64),
                **{spec.name: value for spec, value in zip(self.states, state)}}
        logits, *final = self.session.run(None, feed)  # (N, L, V), h_n[, c_n]
        return torch.from_numpy(logits), final

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self
