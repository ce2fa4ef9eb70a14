"""Gradient flow through 200 steps, the seeds' story on one axis: the tanh RNN's ‖∂L/∂h_t‖ falls by >= 10⁴ from the
last step to the first, the LSTM's by far less (target: a ratio at least 10⁴ times smaller than the RNN's, at
PyTorch's init), and far less again once its forget gate starts open (+1, +3). Report every ratio.

One sequence of length 200, x_t ~ N(0, 1) with 128 features, one fresh layer per curve (hidden 128, PyTorch's
default initialisation, seed 0), L = cross-entropy of a fixed random readout at the last step, all in float64
(`rnnkit diagnose gradients`, whose defaults draw the tanh RNN, the LSTM with forget-gate bias 0, +1 and +3, and
the GRU). At PyTorch's init the forget gate sits near sigmoid(0) = 0.5, so the LSTM's cell-state path also halves
the gradient at every step and the LSTM vanishes nearly as fast as the RNN (Gers et al. 2000; Jozefowicz et al.
2015 recommend +1; +3 keeps it). A second run with W_hh ×5 makes the RNN's gradient explode instead and shows what
clipping does (rescale everything) and does not do (change the ratio). With --run DIR a trained language model's
own curve joins the first plot. Cheap: a few seconds per run.

    PYTHONPATH=src .venv/bin/python benchmarks/gradient_flow.py            # the measurement (about 30 s on 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/gradient_flow.py --run runs/main    # with a trained model's curve
    PYTHONPATH=src .venv/bin/python benchmarks/gradient_flow.py --smoke    # 20 steps, hidden 16: does it start?
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RNN_FALL = 1e4  # the tanh RNN's ratio must reach this
LSTM_ADVANTAGE = 1e4  # and the LSTM's must be at least this many times smaller
VARIANTS = [
    ("PyTorch's default init, forget bias 0/+1/+3 (the target)", []),
    ("W_hh x5 (exploding), clip 1", ["--recurrent-scale", "5", "--forget-bias", "0"]),
]


def rnnkit(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], check=True, text=True, stdout=subprocess.PIPE)
    return done.stdout


def orders(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2e} (10^{math.log10(ratio):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="20 steps, hidden 16")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-gradient-flow"))
    parser.add_argument("--run", help="a language-model run directory whose own curve joins the first plot")
    args = parser.parse_args()

    size = ["--length", "20", "--hidden", "16"] if args.smoke else ["--length", "200", "--hidden", "128"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    first = None
    for index, (name, extra) in enumerate(VARIANTS):
        run = ["--run", args.run] if args.run and index == 0 else []
        command = ["diagnose", "gradients", *size, "--seed", "0", "--loss", "last", "--clip", "1", *extra, *run,
                   "--out", str(Path(args.out) / f"gradients-{index}.png"), "--json"]
        print("rnnkit " + " ".join(command), flush=True)
        report = json.loads(rnnkit(*command))
        first = first or report
        print(f"  {name}:")
        curves = [*report["cells"].values(), *([report["run"]] if report["run"] else [])]
        for numbers in curves:
            print(f"    {numbers['label']:<24} ‖∂L/∂h_T‖/‖∂L/∂h_1‖ = {orders(numbers['ratio'])}, ‖∂L/∂θ‖ = "
                  f"{numbers['parameter_gradient_norm']:.3g}, clip scale {numbers['clip_scale']:.3g}, "
                  f"ratio after clipping {orders(numbers['clipped_ratio'])}", flush=True)
        print(f"    plot: {report['plot']}")

    rnn, lstm = first["cells"]["rnn"]["ratio"], first["cells"]["lstm"]["ratio"]
    met = rnn is not None and lstm is not None and rnn >= RNN_FALL and lstm * LSTM_ADVANTAGE <= rnn
    minutes = (time.monotonic() - start) / 60
    print(f"length {first['length']}: tanh RNN ratio {orders(rnn)}, LSTM ratio {orders(lstm)} at PyTorch's init, "
          f"{orders(first['cells']['lstm+1']['ratio'])} with forget bias +1, {orders(first['cells']['lstm+3']['ratio'])} "
          f"with +3; target RNN >= 1e4 and LSTM >= 1e4 times smaller: {'met' if met else 'NOT met'} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
