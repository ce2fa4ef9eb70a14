"""The scan engine's linear recurrence h_t = a_t h_{t-1} + b_t against a plain loop (rnnkit.nn.engines.scan)."""

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.nn.engines.blocked_scan import LinearScan, block_size, linear_scan, linear_scan_reference

N, H = 3, 4
# lengths below the blocked threshold (the step loop), a whole number of blocks, and blocks plus a rest
LENGTHS = [1, 7, 63, 64, 72, 200, 1001]


def _inputs(L, n=N, h=H, dtype=torch.float64, seed=0, low=-1.0, grad=True):
    """Signed a in (low, 1), signed b and h0: the scan must not assume positive values."""
    g = torch.Generator().manual_seed(seed)
    a = low + (1 - low) * torch.rand(L, n, h, generator=g, dtype=torch.float64)
    b = torch.randn(L, n, h, generator=g, dtype=torch.float64)
    h0 = torch.randn(n, h, generator=g, dtype=torch.float64)
    return [t.to(dtype).requires_grad_(grad) for t in (a, b, h0)]


def _grads(h, inputs, seed=1):
    w = torch.randn(h.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(h.dtype)
    return torch.autograd.grad((h * w).sum(), inputs, retain_graph=True)


def test_block_sizes_cover_the_sequence():
    assert block_size(64) == 6 and block_size(8192) == 64
    assert all(2 <= block_size(L) <= L for L in range(64, 5000, 37))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("L", LENGTHS)
def test_scan_equals_the_loop(L, reverse):
    inputs = _inputs(L)
    h = linear_scan(*inputs, reverse=reverse)
    ref = linear_scan_reference(*inputs, reverse=reverse)
    torch.testing.assert_close(h, ref, rtol=0, atol=1e-10)
    for got, want in zip(_grads(h, inputs), _grads(ref, inputs)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_the_loop_is_the_recurrence():
    a, b, h0 = (t.detach() for t in _inputs(5))
    h = linear_scan_reference(a, b, h0)
    torch.testing.assert_close(h[0], a[0] * h0 + b[0])
    torch.testing.assert_close(h[3], a[3] * h[2] + b[3])
    r = linear_scan_reference(a, b, h0, reverse=True)
    torch.testing.assert_close(r[4], a[4] * h0 + b[4])
    torch.testing.assert_close(r[1], a[1] * r[2] + b[1])


def test_zero_initial_state_by_default():
    a, b, _ = _inputs(70, grad=False)
    torch.testing.assert_close(linear_scan(a, b), linear_scan_reference(a, b, torch.zeros(N, H, dtype=a.dtype)))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("L", [5, 70])
def test_gradcheck(L, reverse):
    a, b, h0 = _inputs(L, n=2, h=2, low=0.0)
    assert torch.autograd.gradcheck(lambda *x: LinearScan.apply(*x, reverse), (a, b, h0), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("reverse", [False, True])
def test_double_backward_is_exact(reverse):
    a, b, h0 = _inputs(67, n=2, h=2, low=0.0)
    assert torch.autograd.gradgradcheck(lambda *x: LinearScan.apply(*x, reverse), (a, b, h0), eps=1e-6,
                                        atol=1e-7)


def test_double_backward_equals_the_loop():
    inputs = _inputs(80)
    got = torch.autograd.grad(linear_scan(*inputs).pow(2).sum(), inputs, create_graph=True)
    want = torch.autograd.grad(linear_scan_reference(*inputs).pow(2).sum(), inputs, create_graph=True)
    second_got = torch.autograd.grad(sum(g.pow(2).sum() for g in got), inputs)
    second_want = torch.autograd.grad(sum(g.pow(2).sum() for g in want), inputs)
    for x, y in zip(second_got, second_want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("L", [6, 90])
def test_padded_steps_leave_the_state_unchanged(L, reverse):
    lengths = torch.tensor([L // 2, L, 0, 1, L - 1])  # unsorted, with an empty row
    a, b, h0 = _inputs(L, n=5)
    h = linear_scan(a, b, h0, lengths=lengths, reverse=reverse)
    ref = linear_scan_reference(a, b, h0, lengths=lengths, reverse=reverse)
    torch.testing.assert_close(h, ref, rtol=0, atol=1e-10)
    for got, want in zip(_grads(h, (a, b, h0)), _grads(ref, (a, b, h0))):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    for n, length in enumerate(lengths.tolist()):
        if reverse:  # the row starts at its own last step; before it the state is still h0
            assert torch.equal(h[length:, n], h0[n].expand(L - length, H))
        else:  # after its last step the row keeps its final state (the blocks' carries may round differently)
            final = h0[n] if length == 0 else h[length - 1, n]
            torch.testing.assert_close(h[length:, n], final.expand(L - length, H), rtol=0, atol=1e-12)
        # and what lies past a row's length has no influence: no gradient reaches it
        da, db = torch.autograd.grad(h[:, n].sum(), (a, b), retain_graph=True)
        assert da[length:].abs().sum() == 0 and db[length:].abs().sum() == 0


def test_batch_sizes_equal_lengths():
    lengths = [9, 7, 7, 2]  # sorted, as in a PackedSequence
    batch_sizes = [sum(length > t for length in lengths) for t in range(9)]
    a, b, h0 = _inputs(9, n=4, grad=False)
    torch.testing.assert_close(linear_scan(a, b, h0, batch_sizes=batch_sizes),
                               linear_scan(a, b, h0, lengths=torch.tensor(lengths)), rtol=0, atol=0)


def test_long_sequence_float32_stays_finite_and_equals_the_loop():
    """L = 16,384 in float32: units that forget quickly (a down to 0) beside units with a long memory (a near 1)."""
    L = 16_384
    forget, remember = _inputs(L, n=2, h=4, low=0.0), _inputs(L, n=2, h=4, low=0.999, seed=3)
    a64, b64, h64 = (torch.cat([x, y], dim=-1).detach().requires_grad_() for x, y in zip(forget, remember))
    a, b, h0 = (t.detach().float().requires_grad_() for t in (a64, b64, h64))
    h = linear_scan(a, b, h0)
    ref = linear_scan_reference(a64, b64, h64)
    assert torch.isfinite(h).all()
    assert (h.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    for got, want in zip(_grads(h, (a, b, h0)), _grads(ref, (a64, b64, h64))):
        assert torch.isfinite(got).all()
        assert (got.double() - want).abs().max() <= 1e-5 * want.abs().max()


def test_empty_sequence_and_batch():
    a, b, h0 = _inputs(0)
    assert linear_scan(a, b, h0).shape == (0, N, H)
    a, b, h0 = _inputs(70, n=0)
    assert linear_scan(a, b, h0).shape == (70, 0, H)


def test_shape_mistakes_raise_one_line():
    a, b, h0 = _inputs(4, grad=False)
    with pytest.raises(InputError, match="same shape"):
        linear_scan(a, b[:3], h0)
    with pytest.raises(InputError, match="h0 has shape"):
        linear_scan(a, b, h0[:2])
    with pytest.raises(InputError, match="one length per row"):
        linear_scan(a, b, h0, lengths=[4, 4])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_rows_is_the_matrix_product(bias):
    """The projection the scan engine runs (oneDNN's inner product in float32 where PyTorch has it)."""
    from rnnkit.nn.ops.linear import linear_rows

    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(300, 24, generator=g), torch.randn(40, 24, generator=g), torch.randn(40, generator=g)
    want = x.double() @ w.double().t() + (b.double() if bias else 0)
    torch.testing.assert_close(linear_rows(x, w, b if bias else None).double(), want, rtol=1e-5, atol=1e-4)
    dy = torch.randn(300, 40, generator=g)
    torch.testing.assert_close(linear_rows(dy, w.t()).double(), dy.double() @ w.double(), rtol=1e-5, atol=1e-4)
    assert linear_rows(x[:0], w).shape == (0, 40)
    assert linear_rows(x.double(), w.double()).dtype == torch.float64
