"""What ``rnnkit diagnose gradients`` and ``rnnkit diagnose memory`` measure, as the numbers they print and plot.

Both measure fresh one-layer layers of several cells (:class:`FreshLayers`, float64, each cell's default
initialisation) or a trained language model reading the first tokens of a text (:class:`TrainedText`), and
return one report: a dictionary of plain numbers (what ``--json`` prints), its ``title``, and the PNG written
at ``out``::

    fresh = FreshLayers(cells=["rnn", "lstm", "gru"], hidden_size=128, seed=0, forget_biases=[0.0, 1.0, 3.0])
    fresh.check_fits(length=200)                      # one line if the largest layer cannot fit in memory
    fresh.check_engine()                              # one line if its engine cannot run one of the cells
    report = gradient_report(fresh, length=200, loss="last", clip=1.0, out="gradients.png")
    report["cells"]["lstm+3"]["ratio"]                # ‖∂L/∂h_T‖ / ‖∂L/∂h_1‖ with forget bias +3
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.checks import TRAINING_COPIES, check_fits_in_memory
from rnnkit.data.text import CharVocab, WordVocab
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel
from rnnkit.models.recurrent import check_runs_on
from rnnkit.models.size import cell_parameter_count, parameter_count
from rnnkit.nn import get_cell

from .gradients import GradientFlow, embed_tokens, fresh_gradient_flow, fresh_layer, language_model_gradient_flow
from .memory import gate_saturation, input_influence
from .plots import curve_label, gradient_caption, plot_gradient_flow, plot_memory

INIT_WORDS = "PyTorch's default init"


@dataclass(frozen=True)
class FreshLayers:
    """Fresh one-layer layers, one per cell (and per forget bias for the cells with a forget gate), input size
    = hidden size, seeded; ``recurrent_scale`` multiplies W_hh after the initialisation; they run on ``engine``."""

    cells: list[str]
    hidden_size: int
    seed: int
    forget_biases: list[float]
    recurrent_scale: float = 1.0
    engine: str = "auto"

    def check_engine(self) -> None:
        """One line, before anything is computed, when the engine cannot run one of the cells."""
        for cell in self.cells:
            check_runs_on(cell, self.engine)

    def check_fits(self, length: int) -> None:
        """One line, before anything is allocated, when the largest layer (float64: its weights and their
        gradients, and a few vectors per step of the sequence) cannot fit in this machine's memory."""
        hidden = self.hidden_size
        parameters = max(cell_parameter_count(cell, hidden, hidden) for cell in self.cells)
        needed = 8 * (TRAINING_COPIES * parameters + 16 * length * hidden)
        check_fits_in_memory(needed, f"a fresh layer of --hidden {hidden} ({parameters:,} parameters) over "
                                     f"--length {length}", "lower --hidden or --length")

    def init_words(self) -> str:
        """``"PyTorch's default init, forget bias 0/+1/+3, W_hh ×5"``: how the layers start, in words."""
        words = [INIT_WORDS]
        if any(self.forget_biases):
            words.append("forget bias " + "/".join(f"{b:+g}" if b else "0" for b in self.forget_biases))
        if self.recurrent_scale != 1:
            words.append(f"W_hh ×{self.recurrent_scale:g}")
        return ", ".join(words)

    def words(self) -> str:
        engine = "" if self.engine == "auto" else f", engine {self.engine}"
        return f"fresh layers, H={self.hidden_size}, {self.init_words()}, seed {self.seed}{engine}"

    def header(self) -> dict:
        """The report's description of the layers."""
        return {"source": "fresh", "init": self.init_words(), "hidden_size": self.hidden_size, "seed": self.seed,
                "engine": self.engine}


@dataclass(frozen=True)
class TrainedText:
    """A trained language model of the run ``run_dir`` and the token ids (T,) it reads: the first tokens of
    the text from ``where`` (see :func:`first_tokens`)."""

    run_dir: str
    model: LanguageModel
    vocab: CharVocab | WordVocab
    ids: Tensor
    where: str


def first_tokens(vocab: CharVocab | WordVocab, text: str, where: str, tokens: int) -> Tensor:
    """The first ``tokens`` token ids (T,) of ``text``; one line naming ``where`` when it is too short, or, for
    a character model, when it holds characters the model never saw."""
    if vocab.level == "char":
        text = text[:tokens]
        unknown = vocab.unknown_symbols(text)
        if unknown:
            shown = ", ".join(repr(symbol) for symbol in unknown[:5])
            raise InputError(f"{where}: {len(unknown)} character(s) the model never saw ({shown}); "
                             "give a text written with the training alphabet")
    ids = vocab.encode(text)[:tokens]  # (T,)
    if len(ids) < tokens:
        raise InputError(f"{where} has only {len(ids)} {vocab.level} tokens; --length needs {tokens}: "
                         "give a longer --text or a smaller --length")
    return ids


# ------------------------------------------------------------------------------------------- gradients


def gradient_report(fresh: FreshLayers, *, length: int, loss: str, clip: float | None, out,
                    trained: TrainedText | None = None) -> dict:
    """‖∂L/∂h_t‖ over ``length`` steps for every fresh layer and, with ``trained``, the trained model over its
    text (``trained.ids`` holds ``length + 1`` tokens: the last one is only predicted); what clipping the
    gradient's norm to ``clip`` (None: no clipping) does to each curve. Draws them all at ``out``."""
    curves = {}
    for cell in fresh.cells:
        biases = fresh.forget_biases if get_cell(cell).forget_gate is not None else [0.0]
        for bias in biases:
            flow = fresh_gradient_flow(cell, length=length, hidden_size=fresh.hidden_size, seed=fresh.seed,
                                       loss=loss, forget_bias=bias, recurrent_scale=fresh.recurrent_scale,
                                       engine=fresh.engine)
            key = cell if bias == 0 else f"{cell}{bias:+g}"
            curves[key] = {"cell": cell, "forget_bias": bias, "label": curve_label(cell, bias),
                           **_flow_numbers(flow, clip, fresh.hidden_size, _fresh_parameters(cell, fresh.hidden_size))}
    report = fresh.header()
    run = None
    if trained is not None:
        config = trained.model.config
        flow = language_model_gradient_flow(trained.model, trained.ids, loss=loss)
        parameters = parameter_count(trained.model.rnn)
        run = {"run_dir": trained.run_dir, "text": trained.where, "cell": config.cell, "layers": config.num_layers,
               "engine": trained.model.rnn.engine,
               "label": f"trained: {trained.run_dir} ({config.cell}, {config.num_layers}×{config.hidden_size})",
               **_flow_numbers(flow, clip, config.hidden_size, parameters)}
        report.update({"source": "fresh and run", "run_dir": trained.run_dir, "text": trained.where})
    loss_words = "the loss at the last step" if loss == "last" else "the loss summed over all steps"
    title = f"gradient flow through {length} steps: {fresh.words()}; L = {loss_words}"
    caption = gradient_caption(loss, trained=run is not None)
    plot = plot_gradient_flow(curves, out, title, caption, run=run)
    report.update({"length": length, "loss": loss, "clip": clip, "cells": curves, "run": run, "caption": caption,
                   "title": title, "plot": str(plot)})
    return report


def _fresh_parameters(cell: str, hidden: int) -> int:
    return parameter_count(fresh_layer(cell, hidden, hidden, seed=0))  # input size = hidden size


def _finite(value: float) -> float | None:
    """JSON has no inf or nan: a ratio that is not a finite number (0 in the denominator) becomes null."""
    return value if math.isfinite(value) else None


def _flow_numbers(flow: GradientFlow, clip: float | None, hidden_size: int, parameters: int) -> dict:
    layers = flow.hidden.shape[0]
    clipped = flow.clipped(clip)  # (num_layers, L)
    return {
        "hidden_size": hidden_size,
        "parameters": parameters,
        "ratio": _finite(flow.ratio()),
        "ratios": [_finite(flow.ratio(layer)) for layer in range(layers)],
        "norms": flow.hidden.tolist(),
        "cell_norms": None if flow.cell is None else flow.cell.tolist(),
        "parameter_gradient_norm": flow.parameter_norm,
        "clip_scale": flow.clip_scale(clip),
        "clipped_norms": clipped.tolist(),
        # measured on the clipped curve, to show that clipping leaves it as it was
        "clipped_ratio": _finite(float(clipped[-1, -1] / clipped[-1, 0])) if float(clipped[-1, 0]) > 0 else None,
    }


# ------------------------------------------------------------------------------------------- memory


def memory_report(*, length: int, out, fresh: FreshLayers | None = None, trained: TrainedText | None = None,
                  seed: int = 0) -> dict:
    """How much the first input x_1 still moves h_t over ``length`` steps (‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ with
    x_1 replaced), and how often each gate saturates: for every fresh layer (one random N(0, 1) sequence,
    the same for every cell), or for the trained model (its top layer; x_1 replaced by the embedding of
    another token, drawn with ``seed``). Draws the curves at ``out``.

    Forward-mode autodiff runs on PyTorch's kernels and through the cell's reference equations only, so both
    measures of influence run on the fused engine where the layers' engine is fused, else on the reference
    one (:func:`~rnnkit.diagnose.memory.input_influence`); the gates are traced on the layers' engine where it
    keeps them, else on the explicit one (``Trace.engine``)."""
    if trained is None:
        cells = {cell: _fresh_memory(cell, fresh, length) for cell in fresh.cells}
        source, report = fresh.words(), fresh.header()
    else:
        cell, numbers, replaced = _trained_memory(trained, seed)
        cells = {cell: numbers}
        config = trained.model.config
        source = (f"{trained.run_dir} ({config.cell}, top layer of {config.num_layers}) on {trained.where}, "
                  f"{replaced}")
        report = {"source": "run", "run_dir": trained.run_dir, "text": trained.where,
                  "engine": trained.model.rnn.engine}
    title = f"memory of the first input over {length} steps: {source}"
    plot = plot_memory(cells, out, title)
    report.update({"length": length, "cells": cells, "title": title, "plot": str(plot)})
    return report


def _fresh_memory(cell: str, fresh: FreshLayers, length: int) -> dict:
    hidden, seed = fresh.hidden_size, fresh.seed
    layer = fresh_layer(cell, hidden, hidden, seed=seed, forget_bias=fresh.forget_biases[0],
                        recurrent_scale=fresh.recurrent_scale, engine=fresh.engine)
    generator = torch.Generator().manual_seed(seed + 1)  # the same sequence for every cell
    x = torch.randn(length, hidden, generator=generator, dtype=torch.float64)  # (L, H_in)
    replacement = torch.randn(hidden, generator=generator, dtype=torch.float64)  # (H_in,)
    return _memory_numbers(layer, x, replacement, hidden)


def _trained_memory(trained: TrainedText, seed: int) -> tuple[str, dict, str]:
    """(the model's cell, its numbers, which token replaced the first one, in words)."""
    if getattr(trained.model.config, "block", "plain") != "plain":
        raise InputError(f"{trained.run_dir} was trained with --block {trained.model.config.block}: its layers read "
                         "through normalisations and residual adds, so the memory of one state is not what its "
                         "recurrent layer alone keeps; run `rnnkit diagnose memory --cells CELL` on fresh layers, or "
                         "on a run trained with --block plain")
    model, ids = copy.deepcopy(trained.model).double(), trained.ids
    if model.vocab_size < 2:
        raise InputError(f"{trained.run_dir}'s model knows a single token; there is no other first input to put "
                         "in its place")
    generator = torch.Generator().manual_seed(seed)
    other = int(torch.randint(0, model.vocab_size - 1, (1,), generator=generator))
    other += other >= int(ids[0])  # any token but the first one
    with torch.no_grad():
        x = embed_tokens(model, ids)  # (L, H_in)
        replacement = embed_tokens(model, torch.tensor([other]))[0]  # (H_in,)
    config = model.config
    numbers = _memory_numbers(model.rnn, x, replacement, config.hidden_size)
    replaced = f"{trained.vocab.piece(int(ids[0]))!r} replaced by {trained.vocab.piece(other)!r}"
    numbers["replaced"] = replaced
    return config.cell, numbers, replaced


def _memory_numbers(layer, x: Tensor, replacement: Tensor, hidden_size: int) -> dict:
    influence = input_influence(layer, x, replacement)
    return {
        "hidden_size": hidden_size,
        "jacobian": influence.jacobian.tolist(),
        "replacement": influence.replacement.tolist(),
        "gate_saturation": gate_saturation(layer, x) or None,
    }
