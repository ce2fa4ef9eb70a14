"""Named recipes (rnnkit.tasks.recipe, `rnnkit recipes`, `rnnkit train TASK --recipe NAME`): every shipped recipe's
settings are flags its command takes, flags and --config override a recipe, a recipe of another task is one line,
the run records its recipe, and record_measurement rewrites the [measured] table only."""

import importlib
import importlib.util
import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

import rnnkit
from bad_inputs.workspace import RUNS, Workspace, run_quietly
from rnnkit.cli import commands
from rnnkit.errors import InputError
from rnnkit.tasks.recipe import MEMORY, RECIPES, all_recipes, load_recipe, record_measurement, recipe_names

ISSUE_27 = {"shakespeare-char", "ptb-word", "sst2", "mr", "ud-upos", "conll-ner", "multi30k", "jsb-bernoulli",
            "jsb-nade", "selective-copy", "adding", "shakespeare-mingru", "shakespeare-minlstm", "shakespeare-rglru"}


def _train_command(task):
    import importlib

    return importlib.import_module(f"rnnkit.cli.commands.{task}").train_command


def test_every_recipe_of_the_issue_ships_with_an_anchor_and_no_hand_typed_score():
    recipes = {recipe.name: recipe for recipe in all_recipes()}
    assert ISSUE_27 <= set(recipes)
    for recipe in recipes.values():
        assert isinstance(recipe.anchor["score"], (int, float)) and recipe.anchor["citation"]
        assert recipe.settings and recipe.budget_minutes > 0 and recipe.benchmark.startswith("benchmarks/")
        if recipe.measured is not None:  # only a benchmark script writes it: record_measurement's fields, its command
            measured = recipe.measured
            assert isinstance(measured["score"], (int, float)) and measured["split"] and measured["chosen_on"]
            assert measured["command"] == f"python {recipe.benchmark}" and measured["cpu"] and measured["date"]


@pytest.mark.parametrize("name", sorted(r.name for r in all_recipes() if r.task != MEMORY))
def test_a_train_recipe_sets_exactly_its_flags(name):
    recipe = load_recipe(name)
    command = _train_command(recipe.task)
    ctx = command.make_context(f"train {recipe.task}", ["--recipe", name])
    flags = {option.opts[0].lstrip("-"): option.name for option in command.params if option.opts[0].startswith("--")}
    for key, value in recipe.settings.items():
        assert ctx.params[flags[key]] == value, key
    assert ctx.params["recipe"] == name


def test_the_new_cells_run_in_residual_blocks():
    for cell in ("mingru", "minlstm", "rglru"):
        settings = load_recipe(f"shakespeare-{cell}").settings
        assert settings["cell"] == cell and settings["block"] == "residual"


def test_memory_recipes_are_their_benchmarks_settings():
    from rnnkit.cli.commands.bench import command as bench
    from rnnkit.diagnose.selective_copy import SelectiveCopyConfig

    config = SelectiveCopyConfig(**load_recipe("selective-copy").settings)
    assert config.block == "residual" and config.length == 512 and config.tokens == 16
    adding = load_recipe("adding").settings
    memory = bench.commands["memory-tasks"]
    args = [part for key, value in adding.items() for part in (f"--{key}", str(value))]
    assert memory.make_context("memory-tasks", args).params["tasks"]


def test_flags_and_config_override_a_recipe(tmp_path):
    command = _train_command("lm")
    ctx = command.make_context("train lm", ["--recipe", "shakespeare-char", "--hidden", "64"])
    assert ctx.params["hidden"] == 64 and ctx.params["layers"] == 2 and ctx.params["seq_len"] == 128
    config = tmp_path / "c.toml"
    config.write_text("layers = 1\n")
    for order in (["--config", str(config), "--recipe", "shakespeare-char"],
                  ["--recipe", "shakespeare-char", "--config", str(config)]):
        ctx = command.make_context("train lm", order)
        assert ctx.params["layers"] == 1 and ctx.params["hidden"] == 512


@pytest.mark.parametrize("name, says", [("sst2", "recipe 'sst2' is for task 'classify', not 'lm'"),
                                        ("adding", "recipe 'adding' is a memory task"),
                                        ("nope", "no recipe 'nope'; the recipes are adding")])
def test_a_recipe_of_another_task_is_one_line(name, says):
    code, _, stderr = run_quietly(["train", "lm", "--recipe", name])
    assert code != 0 and says in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_a_run_records_its_recipe_and_a_resume_keeps_it(tmp_path):
    workspace = Workspace(tmp_path / "data", runs={})
    run = tmp_path / "run"
    # the recipe's data is the catalog's tinyshakespeare; a flag overrides it, and the sizes, for a fast test
    argv = ["train", "lm", "--recipe", "shakespeare-char", *workspace.format(RUNS["lm"][1]), "--hidden", "8",
            "--layers", "1", "--embedding", "8", "--batch-size", "4", "--max-steps", "2", "--quiet", "--json",
            "--out", str(run)]
    code, stdout, stderr = run_quietly(argv)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["recipe"] == "shakespeare-char"
    loaded = rnnkit.load(run)
    configs = loaded.checkpoint.meta["configs"]
    assert configs["recipe"] == "shakespeare-char"
    assert configs["model"]["hidden_size"] == 8 and configs["model"]["embedding_dim"] == 8  # the flags won
    assert configs["train"]["lr"] == 0.002 and configs["train"]["schedule"] == "cosine"  # the recipe's
    code, _, stderr = run_quietly(["train", "lm", "--resume", str(run), "--recipe", "shakespeare-char", "--quiet"])
    assert code != 0 and "drop --recipe" in stderr
    code, stdout, stderr = run_quietly(["train", "lm", "--resume", str(run), "--max-steps", "3", "--quiet", "--json"])
    assert code == 0, stderr
    assert json.loads(stdout)["recipe"] == "shakespeare-char"
    assert rnnkit.load(run).checkpoint.meta["configs"]["recipe"] == "shakespeare-char"


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "recipes"
    shutil.copytree(RECIPES, copy)
    return copy


def test_record_measurement_writes_the_measured_table_only(folder):
    path = folder / "ptb-word.toml"
    path.write_text(path.read_text().split("\n[measured]")[0].rstrip("\n") + "\n")  # as before its first measurement
    before = path.read_text()
    record_measurement("ptb-word", 99.5, split="test", command="rnnkit train lm --recipe ptb-word", cpu="Test CPU",
                       date="2026-12-07", folder=folder, minutes=59.5)
    recipe = load_recipe("ptb-word", folder)
    assert recipe.measured == {"score": 99.5, "split": "test", "command": "rnnkit train lm --recipe ptb-word",
                               "cpu": "Test CPU", "date": "2026-12-07", "minutes": 59.5}
    assert recipe.settings == load_recipe("ptb-word").settings and recipe.anchor == load_recipe("ptb-word").anchor
    record_measurement("ptb-word", 98.25, split="test", command='say "it"', cpu="Other CPU ©", folder=folder)
    text = (folder / "ptb-word.toml").read_text()
    assert text.startswith(before.rstrip("\n")) and text.count("[measured]") == 1
    again = tomllib.loads(text)["measured"]
    assert again["score"] == 98.25 and again["command"] == 'say "it"' and again["cpu"] == "Other CPU ©"
    assert "minutes" not in again and len(again["date"]) == 10
    assert recipe_names(folder) == recipe_names()


def test_record_measurement_refuses_what_is_no_score(folder):
    before = (folder / "sst2.toml").read_text()
    for score in (float("nan"), float("inf"), True, "84"):
        with pytest.raises(InputError):
            record_measurement("sst2", score, split="dev", command="c", cpu="x", folder=folder)
    with pytest.raises(InputError, match="no recipe 'sst-2'"):
        record_measurement("sst-2", 1.0, split="dev", command="c", cpu="x", folder=folder)
    assert (folder / "sst2.toml").read_text() == before


@pytest.mark.parametrize("name", sorted(r.name for r in all_recipes() if r.search))
def test_a_searched_variant_is_flags_its_task_takes(name):
    from rnnkit.tasks.recipe import setting_flags

    recipe = load_recipe(name)
    command = _train_command(recipe.task)
    flags = {option.opts[0].lstrip("-"): option.name for option in command.params if option.opts[0].startswith("--")}
    assert list(recipe.variants())[0] == "settings" and recipe.variants()["settings"] == {}
    for variant, changes in recipe.search.items():
        ctx = command.make_context(f"train {recipe.task}", ["--recipe", name, *setting_flags(changes)])
        for key, value in {**recipe.settings, **changes}.items():  # the variant's settings win, the rest stay
            assert ctx.params[flags[key]] == value, (variant, key)


def test_only_a_script_that_searches_measures_a_recipe_with_a_search():
    searching = {"benchmarks/music_jsb.py"}  # the scripts whose --recipe runs the recipe's [search]
    for recipe in all_recipes():
        if recipe.search:
            assert recipe.benchmark.split()[0] in searching, recipe.name
    for script in searching:
        assert "recipe.variants()" in (BENCHMARKS.parent / script).read_text()


def test_the_run_line_carries_the_configuration_the_measurement_chose(folder):
    record_measurement("jsb-nade", 4.9, split="test", command="python benchmarks/music_jsb.py --recipe jsb-nade",
                       cpu="Test CPU", folder=folder, chosen_on="valid", configuration="rd05-h384")
    recipe = load_recipe("jsb-nade", folder)
    assert recipe.chosen == "rd05-h384"
    assert recipe.command == ("rnnkit train music --recipe jsb-nade --recurrent-dropout 0.5 --hidden 384 "
                              "--dropout 0.5")
    record_measurement("jsb-nade", 5.1, split="test", command="python benchmarks/music_jsb.py --recipe jsb-nade",
                       cpu="Test CPU", folder=folder, chosen_on="valid", configuration="settings")
    assert load_recipe("jsb-nade", folder).chosen is None  # its own settings won: the plain command
    assert load_recipe("jsb-nade", folder).command == "rnnkit train music --recipe jsb-nade"


def test_setting_flags_write_bools_as_switches():
    from rnnkit.tasks.recipe import setting_flags

    assert setting_flags({"hidden": 768, "dropout": 0.6, "bidirectional": False, "tie-weights": True,
                          "adaptive-softmax": [2000, 6000]}) == [
        "--hidden", "768", "--dropout", "0.6", "--no-bidirectional", "--tie-weights", "--adaptive-softmax", "2000,6000"]


def test_a_search_entry_that_is_no_table_is_one_line(folder):
    path = folder / "mr.toml"
    path.write_text(path.read_text() + '\n[search]\nwide = 512\n')
    with pytest.raises(InputError, match=r"\[search\] entry must be a table"):
        load_recipe("mr", folder)


def test_rnnkit_recipes_lists_every_recipe():
    code, stdout, stderr = run_quietly(["recipes", "--json"])
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert {row["name"] for row in rows} == set(recipe_names())
    for row in rows:  # each row is its recipe file's: the anchor, and the score its benchmark wrote (or none yet)
        recipe = load_recipe(row["name"])
        assert row["anchor"] == recipe.anchor and row["score"] == (recipe.measured or {}).get("score")
    ptb = next(row for row in rows if row["name"] == "ptb-word")
    assert ptb["command"] == "rnnkit train lm --recipe ptb-word"
    text = run_quietly(["recipes"])[1]
    assert "ptb-word  [lm]" in text and "Zaremba" in text
    assert text.count("measured: not yet measured") == sum(recipe.measured is None for recipe in all_recipes())
    assert "recipes" in commands.TOP_LEVEL_COMMANDS and "recipes" not in commands.task_names()


# ------------------------------------------------------------------------------- the benchmark scripts' --recipe
# Each script that measures a recipe takes --recipe NAME for its own recipes (parse only here: no data, no training),
# and another script's recipe is one line (exit status 1) naming the script that measures it.

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT_RECIPES = {
    "lm_shakespeare": ["shakespeare-char", "shakespeare-mingru", "shakespeare-minlstm", "shakespeare-rglru"],
    "lm_ptb": ["ptb-word"], "classify_sst2": ["sst2"], "classify_mr": ["mr"], "tag_ud_ewt": ["ud-upos"],
    "tag_conll2003": ["conll-ner"], "translate_multi30k": ["multi30k"], "music_jsb": ["jsb-bernoulli", "jsb-nade"],
    "selective_copy": ["selective-copy"], "memory_tasks": ["adding"],
}


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def test_every_recipe_names_a_benchmark_script_that_takes_it(scripts):
    from bench_common import recipes_of

    assert sorted(name for names in SCRIPT_RECIPES.values() for name in names) == list(recipe_names())
    for script, names in SCRIPT_RECIPES.items():
        assert recipes_of(f"{script}.py") == names, script
        assert (BENCHMARKS / f"{script}.py").is_file()


@pytest.mark.parametrize("script", sorted(SCRIPT_RECIPES))
def test_a_benchmark_parses_its_recipes_and_refuses_another_tasks_in_one_line(scripts, script, capsys):
    if script == "translate_multi30k" and importlib.util.find_spec("sacrebleu") is None:
        pytest.skip("translate_multi30k imports sacrebleu (the translate extra)")
    module = scripts(script)
    for name in SCRIPT_RECIPES[script]:
        assert module.build_parser().parse_args(["--recipe", name]).recipe == name
    task = load_recipe(SCRIPT_RECIPES[script][0]).task
    other = next(name for name in recipe_names() if load_recipe(name).task != task)  # another task's recipe
    for wrong, says in ((other, f"a recipe of task {load_recipe(other).task}, measured by `python benchmarks/"),
                        ("ptb", "no such recipe")):
        with pytest.raises(SystemExit) as stop:
            module.build_parser().parse_args(["--recipe", wrong])
        message = stop.value.code
        assert isinstance(message, str) and "\n" not in message, message
        assert message.startswith(f"error: --recipe {wrong}: {says}") and f"{script}.py measures " in message, message
        assert SCRIPT_RECIPES[script][0] in message
    assert capsys.readouterr().err == ""  # no usage block: the one line is all


def test_a_smoke_run_records_nothing(scripts):
    from bench_common import record_recipe

    before = {path.name: path.read_text() for path in RECIPES.glob("*.toml")}
    assert record_recipe("ptb-word", 99.0, split="test", chosen_on="valid", runs="c", smoke=True) is None
    assert {path.name: path.read_text() for path in RECIPES.glob("*.toml")} == before


def test_a_recipe_names_no_one_machines_folders(scripts):
    from bench_common import relative_paths

    root = BENCHMARKS.parent.resolve()
    command = f"rnnkit train music --data {root.parent}/shared/data/jsb.json --out {root}/runs/jsb --json"
    assert relative_paths(command) == "rnnkit train music --data ../shared/data/jsb.json --out runs/jsb --json"
    for recipe in all_recipes():
        assert str(root) not in (recipe.measured or {}).get("runs", ""), recipe.name


def test_a_recipes_budget_flag(scripts):
    from bench_common import recipe_budget

    assert recipe_budget("sst2") == []  # its settings hold --time-budget 2700
    assert recipe_budget("sst2", 10) == ["--time-budget", "600"]
    assert recipe_budget("ptb-word") == []  # its settings hold --time-budget 3600 (its cosine runs on that clock)
    assert recipe_budget("mr") == ["--time-budget", "2700"]  # none in its settings: its 45 budget minutes
    assert recipe_budget("mr", share=10) == ["--time-budget", "270"]  # 45 minutes over ten folds


def test_the_queue_plans_every_recipe_shortest_first(scripts, capsys, monkeypatch):
    run_recipes = scripts("run_recipes")
    recipes = run_recipes.plan([], unmeasured=False, order=None)
    assert sorted(recipe.name for recipe in recipes) == list(recipe_names())
    assert [recipe.budget_minutes for recipe in recipes] == sorted(recipe.budget_minutes for recipe in recipes)
    assert all(recipe.measured is None for recipe in run_recipes.plan([], unmeasured=True, order=None))
    given = run_recipes.plan(["sst2", "adding"], unmeasured=False, order=None)
    assert [recipe.name for recipe in given] == ["sst2", "adding"]  # names given: their order
    monkeypatch.setattr(sys, "argv", ["run_recipes.py", "sst2", "adding", "--dry-run"])
    run_recipes.main()
    out = capsys.readouterr().out
    assert "python benchmarks/classify_sst2.py --recipe sst2" in out and "2 recipes, 55 minutes" in out
    with pytest.raises(SystemExit) as stop:
        run_recipes.plan(["no-such-recipe"], unmeasured=False, order=None)
    assert str(stop.value).startswith("error: no recipe 'no-such-recipe'")


UD_EWT = BENCHMARKS.parent.parent / "shared" / "data" / "ud_english_ewt"


@pytest.mark.skipif(not UD_EWT.is_dir(), reason=f"needs the UD English EWT files in {UD_EWT} (not part of the core suite)")
def test_a_recipe_runs_its_benchmark_to_the_end_in_smoke_mode(tmp_path):
    """The whole --recipe path of one script (the tagging scripts': train, choose on dev, score the test file),
    on slices for one epoch: the step after training is where a recipe run once failed, 22 minutes in."""
    import subprocess

    before = (RECIPES / "ud-upos.toml").read_text()
    done = subprocess.run([sys.executable, str(BENCHMARKS / "tag_ud_ewt.py"), "--recipe", "ud-upos", "--smoke",
                           "--out", str(tmp_path / "ewt")], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")})
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-2])  # the JSON line, then "smoke run: nothing recorded"
    assert line["mode"] == "recipe" and line["recipe"] == "ud-upos" and 0 <= line["test_accuracy"] <= 1
    assert "nothing recorded" in done.stdout and (RECIPES / "ud-upos.toml").read_text() == before
