r"""How much an exported file's answers differ from another's on the task's own validation data: float32 against
int8 (``rnnkit export RUN --quantize int8``), both run by onnxruntime.

The task's validation batches and its loss come from the task itself (its ``prepare`` rebuilds them from the
run's saved data settings, or from ``--data FILE`` given as the validation data), so the numbers are those that
training reports: the validation loss of every task, perplexity for a language model, and the task's own scores
(accuracy, F1, MAE) for the classifier, the tagger and the forecaster. The model they are computed with is an
:class:`OnnxStandIn`: the exported graphs run by onnxruntime behind the PyTorch model's call, so that the task's
code cannot tell the difference (the search loops of translate and caption, and the CRF's decode, run around it).
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.train import DistContext, TrainConfig, summed_token_loss

from .spec import RunSettings, spec

# the tasks whose score_validation reads the model only through its forward (and methods the stand-in delegates)
SCORED = ("classify", "tag", "forecast")


class OnnxStandIn:
    """The exported graphs of one model behind the call of the PyTorch ``model`` it was exported from;
    attributes other than the call (``decode``, ``parameters``, ``eval``) are the PyTorch model's."""

    def __init__(self, task: str, model: torch.nn.Module, files: dict[str, Path]):
        ort = require("onnxruntime", "export")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.task, self.model = task, model
        self.sessions = {role: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                         for role, path in files.items()}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def run(self, role: str, *inputs) -> list[torch.Tensor]:
        session = self.sessions[role]
        feed = {spec.name: _array(value) for spec, value in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(np.asarray(value)) for value in session.run(None, feed)]

    def zeros(self, role: str, batch: int, skip: int) -> list[np.ndarray]:
        """Zero states for the inputs of ``role`` after the first ``skip``, (rows, batch, width) each."""
        return [np.zeros((spec.shape[0], batch, spec.shape[2]), dtype=np.float32)
                for spec in self.sessions[role].get_inputs()[skip:]]

    def __call__(self, *args, **keywords):
        return getattr(self, f"_{self.task}")(*args, **keywords)

    def _classify(self, tokens, lengths=None):
        return self.run("classifier", tokens, _lengths(lengths, tokens))[0]  # (N, C)

    def _forecast(self, window):
        return self.run("forecaster", window.float())[0]  # (N, K)

    def _tag(self, words, lengths=None, chars=None):
        return self.run("tagger", words, _lengths(lengths, words), *([] if chars is None else [chars]))[0]

    def _lm(self, tokens, state=None, targets=None):
        """The LanguageModel's call: the logits, or with ``targets`` their summed cross-entropy (as the task asks)."""
        N = tokens.size(0)
        states = self.zeros("sequence", N, 2) if state is None else list(state if isinstance(state, tuple)
                                                                          else (state,))
        logits, *final = self.run("sequence", tokens, _lengths(None, tokens), *states)  # (N, L, V)
        if targets is not None:
            logits = summed_token_loss(logits, targets)[0]
        return logits, tuple(final) if len(final) > 1 else final[0]

    def _translate(self, source, lengths, target_inputs, teacher_forcing=1.0):
        encoded = self.run("encoder", source, _lengths(lengths, source))
        return self._decode_steps(target_inputs, [], encoded)

    def _caption(self, images, target_inputs, teacher_forcing=1.0):
        features, *state = self.run("encoder", images.reshape(images.size(0), *self.model.image_size))
        return self._decode_steps(target_inputs, [features], state)

    def _decode_steps(self, target_inputs, before, after):
        """Teacher-forced logits (N, T, V) of the decoder step, ``before`` the state and ``after`` it carried
        along: seq2seq's state comes first and its memory after; the captioner's features come first."""
        state_size = 2 if self.model.decoder.cell.has_cell_state else 1
        if before:  # captioner: tokens, features, state
            state, memory = list(after), []
        else:  # seq2seq: tokens, state, memory
            state, memory = list(after[:state_size]), list(after[state_size:])
        logits = []
        for i in range(target_inputs.size(1)):
            step_logits, *outputs = self.run("decoder_step", target_inputs[:, i], *before, *state, *memory)
            state = outputs[:state_size]
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # (N, T, V)

    def _music(self, rolls, lengths=None):
        N, L, P = rolls.shape
        state = self.zeros("step", N, 2)
        previous, outputs = torch.zeros(N, P), []
        for t in range(L):
            start = torch.full((N, 1), 1.0 if t == 0 else 0.0)
            frame, *rest = self.run("step", previous, start, *state)
            if self.model.config.output == "bernoulli":
                outputs.append(frame)  # (N, P) logits
                state = rest[1:]
            else:
                hidden_bias, W, V, *state = rest
                outputs.append(_nade_logits(frame, hidden_bias, W, V, rolls[:, t]))
            previous = rolls[:, t]
        logits = torch.stack(outputs, dim=1)  # (N, L, P)
        log_probs = -F.binary_cross_entropy_with_logits(logits, rolls, reduction="none").sum(-1)  # (N, L)
        if lengths is not None:
            log_probs = log_probs * (torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)).to(log_probs.dtype)
        return log_probs


def _nade_logits(visible_bias, hidden_bias, W, V, frame):
    """z (N, P): the logit of each pitch given the frame's lower pitches, from the step graph's NADE outputs."""
    P = frame.size(1)
    below = torch.ones(P, P).tril(-1)  # [p, q] = 1 for q < p
    a = hidden_bias.unsqueeze(1) + (frame.unsqueeze(1) * below) @ W.t()  # (N, P, G)
    return visible_bias + (torch.sigmoid(a) * V).sum(-1)  # (N, P)


def _array(value) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _lengths(lengths, rows: torch.Tensor) -> torch.Tensor:
    if lengths is None:
        return torch.full((rows.size(0),), rows.size(1), dtype=torch.long)
    return lengths.long()


def validation_task(run, data: str | Path | None):
    """The run's task with its validation batches (from the saved data settings, or ``data`` as the validation
    file); InputError naming --data when there are none."""
    configs = run.checkpoint.meta["configs"]
    task_spec = spec(run.task)
    data_config = task_spec.data_config(**configs["data"])
    if data is not None:
        if "valid_data" not in {f.name for f in fields(data_config)}:
            raise InputError(f"--data is not read for a {task_spec.noun}: its validation data is the run's own")
        data_config = replace(data_config, valid_data=str(data))
    sections = {name: configs[name] for name in task_spec.sections if name in configs}
    model = {key: value for key, value in configs["model"].items() if key not in task_spec.derived_model_fields}
    settings = RunSettings(data_config, model, TrainConfig(**configs["train"]), sections)
    try:
        prepared = task_spec.prepare(settings, run.checkpoint, DistContext(), None)
    except InputError as error:
        raise InputError(f"the run's validation data cannot be read ({error}); give it with --data FILE") from None
    if prepared.task.valid_batches() is None:
        raise InputError("the run holds no validation data; give the data to compare on with --data FILE")
    return prepared.task


@torch.no_grad()
def scores(task, model, name: str) -> dict[str, float]:
    """The validation loss (per target, as training reports it) and the task's own scores of ``model``."""
    total, count, state = 0.0, 0, None
    for batch in task.valid_batches():
        result = task.loss(model, batch, state)
        total, count, state = total + float(result.loss_sum), count + result.n_tokens, result.state
    found = {"loss": total / max(count, 1)}
    if hasattr(task, "metrics"):
        found.update(task.metrics(found["loss"]))
    if name in SCORED:
        found.update(task.score_validation(model))
    return found


def compare_on_validation(run, float_files: dict[str, Path], int8_files: dict[str, Path],
                          data: str | Path | None) -> dict:
    """float32 vs int8 (role -> file each) through onnxruntime on the run's validation data: each one's scores,
    the change of each score, the file sizes and their ratio, and a one-line summary."""
    task = validation_task(run, data)
    model = run.model.eval()
    float_scores = scores(task, OnnxStandIn(run.task, model, float_files), run.task)
    int8_scores = scores(task, OnnxStandIn(run.task, model, int8_files), run.task)
    change = {key: int8_scores[key] - float_scores[key] for key in float_scores
              if isinstance(float_scores[key], (int, float)) and math.isfinite(float_scores[key])}
    float_size = sum(path.stat().st_size for path in float_files.values())
    int8_size = sum(path.stat().st_size for path in int8_files.values())
    shown = [key for key in ("accuracy", "perplexity", "mae", "f1", "loss") if key in change][:2]
    summary = "int8 vs float32 on the validation data: " + ", ".join(
        f"{key} {float_scores[key]:.4g} -> {int8_scores[key]:.4g} ({change[key]:+.4g})" for key in shown)
    summary += f"; size {int8_size:,} / {float_size:,} bytes = {int8_size / float_size:.3f}x"
    return {"float32": float_scores, "int8": int8_scores, "change": change, "float32_bytes": float_size,
            "int8_bytes": int8_size, "size_ratio": int8_size / float_size, "summary": summary}
