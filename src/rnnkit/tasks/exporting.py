r"""A trained run out of Python: which graphs each task's model becomes, with what metadata, and the export itself
(``rnnkit export RUN`` and ``rnnkit.load(RUN).export(...)``).

Per task (the graphs are :mod:`rnnkit.export.graphs`' and :mod:`rnnkit.export.graphs_decoders`'; the first
one goes to the file asked for, the others beside it, named by their role):

    lm          sequence, step            classify    classifier            tag       tagger (+ viterbi.py)
    forecast    forecaster                translate   encoder, decoder_step caption   encoder, decoder_step
    music       step

Example::

    run = rnnkit.load("runs/code")
    run.export(format="onnx", out="code.onnx")               # {"files": ["code.onnx", "code.step.onnx"], ...}
    run.export(format="onnx", out="code.onnx", quantize="int8")   # + "validation": float32 vs int8
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Callable

import rnnkit
from rnnkit.errors import InputError
from rnnkit.export import graphs as single
from rnnkit.export import graphs_decoders as decoders
from rnnkit.export.graph_contract import Graph
from rnnkit.files import human_size
from rnnkit.train import Checkpoint
from rnnkit.train.outputs import check_output

FORMATS = ("onnx", "exported-program")
QUANTIZATIONS = ("int8",)
# what a checkpoint holds of the vocabularies (inline or beside the file), and of the settings a deployer needs
VOCABULARY_KEYS = ("vocab", "source_vocab", "target_vocab", "labels")
SETTING_KEYS = ("transform", "season", "pitch_range", "image_shape")
# data-config fields that are where the training data lay on the training machine: not the deployer's business
PATH_FIELDS = {"data", "valid_data"}
TASK_PATH_FIELDS = {"translate": {"source", "target", "valid_source", "valid_target"}}  # forecast's target is a column

# task -> the graphs of its trained object (what the task's from_checkpoint gives)
GRAPHS: dict[str, Callable[[object], list[Graph]]] = {
    "lm": lambda trained: single.language_model_graphs(trained.model),
    "classify": lambda trained: single.classifier_graphs(trained.model),
    "tag": lambda trained: single.tagger_graphs(trained.model),
    "forecast": lambda trained: single.forecaster_graphs(trained.model, trained.config.window,
                                                         _transform_words(trained.transform.to_dict())),
    "translate": lambda trained: decoders.seq2seq_graphs(trained.model),
    "caption": lambda trained: decoders.captioner_graphs(trained.model),
    "music": lambda trained: decoders.music_graphs(trained.model),
}


def task_graphs(task: str, trained) -> list[Graph]:
    """The graphs of a trained run of ``task``."""
    if task not in GRAPHS:
        raise InputError(f"runs of task {task!r} cannot be exported yet; the tasks that can: {', '.join(GRAPHS)}")
    return GRAPHS[task](trained)


def common_metadata(task: str, model, checkpoint: Checkpoint) -> dict[str, object]:
    """What every file of a run's export says (beside its own role and contract): see
    :mod:`rnnkit.export.writing`."""
    meta = checkpoint.meta
    config = model.config
    config = asdict(config) if is_dataclass(config) else dict(config)
    common = {"version": rnnkit.__version__, "task": task, "cell": config.get("cell", ""), "model": config}
    paths = PATH_FIELDS | TASK_PATH_FIELDS.get(task, set())
    data = {key: value for key, value in meta.get("configs", {}).get("data", {}).items() if key not in paths}
    if data:
        common["data"] = data
    for key in SETTING_KEYS:
        if key in meta:
            common[key] = meta[key]
    decode = meta.get("configs", {}).get("decode")
    if decode:  # a translator's beam search as trained (beam size, length penalty): the serving default
        common["decode"] = decode
    return common


def vocabulary_of(checkpoint: Checkpoint) -> dict | None:
    """The run's vocabularies, labels and tags by their checkpoint names; None for a task without any."""
    found = {key: checkpoint.meta[key] for key in VOCABULARY_KEYS if key in checkpoint.meta}
    return found or None


def extra_files(task: str, model, out: Path) -> dict[str, bytes]:
    """Files written beside the graphs: the numpy Viterbi of a tagger with a CRF."""
    if task == "tag" and getattr(model, "crf", None) is not None:
        from rnnkit.export import viterbi

        return {f"{out.stem}.viterbi.py": Path(viterbi.__file__).read_bytes()}
    return {}


def export_run(run, format: str = "onnx", out: str | Path | None = None, quantize: str | None = None,
               data: str | Path | None = None) -> dict:
    """Export the trained run ``run`` (a :class:`~rnnkit.tasks.trained.TrainedRun`); returns what the command
    prints with ``--json``: ``{"files": [...], "sizes": {file: bytes}, "format", "task", "quantize"}`` and, with
    ``quantize``, ``"validation"``: the task's validation scores of the float32 and the int8 files."""
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InputError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if quantize is not None and format != "onnx":
        raise InputError("--quantize int8 needs --format onnx: PyTorch's dynamic int8 (quantize_dynamic on the "
                         "nn.Linear layers) runs, but torch.export cannot trace its packed weights "
                         "(LinearPackedParamsBase has no __obj_flatten__); use --format onnx --quantize int8")
    if out is None:
        raise InputError("give the file to write with --out FILE (e.g. model.onnx)")
    out = Path(out)
    if not out.suffix:
        out = out.with_suffix(".onnx" if format == "onnx" else ".pt2")
    from rnnkit.export.writing import planned_paths, write_graphs

    model = run.model.eval()
    graphs = task_graphs(run.task, run.trained)
    vocabulary = vocabulary_of(run.checkpoint)
    extras = extra_files(run.task, model, out)
    for path in planned_paths(out, graphs, vocabulary, extras):
        check_output(path, "--out", inputs=[data], example="model.onnx")
    common = common_metadata(run.task, model, run.checkpoint)
    measured = None
    if quantize is None:
        files = write_graphs(graphs, out, format=format, common=common, vocabulary=vocabulary, extra_files=extras)
    else:
        from rnnkit.export.quantize import QuantizedExport

        from .export_check import compare_on_validation

        with QuantizedExport() as quantized:
            files = write_graphs(graphs, out, format=format, common=common, vocabulary=vocabulary,
                                 extra_files=extras, transform=quantized)
            int8_files = {graph.role: path for graph, path in zip(graphs, files)}
            measured = compare_on_validation(run, quantized.float_files, int8_files, data)
    report = {"task": run.task, "format": format, "quantize": quantize, "files": [str(path) for path in files],
              "sizes": {str(path): path.stat().st_size for path in files}}
    if measured is not None:
        report["validation"] = measured
    return report


def format_report(report: dict) -> str:
    """The command's text: one line per file with its size, then the validation comparison if any."""
    lines = [f"wrote {path} ({human_size(size)})" for path, size in report["sizes"].items()]
    measured = report.get("validation")
    if measured is not None:
        lines.append(measured["summary"])
    return "\n".join(lines)


def _transform_words(transform: dict) -> str:
    """The saved series transform in words, in the order it is applied, for the forecaster's contract."""
    steps = ["log of the target"] if transform.get("log") else []
    steps.append("(x - mean) / std per feature (the metadata's transform)")
    if transform.get("difference"):
        steps.append("the target minus the window's last target value")
    return ", then ".join(steps)
