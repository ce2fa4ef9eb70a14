"""The training run of any task, written once from its :class:`~rnnkit.tasks.spec.TaskSpec`.

:func:`train` is the library's one entry point: prepare (seed, data, model), the Trainer, restore a
resumed run, fit, and the task's additions to the report. :func:`run_in_process_group` is the sequence
the command line runs it in: the (possibly distributed) process group of ``device``, the run directory
taken (locked, and for a new run created) only once the data was read, and the teardown whatever happens.

Example::

    from rnnkit.tasks import lm
    settings = RunSettings(lm.LMDataConfig(data="input.txt"), {"hidden_size": 128}, TrainConfig(epochs=1))
    report = train(lm.SPEC, settings, run_dir=RunDirectory.create("runs/x"))   # {"valid_loss": ..., ...}
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from rnnkit.errors import InputError
from rnnkit.train import Checkpoint, DistContext, RunDirectory, Trainer, distributed

from .spec import Prepared, RunSettings, TaskSpec


def train(spec: TaskSpec, settings: RunSettings, *, run_dir: RunDirectory | None = None,
          checkpoint: Checkpoint | None = None, dist: DistContext | None = None, progress_bar: bool = False,
          log: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None,
          on_step: Callable[[int, float], None] | None = None, prepared: Prepared | None = None) -> dict:
    """Train (or, with ``checkpoint``, continue training) the task ``spec`` as ``settings`` say; returns the
    Trainer's final report with the best epoch by the task's selection and what the task's ``finish`` adds.

    ``prepared``: ``spec.prepare``'s result when the caller has made it already; None makes it here.
    """
    dist = dist or DistContext()
    prepared = prepared or spec.prepare(settings, checkpoint, dist, warn if dist.is_main else None)
    run_info = {"task": spec.name, **prepared.run_info}
    if settings.recipe is not None:  # every checkpoint says which named recipe the run started from
        run_info["configs"] = {**run_info.get("configs", {}), "recipe": settings.recipe}
    if log is not None and checkpoint is None and dist.is_main:  # each line once: rank 0 speaks for the group
        log(prepared.summary)
    trainer = Trainer(prepared.model, prepared.task, settings.train, run_dir=run_dir, run_info=run_info, dist=dist,
                      progress_bar=progress_bar, log=log, on_step=on_step)
    if checkpoint is not None:
        trainer.restore(checkpoint)
    report = trainer.fit()
    if spec.finish is not None and dist.is_main:
        report = spec.finish(report, prepared, run_dir)
    return report


def run_in_process_group(spec: TaskSpec, settings: RunSettings, run_path: Path, *, device: str = "auto",
                         checkpoint: Checkpoint | None = None, overwrite: bool = False, progress_bar: bool = False,
                         log: Callable[[str], None] | None = None,
                         warn: Callable[[str], None] | None = None) -> dict | None:
    """Train inside the process group of ``device`` (one process, or every rank under torchrun).

    The data is read and the model built before rank 0 takes the run directory: a mistake in what the user
    gave never costs an earlier run. Rank 0 holds the directory's lock for the whole training
    (:meth:`RunDirectory.for_training`: a second training into it is refused with one line, and a new run
    replaces an old one only with ``overwrite``). Returns the report on rank 0 and None on the other ranks,
    which print nothing.
    """
    dist = distributed.setup(device)
    try:
        prepared = spec.prepare(settings, checkpoint, dist, warn if dist.is_main else None)
        with ExitStack() as held:
            run_dir, refusal = RunDirectory(run_path), None
            if dist.is_main:
                try:
                    run_dir = held.enter_context(
                        RunDirectory.for_training(run_path, overwrite=overwrite, resuming=checkpoint))
                except InputError as error:
                    refusal = error
            # Every rank learns whether rank 0 got the directory, so that none waits for the others in vain.
            if dist.is_distributed and dist.sum([float(refusal is not None)])[0] and refusal is None:
                return None
            if refusal is not None:
                raise refusal
            report = train(spec, settings, run_dir=run_dir, checkpoint=checkpoint, dist=dist,
                           progress_bar=progress_bar, log=log, prepared=prepared)
    finally:
        distributed.teardown(dist)
    return report if dist.is_main else None
