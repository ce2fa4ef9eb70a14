"""What every task declares once, in its own module: :class:`TaskSpec`, and the registry that finds it.

A task module ``rnnkit.tasks.NAME`` holds ``SPEC = TaskSpec(...)``: its name, its data config (a dataclass
saved as ``configs["data"]`` in every checkpoint), how the option values become model arguments (saved as
``configs["model"]``) and further saved settings, which of them a resumed run may change, how a run's data
and model are prepared for training, how a trained run is loaded (``from_checkpoint``), what training adds to
the report, and what its trained runs do: evaluate, predict, generate (:mod:`rnnkit.tasks.operations`).
Everything that trains, resumes, evaluates, predicts or generates is written once from these specs
(:mod:`rnnkit.tasks.run`, :mod:`rnnkit.tasks.trained`, :mod:`rnnkit.cli.task_command`).

    >>> spec("lm").noun
    'language model'
    >>> spec("lm").operations
    ('evaluate', 'generate')
    >>> tasks_with("generate", "temperature")
    ['lm', 'music']
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from rnnkit.checks import check_training_memory
from rnnkit.errors import InputError
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, RunDirectory, Task, TrainConfig

from .operations import OPERATIONS, Operation

# What every resumed run may change: how long it goes on and how the same arithmetic is run.
CHANGEABLE_ON_RESUME = frozenset({"epochs", "time_budget", "max_steps", "patience", "save_every", "engine"})

# The network every recurrent task builds (option name -> model argument): the flags of
# rnnkit.cli.options.recurrent_options.
NETWORK_OPTIONS = {"cell": "cell", "layers": "num_layers", "hidden": "hidden_size", "bidirectional": "bidirectional",
                   "dropout": "dropout", "engine": "engine", "block": "block"}

# The regularisers every recurrent model takes (option name -> model argument); saved with the model's
# other settings. A run saved before they existed loads with the models' defaults (0.0 / None).
REGULARISER_OPTIONS = {"recurrent_dropout": "recurrent_dropout", "zoneout": "zoneout", "weight_drop": "weight_drop",
                       "forget_bias": "forget_bias"}
# ... and embedding dropout (whole words), for the models that read token ids through an embedding.
EMBEDDING_REGULARISER_OPTIONS = {**REGULARISER_OPTIONS, "embedding_dropout": "embedding_dropout",
                                 "locked_dropout": "locked_dropout"}


@dataclass
class RunSettings:
    """Everything a training run is configured by: ``data`` (the task's data config), ``model`` (keyword
    arguments of its model builder), ``train`` and ``sections``: further saved settings by name (translate's
    ``decode``); ``recipe``: the named recipe it started from (:mod:`rnnkit.tasks.recipe`), saved as
    ``configs["recipe"]``, or None."""

    data: Any
    model: dict
    train: TrainConfig
    sections: dict[str, dict] = field(default_factory=dict)
    recipe: str | None = None


@dataclass
class Prepared:
    """What a task's ``prepare`` gives the training run: the (seeded, freshly built) model, the
    :class:`~rnnkit.train.Task` for the Trainer, ``run_info`` (what every checkpoint stores beside the
    Trainer's state: ``{"configs": {...}, "vocab": ...}``; the task name is added), the line that describes a
    new run, and ``data``: what the task's ``finish`` needs after training."""

    model: torch.nn.Module
    task: Task
    run_info: dict
    summary: str
    data: Any = None


@dataclass(frozen=True)
class TaskSpec:
    """One task, declared once.

    Args:
        name: the task's name: ``rnnkit train NAME``, and ``"task"`` in its checkpoints.
        noun: what a run of it holds, for messages ("DIR holds a classifier: ...").
        data_config: the dataclass of its data settings.
        prepare: ``prepare(settings, checkpoint, dist, warn) -> Prepared``: seed, read the data (checked
            against the ``checkpoint`` of a resumed run), build the model. All that can fail on what the
            user gave happens here, before a run directory is touched.
        from_checkpoint: ``from_checkpoint(checkpoint) -> trained``: what the task's evaluate / predict /
            generate apply (the model in eval mode on the CPU, with its vocabularies and settings).
        model_options: option name -> model argument, for the options saved as ``configs["model"]``.
        data_options: data-config field -> option name, where they differ.
        sections: further saved settings: section name -> {option name -> field}.
        path_fields: data-config fields that are file paths (saved absolute).
        changeable: options a resumed run may change besides :data:`CHANGEABLE_ON_RESUME`.
        required: what a new run must be given: option name -> how to give it ("--data CSV").
        derived_model_fields: saved model settings the task takes from its data (sizes), not from options.
        default_epochs: epochs when neither --epochs nor --time-budget is given.
        finish: ``finish(report, prepared, run_dir) -> report``: what training adds to its report (rank 0).
        described: the phrase for "not ..." in a refusal; default ``a 'NAME' one``.
        evaluate, predict, generate: what its trained runs do (:class:`~rnnkit.tasks.operations.Operation`),
            where the task has it: ``rnnkit evaluate RUN`` and ``rnnkit.load(RUN).evaluate(...)``.
    """

    name: str
    noun: str
    data_config: type
    prepare: Callable[..., Prepared]
    from_checkpoint: Callable[[Checkpoint], Any]
    model_options: Mapping[str, str]
    data_options: Mapping[str, str] = field(default_factory=dict)
    sections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    path_fields: tuple[str, ...] = ("data", "valid_data")
    changeable: frozenset[str] = frozenset({"data", "valid_data"})
    required: Mapping[str, str] = field(default_factory=dict)
    derived_model_fields: tuple[str, ...] = ()
    default_epochs: int = TrainConfig.epochs
    finish: Callable[..., dict] | None = None
    described: str | None = None
    evaluate: Operation | None = None
    predict: Operation | None = None
    generate: Operation | None = None

    @property
    def train_command(self) -> str:
        return f"train {self.name}"

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations its trained runs have, of evaluate, predict and generate."""
        return tuple(name for name in OPERATIONS if self.operation(name) is not None)

    def operation(self, name: str) -> Operation | None:
        """Its ``evaluate``, ``predict`` or ``generate``, or None where the task has none."""
        if name not in OPERATIONS:
            raise ValueError(f"no operation {name!r}; the operations are {', '.join(OPERATIONS)}")
        return getattr(self, name)

    def option_of(self, data_field: str) -> str:
        """The option that sets a data-config field."""
        return self.data_options.get(data_field, data_field)

    def check_run(self, meta: dict, run_dir: str | Path) -> None:
        """Refuse a run directory of another task with the command that made this task's runs."""
        found = meta.get("task")
        if found != self.name:
            wanted = self.described or f"a {self.name!r} one"
            raise InputError(f"{run_dir} holds a {found!r} run, not {wanted}; give the --out directory of "
                             f"`rnnkit {self.train_command}`")

    def from_run(self, run_dir: str | Path, which: str = "auto", checkpoint: Checkpoint | None = None) -> Any:
        """The trained model of a run directory (``from_checkpoint`` of its ``auto`` (best if any, else
        latest), ``latest`` or ``best`` checkpoint, or of ``checkpoint`` already loaded from it), after
        checking that the run is one of this task."""
        checkpoint = checkpoint or RunDirectory.open(run_dir).load(which)
        self.check_run(checkpoint.meta, run_dir)
        return self.from_checkpoint(checkpoint)


def spec(name: str) -> TaskSpec:
    """The spec of the task ``name`` (its module is imported now)."""
    return importlib.import_module(f"rnnkit.tasks.{name}").SPEC


def task_names() -> tuple[str, ...]:
    """Every task: the modules of :mod:`rnnkit.tasks` that declare a ``SPEC`` (each is imported now)."""
    import rnnkit.tasks

    return tuple(sorted(module.name for module in pkgutil.iter_modules(rnnkit.tasks.__path__) if is_task(module.name)))


def is_task(name) -> bool:
    """Whether ``name`` (a run's, say) is a task's: a module of :mod:`rnnkit.tasks` that declares a ``SPEC``;
    only that module is imported."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        return False
    if importlib.util.find_spec(f"rnnkit.tasks.{name}") is None:
        return False
    return isinstance(getattr(importlib.import_module(f"rnnkit.tasks.{name}"), "SPEC", None), TaskSpec)


def tasks_with(operation: str, option: str | None = None) -> list[str]:
    """The tasks that have ``operation`` (and, given ``option``, take that option in it), by name."""
    return [name for name in task_names() if (found := spec(name).operation(operation)) is not None
            and (option is None or found.option(option) is not None)]


SIZE_FIX = "lower the model's sizes (--hidden, --layers, --embedding)"


def build_within_memory(build: Callable[[], torch.nn.Module], fix: str = SIZE_FIX) -> torch.nn.Module:
    """``build()``, once its parameters are known to fit this machine's memory for training; else one line with
    the size needed and the size there is (``fix``: what to lower).

    The model is built first on PyTorch's meta device, which gives every shape without allocating (or drawing
    random numbers), so ``--hidden 1000000000`` is refused at once instead of failing inside the allocator.
    """
    try:
        with torch.device("meta"):
            probe = build()
    except RuntimeError as error:  # a size whose element count overflows even as a shape
        if "overflow" not in str(error):
            raise
        raise InputError(f"the model's sizes are too large to allocate at all; {fix}") from None
    element_size = max((p.element_size() for p in probe.parameters()), default=4)
    check_training_memory(parameter_count(probe), element_size, fix)
    return build()

