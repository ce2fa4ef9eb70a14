"""Models built on rnnkit's recurrent layers."""

from .language_model import LanguageModel, LanguageModelConfig
from .classifier import ManyToOne, SequenceClassifier, SequenceRegressor
from .crf import LinearChainCRF
from .fit_predict import History
from .recurrent_encoder import RecurrentEncoder
from .tagger import CharacterWordEncoder, SequenceTagger

__all__ = ["LanguageModel", "LanguageModelConfig"]
__all__ += ["SequenceClassifier", "SequenceRegressor", "ManyToOne", "SequenceTagger", "CharacterWordEncoder",
            "LinearChainCRF", "RecurrentEncoder", "History"]
from .attention import Attention
from .captioner import Captioner
from .decoding import Decoded, beam_search, greedy_search
from .seq2seq import Seq2Seq

__all__ += ["Seq2Seq", "Attention", "Captioner", "Decoded", "greedy_search", "beam_search"]
