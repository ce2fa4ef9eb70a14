"""``rnnkit recipes``: the named recipes shipped with rnnkit and what each has measured.

    rnnkit recipes [--json]

One block per recipe: its name and task, what it reproduces, the published anchor (number and citation), rnnkit's
target, the score its benchmark script measured (with the split, CPU model and date; "not yet measured" until the
script has run), the budget, and the command that runs it (``rnnkit train TASK --recipe NAME``, with the flags of
the configuration of its ``[search]`` that the measurement chose, if one did). ``--json`` prints
one JSON array of the same (:meth:`rnnkit.tasks.recipe.Recipe.summary`).
"""

import click

from rnnkit.cli.json_output import to_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array on stdout.")
def command(as_json: bool) -> None:
    """Named recipes that reproduce published results: anchor, measured score, budget, command."""
    from rnnkit.tasks.recipe import all_recipes

    recipes = all_recipes()
    if as_json:
        click.echo(to_json([recipe.summary() for recipe in recipes]))
        return
    for recipe in recipes:
        anchor = recipe.anchor
        measured = recipe.measured
        score = ("not yet measured" if measured is None else
                 f"{measured['score']:g} ({measured.get('split', '?')}), on {measured.get('cpu', '?')}, "
                 f"{measured.get('date', '?')}")
        if recipe.chosen is not None:  # the run line below carries the chosen variant's flags
            score += (f"; the configuration {recipe.chosen} of its search ({len(recipe.search) + 1} tried), chosen "
                      "on validation")
        click.echo(f"{recipe.name}  [{recipe.task}]  {recipe.reproduces}\n"
                   f"  anchor:   {anchor['score']:g} {anchor['metric']} ({anchor['citation']})\n"
                   f"  target:   {recipe.target}\n"
                   f"  measured: {score}\n"
                   f"  budget:   {recipe.budget_minutes:g} min; data: {recipe.dataset}\n"
                   f"  run:      {recipe.command}\n")
