r"""NT-ASGD: SGD that starts averaging its iterates once validation stops improving (Merity et al. 2017).

AWD-LSTM trains with plain SGD at a constant rate and, when the validation loss is no longer the best of
all but the last ``nonmono`` checks, switches to averaged SGD. With every validation loss recorded in order,
v_1, ..., v_k, the k-th check triggers the switch (non-monotonically: a single bad epoch is forgiven) when

.. math::

    k > n \quad\text{and}\quad v_k > \min(v_1, \ldots, v_{k-n}), \qquad n = \text{nonmono} \;(5)

Every step is the SGD step (weight decay λ folded into the gradient):

.. math::

    w_{t+1} = w_t - \eta\,(g_t + \lambda w_t)

and from the switch on the optimizer also keeps the running mean of the iterates after each step,

.. math::

    \bar w_m = \bar w_{m-1} + \frac{w_{t+1} - \bar w_{m-1}}{m}, \qquad m = 1, 2, \ldots \text{ steps since the switch}

and the averaged weights are what is evaluated and saved: they generalise better than the last iterate
(Polyak & Juditsky 1992). AWD-LSTM switches to ``torch.optim.ASGD(lambd=0, t0=0)``, whose mean leaves out the
first iterate after the switch (its μ lags one step); here every iterate from the switch on counts.

How the Trainer (:mod:`rnnkit.train.trainer`) uses it (the three calls are no-ops before the switch)::

    ntasgd = NTASGD(model.parameters(), lr=30, nonmono=5)
    for epoch in ...:
        for batch in ...:
            ...; loss.backward(); ntasgd.step()
        with ntasgd.averaged():             # the averaged weights in the parameters
            valid_loss = validate(model)
            save_checkpoint(model, ntasgd.state_dict())
        ntasgd.observe(valid_loss)          # may switch to averaging; True on the switch

A checkpoint saved inside ``averaged()`` holds the averaged weights as the model's weights (so evaluating it
needs no optimizer) and the raw iterate in the optimizer state; ``load_state_dict``, called after the weights
are loaded, swaps them back, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch

from rnnkit.errors import InputError


class NTASGD(torch.optim.Optimizer):
    r"""Non-monotonically triggered averaged SGD; a ``torch.optim.Optimizer``.

    Args:
        params: the parameters (or parameter groups) to optimise.
        lr: η, the learning rate (AWD-LSTM: 30 on the loss averaged over tokens).
        weight_decay: λ, L2 penalty folded into the gradient. Default 0.
        nonmono: n, how many of the latest validation losses the trigger ignores. Default 5.

    The trigger state (every observed loss, whether and at which step averaging started, how many steps are
    averaged) lives in the first parameter group, so ``state_dict`` carries it as plain numbers; the running
    means are the per-parameter state ``"average"``.

    Example::

        >>> weight = torch.nn.Parameter(torch.tensor([1.0]))
        >>> ntasgd = NTASGD([weight], lr=0.5, nonmono=1)
        >>> [ntasgd.observe(loss) for loss in (3.0, 2.0, 3.5)]
        [False, False, True]
        >>> weight.grad = torch.tensor([1.0]); ntasgd.step()
        >>> weight.grad = torch.tensor([1.0]); ntasgd.step()
        >>> weight.data, ntasgd.state[weight]["average"]
        (tensor([0.]), tensor([0.2500]))
    """

    def __init__(self, params: Iterable, lr: float, weight_decay: float = 0.0, nonmono: int = 5):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise InputError(f"the NT-ASGD learning rate must be positive, got {lr!r}; AWD-LSTM uses 30")
        if not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool) or weight_decay < 0:
            raise InputError(f"the NT-ASGD weight decay must be 0 or more, got {weight_decay!r}")
        if not isinstance(nonmono, int) or isinstance(nonmono, bool) or nonmono < 1:
            raise InputError(f"nonmono must be a whole number of at least 1, got {nonmono!r}; AWD-LSTM uses 5")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.param_groups[0].update(nonmono=nonmono, history=[], averaging=False, switch_step=None,
                                    averaged_steps=0, steps=0, swapped=False)

    # ------------------------------------------------------------------------------------------ state

    @property
    def _trigger(self) -> dict:
        return self.param_groups[0]

    @property
    def averaging(self) -> bool:
        """True once the trigger has fired: every step from then on is averaged."""
        return bool(self._trigger["averaging"])

    @property
    def switch_step(self) -> int | None:
        """The number of optimizer steps taken when averaging started, or None before."""
        return self._trigger["switch_step"]

    @property
    def shows_average(self) -> bool:
        """True inside :meth:`averaged` while it holds the averages in the parameters."""
        return bool(self._trigger["swapped"])

    # ------------------------------------------------------------------------------------------ update

    @torch.no_grad()
    def step(self, closure=None):
        """One SGD step on every parameter with a gradient; while averaging, fold the new iterate into the mean."""
        if self._trigger["swapped"]:
            raise RuntimeError("NTASGD.step() inside averaged(): leave the block before training on")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        trigger = self._trigger
        averaging = trigger["averaging"]
        count = trigger["averaged_steps"] + 1
        for group in self.param_groups:
            lr, decay = group["lr"], group["weight_decay"]
            for parameter in group["params"]:
                if parameter.grad is not None:
                    grad = parameter.grad
                    if decay:
                        grad = grad.add(parameter, alpha=decay)
                    parameter.add_(grad, alpha=-lr)
                if averaging:  # every parameter: one without a gradient keeps its value, which the mean counts
                    state = self.state[parameter]
                    if "average" not in state or count == 1:
                        state["average"] = parameter.detach().clone()
                    else:
                        state["average"].add_(parameter - state["average"], alpha=1.0 / count)
        trigger["steps"] += 1
        if averaging:
            trigger["averaged_steps"] = count
        return loss

    def observe(self, valid_loss: float | None) -> bool:
        """Record a validation loss; switch to averaging when it is worse than the best before the last ``nonmono``.

        Returns True exactly when this call switched. Call it after each validation (with the averaged weights
        in place once averaging, as AWD-LSTM does); None (no validation data) is ignored.
        """
        trigger = self._trigger
        if valid_loss is None:
            return False
        valid_loss = float(valid_loss)
        history, n = trigger["history"], trigger["nonmono"]
        switched = False
        if not trigger["averaging"] and len(history) > n and valid_loss > min(history[:-n]):
            trigger["averaging"], trigger["switch_step"], trigger["averaged_steps"] = True, trigger["steps"], 0
            switched = True
        history.append(valid_loss)
        return switched

    # ------------------------------------------------------------------------------------------ averaged weights

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Inside the block the parameters hold the averaged weights (the raw iterate waits in the state).

        A no-op before the first averaged step. Nested use is an error; ``step()`` inside the block too.
        """
        if self._trigger["swapped"]:
            raise RuntimeError("NTASGD.averaged() is already active; do not nest it")
        if not (self._trigger["averaging"] and self._trigger["averaged_steps"] > 0):
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self) -> None:
        """Exchange each parameter's value with its running mean (both stay in their own storage)."""
        with torch.no_grad():
            for group in self.param_groups:
                for parameter in group["params"]:
                    average = self.state[parameter].get("average")
                    if average is not None:
                        raw = parameter.detach().clone()
                        parameter.copy_(average)
                        average.copy_(raw)
        self._trigger["swapped"] = not self._trigger["swapped"]

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the state; if it was saved inside ``averaged()``, the parameters (whose weights must already be
        loaded: the averages) and the state (the raw iterate) are swapped back, so that training continues from
        the raw iterate exactly as before the save."""
        super().load_state_dict(state_dict)
        if self._trigger["swapped"]:
            self._swap()


def averaged_weights(optimizer: torch.optim.Optimizer) -> contextlib.AbstractContextManager:
    """``optimizer.averaged()`` for an optimizer that averages (NTASGD), else a block that changes nothing:
    what a training loop wraps around validation and checkpointing whatever the optimizer. Inside a block that
    already shows the averages it changes nothing either, so that validation and checkpointing, each in its own
    block, can also run inside an outer one."""
    if isinstance(optimizer, NTASGD) and not optimizer.shows_average:
        return optimizer.averaged()
    return contextlib.nullcontext()


def observe_validation(optimizer: torch.optim.Optimizer, valid_loss: float | None) -> bool:
    """``optimizer.observe(valid_loss)`` for NTASGD (True when averaging starts), else nothing (False): what a
    training loop calls after each validation whatever the optimizer."""
    return optimizer.observe(valid_loss) if isinstance(optimizer, NTASGD) else False
