"""Multi30k German → English: test BLEU >= 30 (sacrebleu, test_2016_flickr) with attention and beam search,
trained within 60 minutes on 2 CPU cores; the context-vector-only model (no attention) beside it.

Data: ../shared/data/multi30k (train 29,000 pairs, val 1,014, test_2016_flickr 1,000; raw, cased text).
BLEU is sacrebleu's default (13a tokenization, case-sensitive) on the detokenized output against the raw
reference lines; nothing is lowercased. Reference points for this data: an attention GRU seq2seq with packed
padding reaches 28.1 BLEU, a plain LSTM seq2seq 13.8 (Ben Trevett's pytorch-seq2seq tutorials 4 and 1, which
lowercase and score spaCy tokens).

The settings, and why (2 cores, 60 minutes):

* Model: embedding 256, one-layer bidirectional GRU encoder of 256 per direction, GRU decoder of 256, additive
  (Bahdanau) attention, the bridge tanh(W [h_fwd; h_bwd]) as the decoder's initial state, and a 256-wide
  readout tanh(W [s_i; c_i; E y_{i-1}]) whose output layer shares the target embedding (Press and Wolf 2017).
  Small models with strong regularisation are what work on this small corpus (Caglayan et al. 2017 train
  embeddings of 128-256 and GRUs of 256 on Multi30k); a 256-wide decoder instead of 512 saves about 30% of
  the arithmetic per token, which buys epochs on a CPU.
* Vocabulary: the reversible regex tokenizer of rnnkit.data.parallel, tokens seen at least twice
  (8,064 German / 6,208 English ids); an <unk> in the output is replaced by the source token it attended to.
* Training: Adam at 1e-3, batches of 128 pairs of similar length, gradient norm clipped at 1, dropout 0.3,
  label smoothing 0.1 (Szegedy et al. 2016), the learning rate halved whenever the validation loss stops
  falling, the best epoch by validation BLEU (greedy) kept, stop after 6 epochs without a better BLEU, and a
  50-minute training budget (so that training with its per-epoch validation ends within the hour).
* Decoding: beam 5 with GNMT length normalisation alpha 0.6 (Wu et al. 2016).

The context-vector-only model has the same settings with --attention none and a 20-minute budget (change it
with --context-minutes): the whole source sentence has to pass through the decoder's initial state.

    PYTHONPATH=src .venv/bin/python benchmarks/translate_multi30k.py            # the full run (about 75 minutes)
    PYTHONPATH=src .venv/bin/python benchmarks/translate_multi30k.py --smoke    # a few steps on slices: does it start?

--minutes (default 50) is the attention model's training budget, --context-minutes (default 20) the context-only
model's; the last line of stdout is one JSON object with both models' scores, the budgets, the commands and the CPU.

``--recipe multi30k`` (rnnkit's named recipe, ``rnnkit recipes``) trains the attention model alone with ``rnnkit
train translate --recipe multi30k`` (its own settings and 50-minute budget; the script adds the files and --out):
validation BLEU chooses the checkpoint, the test set is scored once with it, and a full run (not --smoke) writes
the test BLEU into the recipe's [measured] table:

    PYTHONPATH=src .venv/bin/python benchmarks/translate_multi30k.py --recipe multi30k
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import sacrebleu

from bench_common import add_data_argument, add_recipe_argument, cpu_model, dataset_path, record_recipe, recipe_budget, rnnkit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
TARGET = 30.0
SETTINGS = [
    "--cell", "gru", "--embedding", "256", "--hidden", "256", "--layers", "1", "--bidirectional",
    "--decoder-hidden", "256", "--tie-embeddings", "--dropout", "0.3", "--label-smoothing", "0.1",
    "--min-freq", "2", "--max-length", "100", "--batch-size", "128", "--optimizer", "adam", "--lr", "1e-3",
    "--clip", "1", "--schedule", "plateau", "--lr-decay", "0.5", "--patience", "6",
    "--epochs", "40", "--beam", "5", "--length-penalty", "0.6", "--seed", "1",
]


def smoke_slices(out: Path) -> dict[str, Path]:
    """The first lines of each file, uncompressed, under runs/ (for --smoke)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, lines in (("train", 300), ("val", 40), ("test_2016_flickr", 40)):
        for language in ("de", "en"):
            text = gzip.decompress((DATA / f"{split}.{language}.gz").read_bytes()).decode("utf-8")
            files[f"{split}.{language}"] = out / f"{split}.{language}"
            files[f"{split}.{language}"].write_text("".join(text.splitlines(keepends=True)[:lines]), encoding="utf-8")
    return files


def train_and_test(name: str, attention: str, minutes: float, files: dict, out: str, smoke: bool,
                   recipe: str | None = None, minutes_given: bool = False) -> dict:
    """Train one model and score the test set once with the checkpoint of the best validation BLEU. With
    ``recipe``, the named recipe's settings (``attention`` and SETTINGS unused) and its own budget unless
    ``minutes_given``."""
    if recipe:
        settings = ["--recipe", recipe]
        length = ["--max-steps", "3"] if smoke else recipe_budget(recipe, minutes if minutes_given else None)
    else:
        settings = ["--attention", attention, *SETTINGS]
        length = ["--max-steps", "3"] if smoke else ["--time-budget", str(minutes * 60)]
    # a named recipe's settings come first: the files after it override its catalog names
    command = ["train", "translate", *settings[:2 if recipe else 0], "--source", str(files["train.de"]), "--target",
               str(files["train.en"]), "--valid-source", str(files["val.de"]), "--valid-target", str(files["val.en"]),
               *settings[2 if recipe else 0:], *length, "--out", out, "--overwrite", "--quiet", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*command))
    train_minutes = (time.monotonic() - start) / 60
    test_source, test_target = str(files["test_2016_flickr.de"]), str(files["test_2016_flickr.en"])
    evaluate = ["evaluate", out, "--source", test_source, "--target", test_target, "--checkpoint", "best", "--json"]
    print("rnnkit " + " ".join(evaluate), flush=True)
    test = json.loads(rnnkit(*evaluate))
    greedy = rnnkit("translate", out, "--input", test_source, "--beam", "1", "--checkpoint", "best").splitlines()
    references = gzip.decompress(Path(test_target).read_bytes()).decode() if test_target.endswith(".gz") \
        else Path(test_target).read_text(encoding="utf-8")
    greedy_bleu = sacrebleu.corpus_bleu(greedy, [references.splitlines()]).score
    print(f"{name}: test BLEU {test['bleu']:.2f} (beam {test['beam_size']}; greedy {greedy_bleu:.2f}), chrF "
          f"{test['chrf']:.2f}; best validation BLEU {max_valid_bleu(out):.2f} (greedy); {report['epoch']:.3g} "
          f"epochs in {train_minutes:.1f} min of training, {(time.monotonic() - start) / 60:.1f} min with testing",
          flush=True)
    return {"test": test, "train_minutes": train_minutes, "greedy_bleu": greedy_bleu, "epochs": report["epoch"],
            "stop_reason": report["stop_reason"], "commands": ["rnnkit " + " ".join(command),
                                                               "rnnkit " + " ".join(evaluate)]}


def max_valid_bleu(run: str) -> float:
    records = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line]
    return max((r.get("valid_bleu", 0.0) for r in records), default=0.0)


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="train a few steps on slices of the data")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget of the attention model (default 50; with --recipe the recipe's own)")
    parser.add_argument("--context-minutes", type=float, default=20, help="training budget of the context-only model")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-multi30k"))
    add_data_argument(parser, "multi30k")
    add_recipe_argument(parser, "translate_multi30k.py")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    global DATA
    DATA = dataset_path(args.data, "multi30k")
    minutes_given = args.minutes is not None
    if args.minutes is None:
        args.minutes = 50.0
    if args.minutes <= 0 or args.context_minutes <= 0:
        parser.error("--minutes and --context-minutes must be positive")

    if args.smoke:
        files = smoke_slices(Path(args.out + "-smoke-data"))
    else:
        files = {f"{split}.{language}": DATA / f"{split}.{language}.gz"
                 for split in ("train", "val", "test_2016_flickr") for language in ("de", "en")}
    if args.recipe:
        named_recipe(args, files, minutes_given)
        return
    attention = train_and_test("attention (additive)", "additive", args.minutes, files, args.out + "-attention",
                               args.smoke)
    context = train_and_test("context vector only", "none", args.context_minutes, files, args.out + "-context",
                             args.smoke)
    bleu = attention["test"]["bleu"]
    verdict = "met" if bleu >= TARGET and attention["train_minutes"] <= 60 else "NOT met"
    print(f"attention {bleu:.2f} against context vector only {context['test']['bleu']:.2f} test BLEU; "
          f"{attention['train_minutes']:.1f} min of training (target BLEU >= {TARGET} within 60 min: {verdict})",
          flush=True)

    def summary(run: dict) -> dict:
        test = run["test"]
        return {"test_bleu": test["bleu"], "test_chrf": test["chrf"], "beam": test["beam_size"],
                "test_bleu_greedy": run["greedy_bleu"], "epochs": run["epochs"], "stop_reason": run["stop_reason"],
                "training_minutes": round(run["train_minutes"], 2)}

    print(json.dumps({
        "benchmark": "multi30k-de-en", "attention": summary(attention), "context_only": summary(context),
        "target": TARGET, "met": verdict == "met", "budget_minutes": args.minutes,
        "context_budget_minutes": args.context_minutes, "commands": attention["commands"] + context["commands"],
        "cpu": cpu_model(), "smoke": args.smoke,
    }))


def named_recipe(args, files: dict, minutes_given: bool) -> None:
    """The named recipe's model alone: trained, chosen on validation BLEU, scored once on test, recorded."""
    from rnnkit.tasks.recipe import load_recipe

    out = f"{args.out}-{args.recipe}" + ("-smoke" if args.smoke else "")  # a smoke run never replaces a full one
    run = train_and_test(f"recipe {args.recipe}", "", args.minutes, files, out, args.smoke, recipe=args.recipe,
                         minutes_given=minutes_given)
    test = run["test"]
    met = test["bleu"] >= TARGET
    print(f"recipe {args.recipe}: test BLEU {test['bleu']:.2f} (target >= {TARGET}: {'met' if met else 'NOT met'})"
          + ("  [SMOKE: not a result]" if args.smoke else ""), flush=True)
    recipe = load_recipe(args.recipe)
    print(json.dumps({
        "benchmark": "multi30k-de-en", "mode": "recipe", "recipe": args.recipe, "settings": recipe.settings,
        "test_bleu": test["bleu"], "test_chrf": test["chrf"], "beam": test["beam_size"],
        "test_bleu_greedy": run["greedy_bleu"], "epochs": run["epochs"], "stop_reason": run["stop_reason"],
        "training_minutes": round(run["train_minutes"], 2), "target": TARGET, "met": met,
        "chosen_on": "valid (val.de/en: BLEU chose the checkpoint)",
        "scored_on": "test (test_2016_flickr, sacrebleu)" + (" [smoke: 40 lines]" if args.smoke else ""),
        "commands": run["commands"], "cpu": cpu_model(), "smoke": args.smoke,
    }))
    record_recipe(args.recipe, round(test["bleu"], 2), split="test (test_2016_flickr, sacrebleu 13a, cased)",
                  chosen_on="valid (val: greedy BLEU chose the checkpoint)", runs=" && ".join(run["commands"]),
                  smoke=args.smoke, training_minutes=round(run["train_minutes"], 2), epochs=run["epochs"])


if __name__ == "__main__":
    main()
