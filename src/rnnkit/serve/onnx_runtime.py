"""A file of ``rnnkit export --format onnx`` served on ONNX Runtime: :class:`OnnxRuntime`, for every task.

Everything the server needs is in the file: its task, vocabularies, labels and data settings are its metadata
(:mod:`rnnkit.export.writing`), its graphs the roles named in ``rnnkit.files`` (siblings in its folder). The file
becomes an :class:`ExportedRun`: the task's own trained object (``TrainedTagger``, ``TrainedTranslator``, ...)
holding the graphs in place of the PyTorch model (:mod:`rnnkit.serve.onnx_models`,
:mod:`rnnkit.serve.onnx_decoders`). Every request then runs the task's own operation, as on PyTorch
(:class:`~rnnkit.serve.torch_runtime.TorchRuntime`), so both runtimes check, encode, decode and answer alike:

    lm        sequence graph       rnnkit.generate.sample: the same filters and seeded draws
    classify  classifier graph     the run's tokenizing; softmax (or the sigmoid of one output) of the logits
    tag       tagger graph         emissions; the CRF's Viterbi in numpy (the file's viterbi.py), else argmax
    forecast  forecaster graph     the series read and transformed by the metadata's transform, and undone
    translate encoder + decoder_step   rnnkit's greedy and beam search (GNMT length penalty, <unk> alignment)
    caption   encoder + decoder_step   rnnkit's greedy search
    music     step graph           each frame drawn as PianoRollModel.sample draws it (same seed, same piece)

What the file does not hold is the run's default decoding for translation (``--beam``, ``--length-penalty`` of
training): it is read from the metadata ``rnnkit.decode`` where an export wrote one, else the defaults of
:class:`~rnnkit.tasks.translate.DecodeConfig`; a request's ``beam`` and ``length_penalty`` override it.
"""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit.data.music import PitchRange
from rnnkit.data.series import SeriesTransform
from rnnkit.data.text import vocab_from_dict
from rnnkit.data.vocab import SEQUENCE_SPECIALS, TokenVocab
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.tasks import caption, classify, forecast, lm, music, tag, translate
from rnnkit.tasks.spec import spec
from rnnkit.tasks.tag_encoding import Vocabularies
from rnnkit.tasks.trained import TrainedRun

from .onnx_decoders import CaptionerGraphs, Seq2SeqGraphs
from .onnx_models import ClassifierGraph, ForecasterGraph, LanguageModelGraph, MusicGraph, TaggerGraph
from .torch_runtime import TorchRuntime

# task -> the graph role of the file asked for that the model's stand-in reads first
FIRST_ROLE = {"lm": "sequence", "classify": "classifier", "tag": "tagger", "forecast": "forecaster",
              "translate": "encoder", "caption": "encoder", "music": "step"}


class OnnxRuntime(TorchRuntime):
    """The runtime of an exported ONNX file (see the module's docstring): the torch runtime's operations on an
    :class:`ExportedRun`.

    Args:
        path: the file ``rnnkit export RUN --format onnx --out FILE`` wrote (FILE; its siblings beside it).
        threads: ONNX Runtime's intra-op threads per call.
    """

    kind = "onnx"

    def __init__(self, path: str | Path, threads: int = 1):
        self.run = ExportedRun(path, threads)
        self.task, self.source = self.run.task, str(self.run.path)


class ExportedRun(TrainedRun):
    """An exported ONNX file as a :class:`~rnnkit.tasks.trained.TrainedRun`: its task's spec and trained object
    (the graphs standing in for the model), without a checkpoint. ``path`` is the file."""

    def __init__(self, path: str | Path, threads: int = 1):
        ort = require("onnxruntime", "export")
        self.path, self.checkpoint = Path(path), None
        if not self.path.is_file():
            raise InputError(f"{path}: no such file; give a file of `rnnkit export RUN --format onnx --out FILE`")
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = threads
        first = self._session(self.path, "is not an ONNX model onnxruntime can load")
        meta = first.get_modelmeta().custom_metadata_map
        if "rnnkit.task" not in meta or meta["rnnkit.task"] not in FIRST_ROLE:
            raise InputError(f"{path} is an ONNX model without rnnkit's metadata; serve a file of `rnnkit export`")
        if meta.get("rnnkit.graph") != FIRST_ROLE[meta["rnnkit.task"]]:
            raise InputError(f"{path} is the {meta.get('rnnkit.graph')} graph of an export; serve the file given to "
                             f"--out (the {FIRST_ROLE[meta['rnnkit.task']]} graph), which names its siblings")
        self.meta = meta
        self.spec = spec(meta["rnnkit.task"])
        self.sessions = {FIRST_ROLE[self.task]: first}
        for role, name in json.loads(meta["rnnkit.files"]).items():
            if role not in self.sessions:
                sibling = self.path.parent / name
                if not sibling.is_file():
                    raise InputError(f"{path} needs its {role} graph {sibling}, which is missing; keep the files of "
                                     "one export together")
                self.sessions[role] = self._session(sibling, "is not an ONNX model onnxruntime can load")
        self.trained = BUILD[self.task](self)

    def _session(self, path: Path, problem: str):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(path), self.options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a file that is not a model
            raise InputError(f"{path} {problem} ({type(error).__name__}); give a file of `rnnkit export RUN "
                             "--format onnx`") from None

    def __repr__(self) -> str:
        return f"ExportedRun({str(self.path)!r}, task={self.task!r})"

    def setting(self, key: str, default=None):
        """The metadata's ``rnnkit.<key>`` (JSON), or ``default`` where the file has none."""
        value = self.meta.get(f"rnnkit.{key}")
        return default if value is None else json.loads(value)

    @property
    def vocabulary(self) -> dict:
        if "rnnkit.vocabulary" in self.meta:
            return json.loads(self.meta["rnnkit.vocabulary"])
        return json.loads((self.path.parent / self.meta["rnnkit.vocabulary_file"]).read_text(encoding="utf-8"))

    @property
    def data(self) -> dict:
        """The run's data settings, without the training files' paths (the export leaves them out)."""
        return self.setting("data", {})


def _lm(run: ExportedRun):
    vocab = vocab_from_dict(run.vocabulary["vocab"])
    return lm.TrainedLanguageModel(LanguageModelGraph(run.sessions["sequence"], len(vocab)), vocab, None)


def _classify(run: ExportedRun):
    vocabulary = run.vocabulary
    labels = list(vocabulary["labels"])
    session = run.sessions["classifier"]
    model = ClassifierGraph(session, session.get_outputs()[0].shape[1])  # C; 1 for two labels and a sigmoid
    return classify.TrainedClassifier(model, TokenVocab.from_dict(vocabulary["vocab"]), labels,
                                      classify.ClassifyDataConfig(**{"data": "", **run.data}))


def _tag(run: ExportedRun):
    return tag.TrainedTagger(TaggerGraph(run.sessions["tagger"]), Vocabularies.from_dict(run.vocabulary["vocab"]),
                             tag.TagDataConfig(**run.data))


def _forecast(run: ExportedRun):
    config = forecast.ForecastDataConfig(**{"data": "", **run.data})
    return forecast.TrainedForecaster(ForecasterGraph(run.sessions["forecaster"]), config,
                                      SeriesTransform.from_dict(run.setting("transform")), int(run.setting("season")),
                                      "as trained (the exported file's season)")


def _translate(run: ExportedRun):
    vocabulary = run.vocabulary
    source = TokenVocab.from_dict(vocabulary["source_vocab"], SEQUENCE_SPECIALS)
    target = TokenVocab.from_dict(vocabulary["target_vocab"], SEQUENCE_SPECIALS)
    model = Seq2SeqGraphs(run.sessions["encoder"], run.sessions["decoder_step"], run.setting("model"))
    return translate.TrainedTranslator(model, source, target, run.data,
                                       translate.DecodeConfig(**run.setting("decode", {})))


def _caption(run: ExportedRun):
    vocab = TokenVocab.from_dict(run.vocabulary["vocab"], SEQUENCE_SPECIALS)
    model = CaptionerGraphs(run.sessions["encoder"], run.sessions["decoder_step"], run.setting("model"))
    return caption.TrainedCaptioner(model, vocab, tuple(run.setting("image_shape")),
                                    caption.CaptionDataConfig(**run.data))


def _music(run: ExportedRun):
    config = run.setting("model")
    pitches = PitchRange(*run.setting("pitch_range"))
    model = MusicGraph(run.sessions["step"], pitches.size, config["output"])
    return music.TrainedMusicModel(model, pitches, music.MusicDataConfig(**{"data": "", **run.data}), str(run.path))


# task -> the task's trained object made of the file's graphs
BUILD = {"lm": _lm, "classify": _classify, "tag": _tag, "forecast": _forecast, "translate": _translate,
         "caption": _caption, "music": _music}
