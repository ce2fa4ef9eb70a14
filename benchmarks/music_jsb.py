"""Bach chorales (JSB, quarter notes): test NLL per time step and frame accuracy of both output layers, each
trained for a fixed budget of minutes, with a generated sample's piano roll, MIDI file and audio.

Data: ../shared/data/jsb_chorales/jsb-chorales-quarter.json (Boulanger-Lewandowski et al. 2012's split:
229 / 76 / 77 pieces; pitches 43..96, so P = 54). The score is the literature's: −log P(v_t | v_<t) summed
over the 54 pitches, averaged over all 4,725 frames of the 77 test pieces, each piece from the initial state,
of the checkpoint with the lowest validation NLL.

Targets: Bernoulli output NLL <= 8.10 (Bai et al. 2018: LSTM 8.45, GRU 8.43, TCN 8.10), autoregressive (NADE)
output <= 6.0 (Boulanger-Lewandowski et al. 2012: RNN-NADE 5.56), each within 30 minutes on a 2-core machine.

Why these settings (from 3.5-minute trials on this machine, shared with other jobs; the validation and test NLL
after them in brackets): 229 chorales are little data, so the model overfits long before it underfits. One LSTM
layer (two layers learned much more slowly; a GRU too), dropout on its output h_t, on the notes of its input
frames and on h_{t-1} where it re-enters the cell (Gal & Ghahramani's recurrent dropout: it slowed the
overfitting most); Adam at 2e-3, halved after 5 epochs without a lower validation NLL, early stopping after 25;
the checkpoint with the lowest validation NLL is scored. Bernoulli: 512 units, dropout 0.5, input dropout 0.2,
recurrent dropout 0.25 (8.28 / 8.35, still falling; without recurrent dropout 8.32 / 8.34 and overfitting; no
dropout at all 8.42 / 8.51, input dropout 0.4 8.41 / 8.41, 768 units with dropout 0.6 8.35 / 8.39). NADE: 256
units, 128 NADE units, dropout 0.4, input dropout 0.1, recurrent dropout 0.25 (5.67 / 5.64, still falling;
without recurrent dropout 5.72 / 5.59 and overfitting).
Transposing the training pieces (--transpose 6) hurt (9.08 against 8.51, both without dropout): this split was
put in a common key (214 of the 229 training pieces end on a chord with C in the bass), which a model trained
on all transpositions can no longer count on.

    PYTHONPATH=src .venv/bin/python benchmarks/music_jsb.py --minutes 30             # both outputs, 30 min each
    PYTHONPATH=src .venv/bin/python benchmarks/music_jsb.py --minutes 0.2 --outputs nade   # does it start?

It prints progress on stderr and one JSON line on stdout; each run directory (--out) holds sample.png,
sample.mid and sample.wav. The same as commands:

    rnnkit train music --data FILE --output nade --hidden 256 --nade-hidden 128 --dropout 0.4 --input-dropout 0.1 \
        --recurrent-dropout 0.25 --lr 2e-3 --schedule plateau --plateau-patience 5 --patience 25 --seed 1 --time-budget 1800 --out RUN
    rnnkit evaluate RUN --split test --json
    rnnkit generate RUN --steps 64 --seed 0 --prime-piece test:0 --prime-steps 8 --midi s.mid --wav s.wav --plot s.png

``--recipe jsb-bernoulli`` or ``--recipe jsb-nade`` (rnnkit's named recipes, ``rnnkit recipes``) trains that output
alone with ``rnnkit train music --recipe NAME`` (its own settings and 30-minute budget; the script adds the data
file and --out; --minutes, if given, replaces the budget), the validation NLL chooses the checkpoint, the test split
is scored once with it, and a full run (not --smoke) writes the test NLL per step into the recipe's [measured]
table. ``--smoke`` trains 3 steps (with a recipe) or 0.2 minutes, and records nothing:

    PYTHONPATH=src .venv/bin/python benchmarks/music_jsb.py --recipe jsb-nade
    PYTHONPATH=src .venv/bin/python benchmarks/music_jsb.py --recipe jsb-nade --smoke
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench_common import (SearchBudget, add_data_argument, add_recipe_argument, cpu_model, dataset_path,
                          record_recipe, recipe_budget, rnnkit)
from rnnkit.music import write_midi, write_wav
from rnnkit.tasks import music
from rnnkit.tasks.music import SPEC, MusicDataConfig, from_run, generate_music, real_piece
from rnnkit.tasks.recipe import setting_flags
from rnnkit.tasks.run import train
from rnnkit.tasks.spec import RunSettings
from rnnkit.train import RunDirectory, TrainConfig
from rnnkit.viz.piano_roll import piano_roll_png

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "jsb_chorales" / "jsb-chorales-quarter.json"
TARGETS = {"bernoulli": 8.10, "nade": 6.0}
MODEL = {
    "bernoulli": {"cell": "lstm", "hidden_size": 512, "num_layers": 1, "dropout": 0.5, "input_dropout": 0.2,
                  "recurrent_dropout": 0.25},
    "nade": {"cell": "lstm", "hidden_size": 256, "num_layers": 1, "dropout": 0.4, "input_dropout": 0.1,
             "recurrent_dropout": 0.25, "nade_hidden": 128},
}
BATCH_SIZE = 16
TRAINING = {"lr": 2e-3, "schedule": "plateau", "lr_decay": 0.5, "plateau_patience": 5, "patience": 25, "clip": 5.0,
            "seed": 1}


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(output: str, minutes: float, data: Path, out: Path) -> dict:
    """Train one output layer for ``minutes``, score the best checkpoint on the test split, render a sample."""
    data_config = MusicDataConfig(data=str(data), batch_size=BATCH_SIZE)
    model_options = {"output": output, **MODEL[output]}
    train_config = TrainConfig(epochs=None, time_budget=minutes * 60, **TRAINING)
    start = time.monotonic()
    report = train(SPEC, RunSettings(data_config, model_options, train_config),
                   run_dir=RunDirectory.create(out, overwrite=True), log=log)
    train_minutes = (time.monotonic() - start) / 60
    trained = from_run(out, "auto")
    test = music.evaluate(trained, split="test")
    piece = generate_music(trained, steps=64, seed=0, prime_piece="test:0", prime_steps=8)
    frames = trained.pitches.frames(piece.roll)
    write_midi(frames, out / "sample.mid", program=19)
    write_wav(frames, out / "sample.wav")
    reference, name = real_piece(trained, piece)
    piano_roll_png(out / "sample.png", piece.roll, trained.pitches.low, piece.prime_steps, reference, name,
                   title=f"{output} (seed 0)")
    result = {
        "nll_per_step": test["nll_per_step"], "frame_accuracy": test["frame_accuracy"], "steps": test["steps"],
        "target_nll": TARGETS[output], "met": test["nll_per_step"] <= TARGETS[output],
        "best_valid_nll": report["best_valid_loss"], "epochs": report["epoch"], "train_minutes": train_minutes,
        "model": model_options, "training": TRAINING, "stop_reason": report["stop_reason"], "run_dir": str(out),
    }
    log(f"{output}: test NLL {test['nll_per_step']:.4f} nats/step (target <= {TARGETS[output]}), frame accuracy "
        f"{test['frame_accuracy']:.2%}, after {report['epoch']:.1f} epochs in {train_minutes:.1f} min")
    return result


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget of each output layer (default 30; with --recipe the recipe's own)")
    parser.add_argument("--outputs", default="bernoulli,nade", help="comma-separated: bernoulli, nade")
    add_data_argument(parser, "jsb_chorales")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-music-jsb")
    add_recipe_argument(parser, "music_jsb.py")
    parser.add_argument("--smoke", action="store_true",
                        help="does it start? 3 steps with --recipe (nothing recorded), else 0.2 minutes per output")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    args.data = dataset_path(args.data, "jsb_chorales", DATA.name)
    if args.minutes is not None and args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")
    if args.recipe:
        named_recipe(args)
        return
    args.minutes = 0.2 if args.smoke else 30.0 if args.minutes is None else args.minutes
    outputs = [name.strip() for name in args.outputs.split(",")]
    unknown = [name for name in outputs if name not in TARGETS]
    if unknown:
        sys.exit(f"error: unknown output {', '.join(unknown)}; give --outputs bernoulli,nade")
    results = {"data": str(args.data), "minutes": args.minutes, "threads": torch.get_num_threads()}
    for output in outputs:
        results[output] = run(output, args.minutes, args.data, args.out / output)
    print(json.dumps(results), flush=True)


def named_recipe(args) -> None:
    """The named recipe's output alone: trained with ``rnnkit train music --recipe`` (and each variant of its
    [search], the budget shared by bench_common.SearchBudget), the configuration and checkpoint of the lowest
    validation NLL scored once on the test split, the score recorded in the recipe (not in a smoke run)."""
    from rnnkit.tasks.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    output = recipe.settings["output"]
    variants = recipe.variants()
    folder = args.out / (args.recipe + ("-smoke" if args.smoke else ""))
    minutes = recipe.budget_minutes if args.minutes is None else args.minutes
    budget = SearchBudget(60 * minutes, count=len(variants), evaluations=1, evaluated=1.0)
    tried, search_started = {}, time.monotonic()
    for name, changes in variants.items():
        out = folder if len(variants) == 1 else folder / name
        if args.smoke:
            length = ["--max-steps", "3"]
        elif len(variants) == 1:
            length = recipe_budget(args.recipe, args.minutes)
        else:  # a search: each configuration's share of the budget, the test evaluation kept inside it
            length = ["--time-budget", f"{budget.share():.0f}"]
        command = ["train", "music", "--recipe", args.recipe, "--data", str(args.data), *setting_flags(changes),
                   *length, "--out", str(out), "--overwrite", "--json"]
        log("rnnkit " + " ".join(command))
        started = time.monotonic()
        report = json.loads(rnnkit(*command))
        budget.observe(time.monotonic() - started, report)
        # the checkpoint of the lower validation NLL: the best finished epoch's, or the final (partial) epoch's,
        # which "best" never includes (a budget stop mid-epoch; a smoke run has no finished epoch at all)
        best = report.get("best_valid_loss")
        checkpoint = "best" if best is not None and best <= report["valid_loss"] else "latest"
        tried[name] = {"changes": changes, "out": out, "report": report, "checkpoint": checkpoint,
                       "valid_nll": best if checkpoint == "best" else report["valid_loss"], "command": command}
        log(f"{name}: validation NLL {tried[name]['valid_nll']:.4f} after {report['epoch']:.3g} epochs in "
            f"{report['elapsed_seconds'] / 60:.1f} min ({report['stop_reason']})")
    chosen = min(tried, key=lambda name: tried[name]["valid_nll"])
    run = tried[chosen]
    report = run["report"]
    evaluate = ["evaluate", str(run["out"]), "--split", "test", "--checkpoint", run["checkpoint"], "--json"]
    log("rnnkit " + " ".join(evaluate))
    test = json.loads(rnnkit(*evaluate))
    target = float(recipe.target.split()[1])
    met = test["nll_per_step"] <= target
    log(f"recipe {args.recipe}: test NLL {test['nll_per_step']:.4f} nats/step (target <= {target}: "
        f"{'met' if met else 'NOT met'}), frame accuracy {test['frame_accuracy']:.2%}, configuration {chosen} of "
        f"{len(tried)}, after {report['epoch']:.3g} epochs in {report['elapsed_seconds'] / 60:.1f} min"
        + ("  [SMOKE: not a result]" if args.smoke else ""))
    chosen_on = ("valid (the checkpoint of the lower validation NLL" + (
        f"; of {len(tried)} configurations, the one of the lowest)" if len(tried) > 1 else ")"))
    searched = {name: round(each["valid_nll"], 4) for name, each in tried.items()}
    commands = ["rnnkit " + " ".join(each["command"]) for each in tried.values()] + ["rnnkit " + " ".join(evaluate)]
    print(json.dumps({
        "benchmark": "jsb-chorales", "mode": "recipe", "recipe": args.recipe, "output": output,
        "settings": recipe.settings, "configuration": chosen, "changes": run["changes"], "valid_nll_by_configuration":
        searched, "nll_per_step": test["nll_per_step"], "frame_accuracy": test["frame_accuracy"],
        "steps": test["steps"], "best_valid_nll": report.get("best_valid_loss"), "valid_nll": report["valid_loss"],
        "checkpoint": run["checkpoint"], "target_nll": target, "met": met, "epochs": report["epoch"],
        "stop_reason": report["stop_reason"], "training_minutes": round(report["elapsed_seconds"] / 60, 2),
        "search_overran": budget.overrun, "chosen_on": chosen_on, "scored_on": "test (77 pieces)",
        "commands": commands, "cpu": cpu_model(), "threads": torch.get_num_threads(), "smoke": args.smoke,
    }), flush=True)
    extra = {"configuration": chosen, "searched": ", ".join(f"{name} {nll}" for name, nll in searched.items()),
             "search_minutes": round((time.monotonic() - search_started) / 60, 2)} if len(tried) > 1 else {}
    record_recipe(args.recipe, round(test["nll_per_step"], 4), split="test (Boulanger-Lewandowski's 77 pieces, NLL "
                  "per time step)", chosen_on=chosen_on, runs=" && ".join(commands), smoke=args.smoke,
                  training_minutes=round(report["elapsed_seconds"] / 60, 2), epochs=report["epoch"], **extra)

if __name__ == "__main__":
    main()
