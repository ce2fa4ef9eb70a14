"""Looking inside recurrent networks: gradient flow through time, memory of the first input, gate
saturation, and the long-term-dependency benchmarks (adding problem, copy memory).

    gradients     ‖∂L/∂h_t‖ for every step t (:func:`per_step_gradient_norms`), what clipping changes
    memory        ‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ with x_1 replaced (:func:`input_influence`); gate saturation
    memory_tasks  the adding problem and copy memory: data, equal-budget models, a training run
    selective_copy  selective copying: data, equal-budget models, a training run
    fresh_training  the three as a task of the Trainer: fresh batches every step, a held-out set measured
    memory_bench  every (task, T, cell) of the long-term-dependency tasks at equal parameter budgets
    plots         the PNG figures of each
    report        what ``rnnkit diagnose gradients`` and ``rnnkit diagnose memory`` measure, print and plot

The command line reaches them as ``rnnkit diagnose gradients``, ``rnnkit diagnose memory`` and
``rnnkit bench memory-tasks``.
"""

from .gradients import GradientFlow, fresh_gradient_flow, fresh_layer, per_step_gradient_norms
from .memory import Influence, gate_saturation, input_influence
from .memory_tasks import (
    TASKS,
    AddingProblem,
    CopyMemory,
    MemoryTaskConfig,
    MemoryTaskModel,
    matched_hidden_sizes,
    memory_model_parameter_count,
    train_memory_task,
)

__all__ = [
    "GradientFlow", "per_step_gradient_norms", "fresh_layer", "fresh_gradient_flow",
    "Influence", "input_influence", "gate_saturation",
    "TASKS", "AddingProblem", "CopyMemory", "MemoryTaskConfig", "MemoryTaskModel", "matched_hidden_sizes",
    "memory_model_parameter_count", "train_memory_task",
]
