"""Which algorithm computes the linear recurrence h_t = a_t * h_{t-1} + b_t fastest on this CPU, in pure torch?

The scan engine of rnnkit.nn (issue 13) runs the linear cells (minGRU, minLSTM, RG-LRU) over a whole sequence at
once. This script times the candidate algorithms side by side in one process, interleaved over several rounds
(the medians are reported, so that a burst of load from another process hits every candidate alike), and checks
each one against a float64 sequential loop at the longest length (numerical safety at L = 16,384):

* ``loop``      one fused ``addcmul`` per step, written into the output in place: L small ops.
* ``heinsen``   the log-space scan (Heinsen 2023, minGRU-pytorch): ``h_t = exp(a*_t + logcumsumexp(log b - a*))``
                with ``a* = cumsum(log a)``; signed b (RG-LRU, minGRU's h~ < 0.5) needs a complex logarithm.
* ``doubling``  recursive odd/even halving: pair steps (a_o a_e, a_o b_e + b_o), scan the L/2 pairs, fill in the
                even steps; 2 log2(L) levels of whole-tensor ops, O(L) work.
* ``blocked-B`` blocks of B steps: (1) the state each block ends in when it starts from zero, B steps over all
                L/B blocks at once, and the product of a over each block; (2) the carries between blocks, L/B
                steps; (3) the B steps of every block again from its carried state, writing h. No quotient of
                cumulative products of a appears, so nothing underflows into a division.
* ``rnnkit``    ``rnnkit.nn.engines.blocked_scan.linear_scan`` (the chosen blocked scan, B = sqrt(L/2), the loop below 64
                steps), with its input checks and autograd Function around it.

Forward and forward + backward (the backward of every candidate but heinsen is rnnkit's reverse scan; heinsen's is
autograd through its ops) at N=8, H=256, float32, one thread by default (--threads), in CPU time of this process
(with one thread, what another process takes of the core is not counted).

    PYTHONPATH=src .venv/bin/python benchmarks/scan_algorithms.py                    # L = 512 ... 16384, 7 rounds
    PYTHONPATH=src .venv/bin/python benchmarks/scan_algorithms.py --lengths 256 --rounds 1 --batch 2 --hidden 8
"""

import argparse
import statistics
import time

import torch

from rnnkit.nn.engines.blocked_scan import LinearScan, linear_scan, linear_scan_reference


def scan_loop(a, b, h0):
    h = torch.empty_like(b)  # (L, N, H)
    prev = h0
    for t in range(a.shape[0]):
        prev = torch.addcmul(b[t], a[t], prev, out=h[t])
    return h


def scan_heinsen(a, b, h0):
    # h_t = A_t (h0 + sum_{s<=t} b_s / A_s), A_t = prod_{s<=t} a_s, all in log space; complex log for signed b, h0
    log_a = torch.cumsum(torch.log(a), dim=0)  # (L, N, H)
    log_b = torch.log(torch.cat([h0.unsqueeze(0), b]).to(torch.complex64 if b.dtype == torch.float32
                                                         else torch.complex128))  # (L+1, N, H)
    log_a = torch.cat([torch.zeros_like(log_a[:1]), log_a])  # (L+1, N, H)
    h = torch.exp(log_a + torch.logcumsumexp(log_b - log_a, dim=0))  # (L+1, N, H)
    return h[1:].real


def scan_doubling(a, b, h0, floor=8):
    L = a.shape[0]
    if L <= floor:
        return scan_loop(a, b, h0)
    even = L - L % 2
    a_e, a_o = a[0:even:2], a[1:even:2]  # (L/2, N, H)
    b_e, b_o = b[0:even:2], b[1:even:2]
    h_odd = scan_doubling(a_o * a_e, torch.addcmul(b_o, a_o, b_e), h0, floor)  # h_1, h_3, ...
    h = torch.empty_like(b)
    h[1:even:2] = h_odd
    h[0] = torch.addcmul(b[0], a[0], h0)
    torch.addcmul(b_e[1:], a_e[1:], h_odd[:-1], out=h[2:even:2])
    if L % 2:
        torch.addcmul(b[-1], a[-1], h[-2], out=h[-1])
    return h


def scan_blocked(a, b, h0, block):
    L, N, H = a.shape
    nb = L // block
    if nb < 2:
        return scan_loop(a, b, h0)
    used = nb * block
    ab = a[:used].view(nb, block, N, H)
    bb = b[:used].view(nb, block, N, H)
    end = bb[:, 0].clone()  # (nb, N, H): each block's final state from a zero start
    for j in range(1, block):
        torch.addcmul(bb[:, j], ab[:, j], end, out=end)
    prod = torch.prod(ab, dim=1)  # (nb, N, H)
    carry = torch.empty(nb, N, H, dtype=a.dtype)  # state entering each block
    carry[0] = h0
    for k in range(1, nb):
        torch.addcmul(end[k - 1], prod[k - 1], carry[k - 1], out=carry[k])
    h = torch.empty_like(b)
    hb = h[:used].view(nb, block, N, H)
    prev = carry
    for j in range(block):
        prev = torch.addcmul(bb[:, j], ab[:, j], prev, out=hb[:, j])
    if used < L:
        tail = scan_loop(a[used:], b[used:], h[used - 1])
        h[used:] = tail
    return h


def candidates(blocks):
    out = {"loop": scan_loop, "heinsen": scan_heinsen, "doubling": scan_doubling}
    for B in blocks:
        out[f"blocked-{B}"] = lambda a, b, h0, B=B: scan_blocked(a, b, h0, B)
    out["rnnkit"] = linear_scan
    return out


class Autograd(torch.autograd.Function):
    """A candidate's forward with rnnkit's reverse-scan backward, so that only the forward algorithm differs."""

    @staticmethod
    def forward(ctx, fn, a, b, h0):
        h = fn(a, b, h0)
        ctx.save_for_backward(a, h0, h)
        return h

    @staticmethod
    def backward(ctx, g):
        a, h0, h = ctx.saved_tensors
        return (None,) + LinearScan.gradients_inplace(a, h0, h, g, reverse=False)


def forward_backward(name, fn):
    if name == "heinsen":
        return lambda a, b, h0: fn(a, b, h0).sum().backward()
    if name == "rnnkit":
        return lambda a, b, h0: fn(a, b, h0).sum().backward()
    return lambda a, b, h0: Autograd.apply(fn, a, b, h0).sum().backward()


def inputs(L, N, H, dtype=torch.float32, grad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    # a in (0.5, 1): a long memory, as the cells have it; b and h0 signed
    a = (0.5 + 0.5 * torch.rand(L, N, H, generator=g, dtype=torch.float64)).to(dtype)
    b = torch.randn(L, N, H, generator=g, dtype=torch.float64).to(dtype)
    h0 = torch.randn(N, H, generator=g, dtype=torch.float64).to(dtype)
    return [t.requires_grad_(grad) for t in (a, b, h0)]


def timed(fn, args):
    # CPU time of this process: on a shared machine it does not count the time other processes hold the core
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192, 16384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--blocks", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--heinsen-max", type=int, default=2048,
                        help="longest L to time the log-space scan at (about 0.5 s per 1000 steps here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fns = candidates(args.blocks)

    longest = max(args.lengths)
    a, b, h0 = inputs(longest, args.batch, args.hidden, torch.float64)
    truth = linear_scan_reference(a, b, h0)  # float64 loop: the oracle
    scale = truth.abs().max().item()
    a32, b32, h32 = (t.float() for t in (a, b, h0))
    error = {name: ((fn(a32, b32, h32).double() - truth).abs().max().item() / scale) for name, fn in fns.items()}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), N={args.batch}, H={args.hidden}, "
          f"float32, median of {args.rounds} rounds (CPU ms)")
    print(f"{'L':>6} {'algorithm':<12} {'forward':>9} {'fwd+bwd':>9}  max rel. error at L={longest}")
    for L in args.lengths:
        fwd = {name: [] for name in fns}
        both = {name: [] for name in fns}
        plain = inputs(L, args.batch, args.hidden)
        grads = inputs(L, args.batch, args.hidden, grad=True)
        run = {name: fn for name, fn in fns.items() if name != "heinsen" or L <= args.heinsen_max}
        for name, fn in run.items():  # warm-up
            fn(*plain)
        for _ in range(args.rounds):
            for name, fn in run.items():  # interleaved: every candidate sees the same load
                with torch.no_grad():
                    fwd[name].append(timed(fn, plain))
                both[name].append(timed(forward_backward(name, fn), grads))
        for name in run:
            print(f"{L:>6} {name:<12} {1e3 * statistics.median(fwd[name]):>9.2f} "
                  f"{1e3 * statistics.median(both[name]):>9.2f}  {error[name]:.1e}")


if __name__ == "__main__":
    main()
