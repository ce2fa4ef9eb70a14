"""Looking inside a trained recurrent network.

Hidden units (``rnnkit explain``): run a language model over a text, rank its units against
interpretable features of the text, and write a self-contained page that colours the text by any unit::

    from rnnkit.tasks.lm import from_run
    from rnnkit.viz import browser_model, collect_activations, rank_units, text_features, varying, write_page

    model, vocab, _ = from_run("runs/main")
    activations = collect_activations(model, vocab, text)             # states (P, H) per (layer, state)
    features, constant = varying(text_features(text, activations.last_read), activations.fed)  # name -> (P,)
    ranking = rank_units(activations.states, features, top=5, mask=activations.fed)
    ranking["in_string"][0]        # UnitMatch(layer=1, state='cell', unit=17, correlation=0.83)
    write_page("units.html", activations, ranking, title="runs/main", model=browser_model(model, vocab))

A long text streams (:mod:`rnnkit.viz.streaming`): ``stream_text(model, vocab, text, window_chars=5000)`` ranks
the units over all of it from running moments (:class:`RunningCorrelation`) and keeps the states of its first
characters only, the page's window.

The page runs the model in the browser (:mod:`rnnkit.viz.live_model` and ``model.js``);
:func:`final_outputs` gives the numbers its ``rnnkitModel.run(text)`` returns, computed by PyTorch.
"""

from .activations import Activations, collect_activations, recorded_states, tokenize_positions
from .features import FEATURES, literal_masks, text_features, varying
from .html_page import write_page
from .live_model import browser_model, final_outputs
from .streaming import Explained, stream_text
from .units import ExampleMatch, RunningCorrelation, UnitMatch, correlations, rank_units, units_by_example

__all__ = [
    "Activations", "collect_activations", "recorded_states", "tokenize_positions",
    "FEATURES", "UnitMatch", "ExampleMatch", "correlations", "literal_masks", "rank_units", "text_features",
    "units_by_example", "varying", "RunningCorrelation", "Explained", "stream_text",
    "write_page", "browser_model", "final_outputs",
]
