"""Models built on rnnkit's recurrent layers, one per input/output structure of the seeds.

    many-to-one, one-to-one    SequenceClassifier, SequenceRegressor (fit/predict on arrays, Keras-style)
    synchronous many-to-many   SequenceTagger (+ CharacterWordEncoder, LinearChainCRF), LanguageModel
    one-to-many                Captioner; LanguageModel primed with a seed word
    asynchronous many-to-many  Seq2Seq (+ Attention), decoded by greedy_search / beam_search
"""

from .attention import Attention
from .captioner import Captioner
from .classifier import ManyToOne, SequenceClassifier, SequenceRegressor
from .crf import LinearChainCRF
from .decoding import Decoded, beam_search, greedy_search
from .fit_predict import History
from .language_model import LanguageModel, LanguageModelConfig
from .recurrent_encoder import RecurrentEncoder
from .seq2seq import Seq2Seq
from .tagger import CharacterWordEncoder, SequenceTagger

__all__ = [
    "LanguageModel", "LanguageModelConfig",
    "SequenceClassifier", "SequenceRegressor", "ManyToOne", "History",
    "SequenceTagger", "CharacterWordEncoder", "LinearChainCRF", "RecurrentEncoder",
    "Seq2Seq", "Attention", "Decoded", "greedy_search", "beam_search", "Captioner",
]
