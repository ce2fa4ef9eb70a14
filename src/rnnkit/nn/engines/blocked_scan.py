r"""The scan engine's algorithm: the linear recurrence ``h_t = a_t * h_{t-1} + b_t`` for all t at once.

When a cell's gates depend on the input only (minGRU, minLSTM, RG-LRU), its recurrence is linear in the state,

    h_t = a_t ⊙ h_{t-1} + b_t,        t = 1 .. L,   h_0 given,

with ``a_t`` and ``b_t`` computed for every step beforehand from one matrix multiply of the inputs. Only this
elementwise recurrence remains sequential, and it no longer needs one small operation per step.

Algorithm (chosen by measurement, ``benchmarks/scan_algorithms.py``): a *blocked* scan. The L steps are cut into
L/B blocks of B steps, ``B ≈ sqrt(L/2)``, and

1. every block runs its B steps from a zero state, all blocks at once (B operations on (L/B, N, H) tensors),
   keeping only the state it ends in, ``e_k``; the product of ``a`` over each block, ``P_k``, is one reduction;
2. the state entering each block follows from the previous one, ``s_k = P_{k-1} s_{k-1} + e_{k-1}``
   (L/B operations on (N, H) tensors);
3. every block runs its B steps again, now from ``s_k``, all blocks at once, writing ``h``.

About 2B + L/B operations in place of L. No quotient of cumulative products of ``a`` is ever formed (the log-space
scan's ``b_s / A_s`` does, and ``A_s`` underflows over long sequences), so L = 16,384 is as safe as the
step loop: every number computed is a state of the recurrence or a product that multiplies one.

Backward: with ``g_t = dL/dh_t`` (from everything that reads ``h_t`` except step t+1), the gradient carried back,
``c_t = dL/dh_t`` in total, obeys a linear recurrence in reverse,

    c_t = g_t + a_{t+1} ⊙ c_{t+1},    c_L = g_L,

so it is the same scan run backwards, and then ``dL/db_t = c_t``, ``dL/da_t = c_t ⊙ h_{t-1}``,
``dL/dh_0 = a_1 ⊙ c_1``. When a graph of the gradient is wanted (``create_graph=True``), :class:`LinearScan`'s
backward runs these same equations as differentiable operations (the scan included), so double backward is
exact, not silently zero; otherwise it runs without autograd, into two new tensors.

Variable lengths: a row shorter than L has ``a_t = 1, b_t = 0`` at its padded steps, which leaves its state
unchanged; so ``h[L-1]`` holds every row's final state (forwards; equal to ``h[length-1]`` up to rounding, since
the carry across blocks is computed apart from the steps: gather ``h[length-1]`` for the exact output value), and
a reversed scan starts each row at its own last step with ``h_0`` untouched (exactly) until then.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...errors import InputError
from ..ops.linear import autocast_off
from .transforms import legacy_batched, wrapped

# Below this many steps the blocked scan has nothing to gain over the loop (break-even near 64 at N=8, H=256).
_MIN_BLOCKED = 64


def block_size(L: int) -> int:
    """Steps per block: minimises the operation count 2B + L/B."""
    return max(2, round(math.sqrt(L / 2)))


def _steps(h: Tensor, a: Tensor, b: Tensor, start: Tensor, reverse: bool) -> Tensor:
    """Plain sequential steps over dim 1 of (K, T, ...) tensors, written into ``h``; returns the last state.

    One fused ``addcmul`` per step, in place into the output: ``h[:, t] = b[:, t] + a[:, t] * h[:, t-1]``.
    """
    prev = start
    for t in (range(a.shape[1] - 1, -1, -1) if reverse else range(a.shape[1])):
        prev = torch.addcmul(b[:, t], a[:, t], prev, out=h[:, t])
    return prev


def _scan_into(h: Tensor, a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> None:
    """Fill ``h`` (L, *S) with the scan of ``a``, ``b`` (L, *S, any strides) from ``h0`` (*S); no autograd."""
    L = a.shape[0]
    if L < _MIN_BLOCKED:
        _steps(h.unsqueeze(0), a.unsqueeze(0), b.unsqueeze(0), h0.unsqueeze(0), reverse)
        return
    B = block_size(L)
    nb = L // B
    rest = L - nb * B
    # the whole blocks come first in the direction of the scan; the rest (< B steps) after them
    body = slice(rest, L) if reverse else slice(0, nb * B)
    tail = slice(0, rest) if reverse else slice(nb * B, L)
    ab = a[body].unflatten(0, (nb, B))  # (L/B, B, *S): views, whatever the strides
    bb = b[body].unflatten(0, (nb, B))
    hb = h[body].unflatten(0, (nb, B))
    inner = range(B - 2, -1, -1) if reverse else range(1, B)

    # 1. each block's final state from a zero state, all blocks at once; and each block's product of a
    end = bb[:, B - 1 if reverse else 0].clone()  # (L/B, *S)
    for j in inner:
        torch.addcmul(bb[:, j], ab[:, j], end, out=end)
    prod = torch.prod(ab, dim=1)  # (L/B, *S)

    # 2. the state entering each block, block after block
    enter = torch.empty_like(end)  # (L/B, *S)
    first = nb - 1 if reverse else 0
    enter[first] = h0
    order = range(nb - 2, -1, -1) if reverse else range(1, nb)
    for k in order:
        k_prev = k + 1 if reverse else k - 1
        torch.addcmul(end[k_prev], prod[k_prev], enter[k_prev], out=enter[k])

    # 3. every block's steps again from the state entering it, writing h
    last = _steps(hb, ab, bb, enter, reverse)  # (L/B, *S)
    if rest:
        _steps(h[tail].unsqueeze(0), a[tail].unsqueeze(0), b[tail].unsqueeze(0),
               last[0 if reverse else nb - 1].unsqueeze(0), reverse)


def scan(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False, out: Tensor | None = None) -> Tensor:
    """The linear recurrence without autograd: h (L, *) from a, b (L, *) and h0 (*), any shapes after L.

    ``out``: a tensor to write h into, possibly ``b`` itself (step t reads b_t before it writes h_t there).
    """
    L = a.shape[0]
    h = torch.empty(b.shape, dtype=b.dtype, device=b.device) if out is None else out  # (L, *)
    if L == 0 or b[0].numel() == 0:
        return h
    _scan_into(h, a, b, h0, reverse)
    return h


class LinearScan(torch.autograd.Function):
    """``h = LinearScan.apply(a, b, h0, reverse)``: the scan with a reverse scan as its backward.

    ``reverse=False``: ``h_t = a_t h_{t-1} + b_t`` for t = 0 .. L-1 from ``h_{-1} = h0``;
    ``reverse=True``: ``h_t = a_t h_{t+1} + b_t`` for t = L-1 .. 0 from ``h_L = h0``.

    Under ``torch.func``'s transforms: vmap's dimension is one more dimension after L (the scan takes any shape
    there), and a backward given a transform's wrapped tensors runs :meth:`gradients` (differentiable operations and
    this Function again) rather than writing into new buffers.
    """

    @staticmethod
    def forward(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
        with autocast_off(b):  # in the dtype given (CPU autocast would run the blocks' product in float32)
            return scan(a, b, h0, reverse)  # (L, N, H)

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, _, h0, reverse = inputs
        ctx.reverse = reverse
        ctx.save_for_backward(a, h0, output)

    @staticmethod
    def vmap(info, in_dims, a: Tensor, b: Tensor, h0: Tensor, reverse: bool):
        B = info.batch_size

        def batched(t: Tensor, bdim: int | None, at: int) -> Tensor:  # vmap's dimension at ``at``, B long
            return t.unsqueeze(at).expand(*t.shape[:at], B, *t.shape[at:]) if bdim is None else t.movedim(bdim, at)

        a_dim, b_dim, h0_dim, _ = in_dims
        h = LinearScan.apply(batched(a, a_dim, 1), batched(b, b_dim, 1), batched(h0, h0_dim, 0), reverse)
        return h, 1

    @staticmethod
    def backward(ctx, g: Tensor):
        a, h0, h = ctx.saved_tensors
        need_a, need_b, need_h0, _ = ctx.needs_input_grad
        with autocast_off(g):
            if torch.is_grad_enabled() or wrapped(g, a, h):  # a graph of the gradient is wanted, or a transform's
                da, db, dh0 = LinearScan.gradients(a, h0, h, g, ctx.reverse)  # tensors: differentiable operations
            else:
                da, db, dh0 = LinearScan.gradients_inplace(a, h0, h, g, ctx.reverse, need_a)
        return da if need_a else None, db if need_b else None, dh0 if need_h0 else None, None

    @staticmethod
    def gradients(a: Tensor, h0: Tensor, h: Tensor, g: Tensor, reverse: bool):
        """``(dL/da, dL/db, dL/dh0)`` from ``g = dL/dh`` (L, N, H), by a scan in the opposite direction.

        Written with differentiable operations (the scan included), so that a graph of the gradient is exact.
        """
        zero_step = torch.zeros_like(a[:1])  # (1, N, H): nothing is carried in from beyond the last step
        if reverse:
            a_next = torch.cat([zero_step, a[:-1]])  # a_{t-1}: the step that reads h_t next
            h_prev = torch.cat([h[1:], h0.unsqueeze(0)])  # (L, N, H): h_{t+1}
        else:
            a_next = torch.cat([a[1:], zero_step])  # a_{t+1}
            h_prev = torch.cat([h0.unsqueeze(0), h[:-1]])  # (L, N, H): h_{t-1}
        # (L, N, H): c_t = g_t + a_next c_next; step by step under the older vmap of gradcheck's batched check,
        # where no Function's vmap rule applies
        scan_of = _plain_scan if legacy_batched(g) else LinearScan.apply
        c = scan_of(a_next, g, torch.zeros_like(h0), not reverse)
        first = -1 if reverse else 0
        return c * h_prev, c, a[first] * c[first]

    @staticmethod
    def gradients_inplace(a: Tensor, h0: Tensor, h: Tensor, g: Tensor, reverse: bool, need_a: bool = True):
        """The same gradients as :meth:`gradients` without autograd, written into two new tensors only.

        Each full-size tensor allocated costs about as much as one pass over it (fresh pages), so the shifted
        copies of ``a`` and ``h`` that :meth:`gradients` builds are replaced by shifted views.
        """
        c = reverse_carry(a, g, reverse=reverse)  # (L, N, H): dL/dh_t in total
        first = a.shape[0] - 1 if reverse else 0
        da = None
        if need_a:
            L = a.shape[0]
            # rest: the steps whose previous state is in h; shifted: where that state sits
            rest, shifted = (slice(0, L - 1), slice(1, L)) if reverse else (slice(1, L), slice(0, L - 1))
            da = torch.empty_like(c)  # (L, N, H): dL/da_t = c_t h_{t-1}  (reverse: c_t h_{t+1})
            torch.mul(c[rest], h[shifted], out=da[rest])
            torch.mul(c[first], h0, out=da[first])
        return da, c, a[first] * c[first]


def _plain_scan(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """The scan as one differentiable operation per step, any shapes after L."""
    h, states = h0, [None] * a.shape[0]
    for t in (range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])):
        h = states[t] = a[t] * h + b[t]
    return torch.stack(states) if states else b.clone()


def reverse_carry(a: Tensor, g: Tensor, extra: Tensor | None = None, reverse: bool = False) -> Tensor:
    """The gradient carried back through ``h_t = a_t h_{t-1} + b_t``: ``c_t = g_t + a_{t+1} c_{t+1}``, c_L = g_L.

    The scan of (a shifted by one step, g) in the other direction, written into one new tensor, with shifted views
    in place of shifted copies (a full-size tensor allocated costs about as much as a pass over it: fresh pages).
    ``extra`` (N, H), when given, is added to g at the last step (the gradient of the final state).
    ``reverse``: the forward scan ran from L-1 down to 0, so the carry runs upwards.
    """
    L = a.shape[0]
    c = torch.empty(g.shape, dtype=g.dtype, device=g.device)  # (L, N, H)
    if L == 0:
        return c
    lo, hi = slice(0, L - 1), slice(1, L)
    # rest: every step but the last one the scan reaches; shifted: the step that reads each of their states
    rest, shifted, last = (hi, lo, 0) if reverse else (lo, hi, L - 1)
    torch.add(g[last], extra, out=c[last]) if extra is not None else c[last].copy_(g[last])
    if L > 1:
        _scan_into(c[rest], a[shifted], g[rest], c[last], not reverse)
    return c


class PreviousStates:
    """``h_{t-1}`` for every step t, from h0 (N, H) and the states h (L, N, H), sliced by time without building
    the shifted copy: ``PreviousStates(h0, h)[s:e]`` is a view of h for s > 0."""

    def __init__(self, h0: Tensor, h: Tensor, resets: Tensor | None = None):
        self.h0, self.h, self.resets = h0, h, resets

    def __getitem__(self, steps: slice) -> Tensor:
        start, stop = steps.start or 0, steps.stop
        if start > 0:
            prev = self.h[start - 1:stop - 1]
        else:
            prev = torch.cat([self.h0.unsqueeze(0), self.h[0:stop - 1]])  # (stop, N, H)
        if self.resets is None:
            return prev
        return torch.where(self.resets[start:stop].unsqueeze(2), self.h0.unsqueeze(0), prev)  # resets read h0


def lengths_from_batch_sizes(batch_sizes: Tensor | list[int], N: int) -> Tensor:
    """Each row's length from the rows alive per step (a PackedSequence's ``batch_sizes``; rows sorted)."""
    sizes = torch.as_tensor(batch_sizes).cpu()
    return (sizes.unsqueeze(1) > torch.arange(N).unsqueeze(0)).sum(0)  # (N,)


def _alive(lengths: Tensor | list[int], L: int, N: int, device) -> Tensor:
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (N,):
        raise InputError(f"lengths has shape {tuple(lengths.shape)}, expected ({N},): one length per row")
    return torch.arange(L, device=device).unsqueeze(1) < lengths.unsqueeze(0)  # (L, N)


def _check(a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    if a.dim() != 3 or a.shape != b.shape:
        raise InputError(f"a and b must have the same shape (L, N, H), got {tuple(a.shape)} and {tuple(b.shape)}")
    if h0 is None:
        return b.new_zeros(b.shape[1:])
    if h0.shape != b.shape[1:]:
        raise InputError(f"h0 has shape {tuple(h0.shape)}, expected {tuple(b.shape[1:])}: (N, H) as a[0]")
    return h0


def _mask(a: Tensor, b: Tensor, lengths, batch_sizes) -> tuple[Tensor, Tensor]:
    """Padded steps get a = 1, b = 0 (the state stays as it was); differentiable (zero gradient there)."""
    L, N, _ = a.shape
    if batch_sizes is not None:
        lengths = lengths_from_batch_sizes(batch_sizes, N)
    if lengths is None:
        return a, b
    alive = _alive(lengths, L, N, a.device).unsqueeze(2)  # (L, N, 1)
    return torch.where(alive, a, torch.ones_like(a)), torch.where(alive, b, torch.zeros_like(b))


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, lengths=None, batch_sizes=None,
                reverse: bool = False) -> Tensor:
    r"""Every state of ``h_t = a_t ⊙ h_{t-1} + b_t`` at once, differentiable (a reverse scan as backward).

    Args:
        a: (L, N, H) the factors; any sign.
        b: (L, N, H) the inputs; any sign.
        h0: (N, H) the state before the first step (``reverse``: after the last), zeros if None.
        lengths: (N,) each row's number of steps, any order; steps at and past its length leave the row's state
            unchanged. Or ``batch_sizes`` (L,): rows alive per step, rows sorted by decreasing length.
        reverse: run from step L-1 down to 0 (``h_t = a_t h_{t+1} + b_t``).

    Returns:
        h: (L, N, H). A row's state past its length repeats its final state (up to rounding: gather
        ``h[length-1]`` forwards; reversed, ``h[0]`` is exact).

    Example::

        >>> a, b = torch.full((3, 1, 1), 0.5), torch.ones(3, 1, 1)
        >>> linear_scan(a, b, torch.zeros(1, 1)).flatten().tolist()
        [1.0, 1.5, 1.75]
    """
    h0 = _check(a, b, h0)
    a, b = _mask(a, b, lengths, batch_sizes)
    if a.shape[0] == 0:
        return b.clone()
    return LinearScan.apply(a, b, h0, reverse)


def linear_scan_reference(a: Tensor, b: Tensor, h0: Tensor | None = None, *, lengths=None, batch_sizes=None,
                          reverse: bool = False) -> Tensor:
    """The same recurrence as a plain loop of differentiable torch operations: the oracle of :func:`linear_scan`.

    A padded step keeps the previous state by selecting it (not by a = 1, b = 0), an independent statement of the
    same rule. Arguments and result as :func:`linear_scan`.
    """
    h = _check(a, b, h0)
    L, N, _ = a.shape
    if batch_sizes is not None:
        lengths = lengths_from_batch_sizes(batch_sizes, N)
    alive = None if lengths is None else _alive(lengths, L, N, a.device).unsqueeze(2)  # (L, N, 1)
    states = [None] * L
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        step = a[t] * h + b[t]  # (N, H)
        h = step if alive is None else torch.where(alive[t], step, h)
        states[t] = h
    return torch.stack(states) if L else b.clone()
