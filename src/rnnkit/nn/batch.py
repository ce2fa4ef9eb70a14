r"""A recurrent layer's input as the engines take it, and back: torch.nn's checks and messages, time-major layout,
packed rows sorted by length, initial states, resets, and the reversal of each sequence for the second direction.

:class:`LayerInput` is mixed into :class:`rnnkit.nn.layer.RecurrentBase`; it reads the layer's torch.nn attributes
(``batch_first``, ``num_layers``, ``hidden_size``, ...) and its cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from .ops.linear import autocast_dtype

State = Tensor | tuple[Tensor, Tensor]


@dataclass
class Batch:
    """The input normalised for the engines: time-major, rows sorted by decreasing length if packed."""

    x: Tensor | None  # (L, N, H_in), zeros past each length (packed input padded), or None before padding
    states: tuple[Tensor, ...]  # (num_layers*D, N, ...) each, rows in the engine's order
    packed: PackedSequence | None = None  # the packed input (sorted), when the input was packed
    lengths: Tensor | None = None
    layout: tuple = ()


class LayerInput:
    """Normalising a layer's input and state for the engines, and restoring the caller's layout afterwards."""

    def _check_mixtures(self, input, hx) -> None:
        """dtype and device agreement of input, hx and weights, each with the fix in the message."""
        data = input.data if isinstance(input, PackedSequence) else input
        if not isinstance(data, Tensor):
            raise TypeError(f"input must be a Tensor or a PackedSequence, got {type(input).__name__}")
        weight = self._first_weight()
        if data.device != weight.device:
            raise RuntimeError(
                f"input is on {data.device} but the weights are on {weight.device}; "
                f"move one of them: input.to('{weight.device}') or model.to('{data.device}')"
            )
        # under torch.autocast, input, states and weights that it takes meet in its dtype (_run_layers), as in torch.nn
        autocast = autocast_dtype(data) is not None
        if data.dtype != weight.dtype and not (autocast and autocast_dtype(weight) is not None):
            raise ValueError(f"RNN input dtype ({data.dtype}) does not match weight dtype ({weight.dtype}). "
                             f"Convert input: input.to({weight.dtype}), or convert model: model.to({data.dtype})")
        states = () if hx is None else ((hx,) if isinstance(hx, Tensor) else tuple(hx))
        for name, s in zip(("hx", "cx"), states):
            if not isinstance(s, Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(s).__name__}")
            if s.device != data.device:
                raise RuntimeError(f"{name} is on {s.device} but input is on {data.device}; use {name}.to('{data.device}')")
            if s.dtype != data.dtype and not (autocast and autocast_dtype(s) is not None):
                raise ValueError(f"{name} dtype ({s.dtype}) does not match input dtype ({data.dtype}); "
                                 f"convert it: {name}.to({data.dtype})")

    def _initial_state(self, input) -> State:
        """The learned or random initial state, shaped for this input (batched or not)."""
        if isinstance(input, PackedSequence):
            batch, data = int(input.batch_sizes[0]), input.data
        elif input.dim() == 3:
            batch, data = input.size(0 if self.batch_first else 1), input
        else:
            batch, data = None, input  # unbatched, or a wrong rank that the checks will report

        def make(learned: Tensor | None, size: int) -> Tensor:
            shape = (self._num_states(), size) if batch is None else (self._num_states(), batch, size)
            if self.init_state == "learned":
                base = learned.to(data.dtype)
                return base if batch is None else base.unsqueeze(1).expand(shape)
            return torch.randn(shape, dtype=data.dtype, device=data.device) * self.init_state_std

        h = make(getattr(self, "h0", None), self._h_out())
        if self.cell.has_cell_state:
            return h, make(getattr(self, "c0", None), self.hidden_size)
        return h

    # --- torch.nn's input checks, in torch.nn's words ------------------------------------------------
    def _check_input(self, input: Tensor, packed: bool) -> None:
        expected = 2 if packed else 3
        if input.dim() != expected:
            raise RuntimeError(f"input must have {expected} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}")

    def _check_states(self, states: tuple[Tensor, ...], batch: int) -> None:
        sizes = (self._h_out(), self.hidden_size)
        for s, size in zip(states, sizes):
            expected = (self._num_states(), batch, size)
            if s.size() != expected:
                raise RuntimeError(f"Expected hidden size {expected}, got {list(s.size())}")

    def _normalise(self, input, hx) -> Batch:
        """The input as the engines take it, with torch.nn's checks and error messages."""
        n_parts = 2 if self.cell.has_cell_state else 1
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            N = int(batch_sizes[0])
            self._check_input(data, packed=True)
            states = self._zero_state(data, N) if hx is None else self._as_tuple(hx, n_parts)
            states = permute_rows(states, sorted_indices)
            self._check_states(states, N)
            return Batch(None, states, packed=PackedSequence(data, batch_sizes),
                          layout=("packed", sorted_indices, unsorted_indices, batch_sizes))
        name = type(self).__name__
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        N = input.size(batch_dim)
        if hx is None:
            states = self._zero_state(input, N)
        else:
            states = self._as_tuple(hx, n_parts)
            want = 3 if is_batched else 2
            if any(s.dim() != want for s in states):
                dims = ", ".join(f"{s.dim()}-D" for s in states)
                kind = "batched 3-D" if is_batched else "unbatched 2-D"
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got ({dims}) tensor(s)")
            if not is_batched:
                states = tuple(s.unsqueeze(1) for s in states)
        self._check_input(input, packed=False)
        self._check_states(states, N)
        x = input.transpose(0, 1) if self.batch_first else input  # (L, N, H_in)
        if x.size(0) == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        return Batch(x, states, layout=("padded", is_batched, batch_dim))

    def _as_tuple(self, hx, n_parts: int) -> tuple[Tensor, ...]:
        states = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        if len(states) != n_parts:
            what = "a tuple (h_0, c_0)" if n_parts == 2 else "one tensor h_0"
            raise ValueError(f"{type(self).__name__} with cell {self.cell.name!r} takes {what} as its state, "
                             f"got {len(states)} tensor(s)")
        return states

    def _zero_state(self, like: Tensor, N: int) -> tuple[Tensor, ...]:
        h = like.new_zeros(self._num_states(), N, self._h_out())
        if self.cell.has_cell_state:
            return h, like.new_zeros(self._num_states(), N, self.hidden_size)
        return (h,)

    def _finish(self, batch: Batch, output: Tensor, states: tuple[Tensor, ...]):
        """Put the output and state back in the caller's layout."""
        state = states if self.cell.has_cell_state else states[0]
        if batch.layout[0] == "packed":
            _, sorted_indices, unsorted_indices, batch_sizes = batch.layout
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            return output, permute_rows(state, unsorted_indices)
        _, is_batched, batch_dim = batch.layout
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(batch_dim)
            state = tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
        return output, state

    # --- the engines -----------------------------------------------------------------------------
    def _normalise_resets(self, resets, batch: Batch) -> Tensor | None:
        """``resets`` as the engines take them: (L, N) bool, time-major, rows in the engines' order, False before
        step 0 and past each row's length; ValueError naming the expected shape otherwise."""
        if resets is None:
            return None
        L, N = batch.x.shape[0], batch.x.shape[1]
        packed = batch.layout[0] == "packed"
        is_batched = packed or batch.layout[1]
        if not is_batched:
            expected, want = (L,), "(L,) for unbatched input"
        elif self.batch_first and not packed:
            expected, want = (N, L), "(N, L) with batch_first"
        else:
            expected, want = (L, N), "(L, N)"
        if not isinstance(resets, Tensor) or resets.dtype != torch.bool or tuple(resets.shape) != expected:
            got = (f"{resets.dtype} {tuple(resets.shape)}" if isinstance(resets, Tensor) else type(resets).__name__)
            raise ValueError(f"resets must be a bool tensor of shape {want} = {expected}, True before the steps "
                             f"where the state returns to the initial state; got {got}")
        r = resets.to(batch.x.device)
        r = r.unsqueeze(1) if not is_batched else (r.t() if self.batch_first and not packed else r)  # (L, N)
        if packed and batch.layout[1] is not None:
            r = r.index_select(1, batch.layout[1].to(r.device))  # the packed rows' sorted order
        r = r.clone()
        r[0] = False  # the state before step 0 is the initial state already
        if batch.lengths is not None:
            steps = torch.arange(L, device=r.device).unsqueeze(1)  # (L, 1)
            r &= steps < batch.lengths.to(r.device).unsqueeze(0)
        return r.contiguous()


def permute_rows(state, permutation: Tensor | None):
    """Reorder the batch rows (dim 1) of a state or a tuple of states; None keeps the order."""
    if permutation is None:
        return state
    if isinstance(state, Tensor):
        return state.index_select(1, permutation)
    return tuple(s.index_select(1, permutation) for s in state)


def reverser(x: Tensor, lengths: Tensor | None):
    """A function that reverses each sequence within its own length (padding stays in place).

    For full-length sequences this is a flip of the time axis; with lengths it is a gather with
    index[t, n] = lengths[n] - 1 - t for t < lengths[n], t otherwise. Applying it twice restores.
    """
    if lengths is None:
        return lambda t: t.flip(0)
    L = x.shape[0]
    t = torch.arange(L).unsqueeze(1)  # (L, 1)
    n_len = lengths.unsqueeze(0)  # (1, N)
    index = torch.where(t < n_len, n_len - 1 - t, t).to(x.device)  # (L, N)

    def reverse(seq: Tensor) -> Tensor:  # (L, N, H)
        return seq.gather(0, index.unsqueeze(2).expand_as(seq))

    return reverse


def reversed_resets(resets: Tensor, reverse) -> Tensor:
    """The resets of the reverse direction: it reads each sequence backwards, so it restarts at each segment's end.

    A reset before step t (the boundary between t-1 and t) means, read backwards, a reset before step t-1:
    q[t] = resets[t + 1] (False at the last step), then the sequence reversed within each row's length.
    """
    q = torch.cat([resets[1:], resets.new_zeros(1, resets.shape[1])])  # (L, N)
    return reverse(q.unsqueeze(2)).squeeze(2)
