"""Looking inside a trained recurrent network.

Hidden units (``rnnkit explain``): run a language model over a text, rank its units against
interpretable features of the text, and write a self-contained page that colours the text by any unit::

    from rnnkit.tasks.lm import load_trained
    from rnnkit.viz import collect_activations, rank_units, text_features, write_page

    model, vocab, _ = load_trained("runs/main")
    activations = collect_activations(model, vocab, text)             # states (P, H) per (layer, state)
    features = text_features(text, activations.last_read)          # name -> (P,)
    ranking = rank_units(activations.states, features, top=5, mask=activations.fed)
    ranking["in_string"][0]        # UnitMatch(layer=1, state='cell', unit=17, correlation=0.83)
    write_page("units.html", activations, ranking, title="runs/main")
"""

from .activations import Activations, collect_activations, tokenize_positions
from .features import FEATURES, UnitMatch, correlations, literal_masks, rank_units, text_features
from .html_page import write_page

__all__ = [
    "Activations", "collect_activations", "tokenize_positions",
    "FEATURES", "UnitMatch", "correlations", "literal_masks", "rank_units", "text_features",
    "write_page",
]
