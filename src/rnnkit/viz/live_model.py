r"""The language model as the explain page runs it: weights for the browser, and the Python side of the comparison.

:func:`browser_model` packs a :class:`~rnnkit.models.LanguageModel` into the JSON object that ``model.js``
reads: the vocabulary, every tensor the forward pass needs as float32, concatenated and base64-encoded (4 bytes
a weight, +1/3 for base64: a 2 × 256 character LSTM with a 64-wide embedding is 0.89 M weights, 4.7 MB), and each
layer's step: its cell's own equations (``reference_step`` of rnnkit/nn/cells/NAME.py) traced into a program of
ATen operations (:mod:`rnnkit.viz.step_program`). ``model.js`` then computes, token by token, in float64::

    x_t = E[w_t]  (embedding)   or   one_hot(w_t)
    h_t^(k), c_t^(k) = the step program of layer k, k = 0 .. K-1, x_t into layer 0, in evaluation
                       (zoneout: p h_{t-1} + (1 - p) h~_t; every dropout off)
    p(w_{t+1} | w_1..w_t) = softmax(W_dec h_t^(K-1) + b_dec)

Any registered cell runs in the page when its step uses only operations that ``model.js`` computes; the page
keeps no list of cells (:func:`unsupported_reason` says why one cannot run: an operation, a bidirectional
model, ...).

:func:`final_outputs` is the same computation in PyTorch (the model's own forward, in eval mode): the final
hidden state of every layer and the next-token probabilities, as ``rnnkitModel.run(text)`` returns them in
the page, so that ``rnnkit explain --json`` and the browser can be compared number for number.

Tokens follow :func:`~rnnkit.viz.tokenize_positions`: at character level a character outside the
vocabulary is skipped (the model reads on as if it were not there); at word level words are the runs of
characters that are not whitespace (Python's ``str.isspace``, which ``str.split`` uses), every newline is
``<eos>`` and a word outside the vocabulary is ``<unk>``.

The data format::

    {"cell": "lstm", "layers": K, "hidden": H, "inputSize": E or V, "vocabSize": V, "level": "char" | "word",
     "symbols": [str, ...], "unk": id | null, "eos": id | null, "whitespace": str, "embedding": bool,
     "zoneout": float, "tensors": {name: [offset, shape]}, "weights": BASE64 (float32, little-endian),
     "steps": [the step program of layer k, for k = 0 .. K-1]}

with tensor names ``embedding.weight``, ``decoder.weight``, ``decoder.bias`` and, per layer k, the layer's own
parameter names without the ``_l{k}`` suffix prefixed by ``"k/"`` (``0/weight_ih``, ``0/bias_hh``, ...): the
names its step program's inputs give.
"""

from __future__ import annotations

import base64
import re
import sys
from functools import cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.text import CharVocab, WordVocab
from ..models import LanguageModel
from ..nn import get_cell
from .activations import tokenize_positions
from .step_program import UnsupportedStep, step_program

LAYER_SUFFIX = re.compile(r"^(?P<name>.+)_l(?P<layer>\d+)$")
FORWARD_CHUNK = 4096  # tokens per forward call of final_outputs


def cell_name(model: LanguageModel) -> str:
    """The registered name of the cell the model's layers run (the layer is asked: ``"rnn"`` in a configuration
    is the ``"rnn_tanh"`` cell)."""
    cell = getattr(model.rnn, "cell", None)
    return cell.name if cell is not None else get_cell(model.config.cell).name


def unsupported_reason(model: LanguageModel) -> str | None:
    """Why the page cannot run ``model`` in the browser, in a few words; None when it can."""
    rnn = model.rnn
    if getattr(rnn, "bidirectional", False):
        return "the model is bidirectional"
    if getattr(rnn, "proj_size", 0):
        return "the LSTM has projections (proj_size)"
    if getattr(rnn, "init_state", "zeros") != "zeros":
        return f"its initial state is {rnn.init_state!r}, not zeros"
    if hasattr(rnn, "blocks"):
        return "its layers are residual blocks (--block residual), which the page's model does not run"
    if not isinstance(model.decoder, torch.nn.Linear):
        return "its output is an adaptive softmax (--adaptive-softmax), which the page's model does not run"
    if getattr(rnn, "cell", None) is None:
        return f"its layers are not rnnkit's, whose cells declare their step ({type(rnn).__name__})"
    try:
        layer_steps(model)
    except UnsupportedStep as reason:
        return str(reason)
    return None


def layer_steps(model: LanguageModel) -> list[dict]:
    """Each layer's step program (:func:`~rnnkit.viz.step_program.step_program`) on its own parameters."""
    parameters: list[dict[str, torch.Tensor]] = [{} for _ in range(model.rnn.num_layers)]
    for name, parameter in model.rnn.named_parameters():
        match = LAYER_SUFFIX.match(name)
        if match is None:
            raise ValueError(f"recurrent parameter {name!r} does not end in _l<layer>; model.js cannot place it")
        parameters[int(match["layer"])][match["name"]] = parameter
    rnn = model.rnn
    return [step_program(rnn.cell, layer, rnn.input_size if k == 0 else rnn.hidden_size)
            for k, layer in enumerate(parameters)]


@cache
def python_whitespace() -> str:
    """Every character ``str.isspace`` accepts: what ``str.split()`` (and so WordVocab) splits words at."""
    return "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def browser_model(model: LanguageModel, vocab: CharVocab | WordVocab) -> dict:
    """The JSON object ``model.js`` runs (format in the module docstring); check :func:`unsupported_reason` first."""
    reason = unsupported_reason(model)
    if reason is not None:
        raise ValueError(f"cannot run this model in the browser: {reason}")
    tensors: dict[str, torch.Tensor] = {}
    if model.embedding is not None:
        tensors["embedding.weight"] = model.embedding.weight  # (V, E)
    for name, parameter in model.rnn.named_parameters():
        match = LAYER_SUFFIX.match(name)
        tensors[f"{match['layer']}/{match['name']}"] = parameter
    tensors["decoder.weight"] = model.decoder.weight  # (V, H)
    tensors["decoder.bias"] = model.decoder.bias  # (V,)

    index, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        values = tensor.detach().to(torch.float32).cpu().contiguous().numpy()
        index[name] = [offset, list(values.shape)]
        blobs.append(values.astype("<f4").ravel())
        offset += values.size
    weights = np.concatenate(blobs) if blobs else np.zeros(0, "<f4")
    rnn = model.rnn
    return {
        "cell": cell_name(model),
        "layers": rnn.num_layers,
        "hidden": rnn.hidden_size,
        "inputSize": rnn.input_size,
        "vocabSize": model.vocab_size,
        "level": vocab.level,
        "symbols": list(vocab.symbols),
        "unk": vocab.unk_id,
        "eos": getattr(vocab, "eos_id", None),
        "whitespace": python_whitespace() if vocab.level == "word" else "",
        "embedding": model.embedding is not None,
        "zoneout": float(getattr(rnn, "zoneout", 0.0) or 0.0),
        "tensors": index,
        "weights": base64.b64encode(weights.tobytes()).decode("ascii"),
        "steps": layer_steps(model),
    }


@torch.no_grad()
def forward_state(model: LanguageModel, ids: torch.Tensor, progress: Callable[[int], None] | None = None):
    """(the state after reading ``ids`` (T,) from a zero state, as the model's layers return it; the logits of
    the last token (V,)): the model's own forward in eval mode, ``FORWARD_CHUNK`` tokens a call with the state
    carried, so a long text needs little memory; ``progress(n)`` after each call. The model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        state, logits = None, None
        for start in range(0, len(ids), FORWARD_CHUNK):
            chunk = ids[start : start + FORWARD_CHUNK].unsqueeze(0)  # (1, L)
            logits, state = model(chunk, state)  # (1, L, V)
            if progress is not None:
                progress(chunk.shape[1])
    finally:
        model.train(was_training)
    return state, (logits[0, -1] if logits is not None else None)


@torch.no_grad()
def final_outputs(model: LanguageModel, vocab: CharVocab | WordVocab, text: str,
                  progress: Callable[[int], None] | None = None) -> dict:
    """``{"hidden": [[h_T of layer k] for k], "next": [p(token | text) in vocabulary order]}`` from the model's
    own forward pass in eval mode (:func:`forward_state`: chunked, so a long text needs little memory): what
    ``rnnkitModel.run(text)`` returns in the page. ``progress(n)``: called with the tokens read, chunk by chunk.

    A text with no token the model can read leaves the state at zero; ``next`` is then the prediction
    from the zero state, softmax(b_dec + W_dec · 0).
    """
    _, ids, _ = tokenize_positions(vocab, text)
    ids = torch.from_numpy(ids[ids >= 0])  # (T,) characters outside the vocabulary are skipped
    if len(ids):
        state, last = forward_state(model, ids, progress)
        h_n = state[0] if isinstance(state, tuple) else state  # (K, 1, H)
        hidden = h_n[:, 0]  # (K, H)
    else:
        hidden = torch.zeros(model.rnn.num_layers, model.rnn.hidden_size)  # (K, H)
        last = model.decoder(hidden[-1])  # (V,)
    return {"hidden": hidden.double().tolist(), "next": F.softmax(last.double(), dim=-1).tolist()}


def labelled_next(probabilities: list[float], symbols: list[str]) -> dict[str, float]:
    """``final_outputs``'s ``"next"`` (vocabulary order) as {token: probability}, the most likely first: what
    ``rnnkit explain --json`` prints, so that a reader sees which token each number is for."""
    order = sorted(range(len(probabilities)), key=lambda i: (-probabilities[i], i))
    return {symbols[i]: probabilities[i] for i in order}
